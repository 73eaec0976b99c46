"""`VerifyConfig`: the limits of answer checking, shared by extraction, screening and the workers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_CONFIG", "VerifyConfig"]


@dataclass(frozen=True)
class VerifyConfig:
    """Limits of answer checking. The defaults fit every gold of the bundled benchmarks.

    Attributes:
        max_answer_chars: longer answers (or golds) are refused unparsed; the longest benchmark gold
            is under 400 characters, and sympy time grows fast with size.
        max_scan_chars: only this many trailing characters of a completion are searched for the
            answer, which bounds extraction time on runaway generations.
        max_nesting: deeper bracket nesting is refused (antlr and sympy recurse on it).
        max_factorial: a literal `n!` above this is refused (sympy would evaluate it).
        max_exponent_digits: a literal exponent with more digits is refused (`2^{123456789}`: the
            big-integer work runs in C, where the worker's timer cannot interrupt it).
        kill_grace: seconds the parent waits beyond `timeout` before killing a worker whose own
            deadline did not fire (a hang inside C code).
        startup_timeout: seconds allowed for a worker to import sympy and Math-Verify.
    """

    max_answer_chars: int = 2_000
    max_scan_chars: int = 50_000
    max_nesting: int = 40
    max_factorial: int = 1_000
    max_exponent_digits: int = 4
    kill_grace: float = 1.0
    startup_timeout: float = 120.0

    def __post_init__(self):
        counts = ("max_answer_chars", "max_scan_chars", "max_nesting", "max_factorial", "max_exponent_digits")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"VerifyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.kill_grace < 0 or self.startup_timeout <= 0:
            raise ValueError("VerifyConfig.kill_grace must be >= 0 and startup_timeout > 0")


DEFAULT_CONFIG = VerifyConfig()
