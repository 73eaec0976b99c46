"""Answer checking: does a completion's final answer equal the gold answer?

The training reward (R_o in spec/ISPO.md) and the evaluation harness both call `verify_batch`, so the
two cannot drift. Grading wraps Math-Verify (`math_verify.parse` / `math_verify.verify`).

Conventions
-----------
* **Gold first.** Every function takes the gold answer before the completion, as Math-Verify does;
  its `verify` is not symmetric (assignments and relations are read differently on each side).
* **What is graded.** Only the final answer: the contents of the last complete `\\boxed{...}`
  (`\\fbox{...}` and `\\boxed 5` count too), or of the last `<answer>...</answer>` (a box inside it
  is unwrapped). Text before it is never parsed, which also keeps long completions cheap. When the
  last boxes form a run joined only by commas, "and" or spaces (`\\boxed{69}, \\boxed{84}`), the
  run is graded as one multi-part answer, so boxing several candidates is never rewarded for the
  one that happens to be right. `extract_answer` still returns only the last box.
* **Return values.** `True` / `False` for correct / incorrect. A completion with no answer, an empty
  answer, an unparseable answer, or an absurd one (over the size caps, exponent towers, `10000!`,
  deep nesting, or simply too slow) is `False`. `None` means the GOLD is unusable (empty, oversized,
  unbalanced braces, absurd, or yielding nothing to any parse strategy within the time limit): the
  pair carries no signal, so a reward should skip it rather than score 0 (as open-r1 does).
  Golds that Math-Verify cannot turn into an expression (`MR=SRMC`) keep its string form and are
  compared as strings, so they are not `None`.
* **Gold parsing.** Golds arrive as bare strings (`\\frac{3}{4}`, `3.83e35`, `np.arcsin(10/13)`,
  `10\\%`, `5\\text{ cm}`, `(-\\infty, 2]`). Gold and answer go through the same normalisation
  (scientific notation becomes `\\times 10^{k}`, `np.`/`math.` calls become LaTeX, stray `$` and a
  final full stop go, `t(0,4]` becomes `t \\in (0,4]`) and are parsed as LaTeX inside `\\boxed{}`,
  then inside `$...$`, then as a plain expression; the first strategy that yields a sympy object
  wins (a union would let the gold `69,84` also mean the decimal 69.84).
* **Multi-part policy.** A gold with top-level commas (OlympiadBench joins several answers that way,
  `69,84`) parses to a set and is compared as an UNORDERED collection with every part required:
  `69, 84`, `84, 69`, `\\boxed{69}, \\boxed{84}`, `(69, 84)` and `\\{69, 84\\}` match; `69` alone or
  `69, 84, 85` do not. Commas inside brackets belong to one tuple or interval (the gold `(1,2)` is
  one answer and needs `(1,2)`), and digit groups of exactly three (`1,000`, `58,500`) are a
  thousands separator on both sides, as Math-Verify reads them.

Time and threads
----------------
Math-Verify's own timeouts use `signal.alarm`, which only works on the main thread, and sympy can
spend minutes (or hang in C) on hostile input. So all parsing and comparison runs in persistent
child worker processes: the child runs each pair under its own `setitimer` deadline (it is the
child's main thread) and the parent kills and restarts a child that overruns `timeout` by
`VerifyConfig.kill_grace` (a hang in C code, where no Python timer fires); that pair is False.
The functions here are safe from any thread; concurrent callers share a small pool of workers
(`Verifier(max_workers=...)`), and a large batch is split over them. Workers are started with
`subprocess` running `python -c` rather than `multiprocessing`, so the caller's `__main__` is never
re-imported (no `if __name__ == "__main__"` guard needed); they are killed at interpreter exit.
Input never makes these functions raise; the one error is a `RuntimeError` when a worker cannot
start at all (Math-Verify missing), an environment fault that would otherwise zero every reward.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

__all__ = [
    "AnswerFormat",
    "Verifier",
    "VerifyConfig",
    "extract_answer",
    "find_answer_span",
    "verify_answer",
    "verify_batch",
]

logger = logging.getLogger(__name__)

AnswerFormat = Literal["boxed", "answer_tag"]
ANSWER_FORMATS: tuple[str, ...] = ("boxed", "answer_tag")


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


# --------------------------------------------------------------------------------------------------
# Extraction (pure string work, runs in the caller's process)
# --------------------------------------------------------------------------------------------------

# `\boxed{`, `\boxed {`, `\fbox{`; and the brace-less `\boxed 5` (one token).
_BOX_MARKER_RE = re.compile(r"\\(?:boxed|fbox)\s*\{|\\boxed[ \t]+(?=[^\s{\\$])")
# Escaped characters are consumed in pairs so `\{`, `\}` and `\\{` count correctly.
_BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_BARE_TOKEN_RE = re.compile(r"[^\s$]+")
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
# At most this many box markers are tried from the end: each unclosed one costs a scan to the end.
_MAX_MARKERS_TRIED = 32


def _check_format(answer_format: str) -> None:
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) to exclude surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _close_brace(text: str, open_end: int) -> int | None:
    """Index of the `}` that closes the group opened just before `open_end`, or None if unclosed."""
    depth = 1
    for match in _BRACE_RE.finditer(text, open_end):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return match.start()
    return None


def _box_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(marker_start, answer_start, answer_end, box_end) of the complete boxes in `text`, last first.

    Unclosed boxes (a truncated generation) are skipped. Answer spans exclude surrounding
    whitespace and may be empty (`\\boxed{}`); `box_end` is just past the closing brace.
    """
    markers = list(_BOX_MARKER_RE.finditer(text))[-_MAX_MARKERS_TRIED:]
    spans = []
    for marker in reversed(markers):
        if marker.group().endswith("{"):
            close = _close_brace(text, marker.end())
            if close is None:
                continue
            answer_start, answer_end = _strip_span(text, marker.end(), close)
            box_end = close + 1
        else:
            token = _BARE_TOKEN_RE.match(text, marker.end())
            answer_start, answer_end = marker.end(), token.end() if token else marker.end()
            # `\\boxed 5.` ends a sentence: the full stop is not part of the answer.
            while answer_end > answer_start and text[answer_end - 1] in ".,;:":
                answer_end -= 1
            box_end = answer_end
        spans.append((marker.start(), answer_start, answer_end, box_end))
    return spans


def find_answer_span(
    completion: str, answer_format: AnswerFormat = "boxed"
) -> tuple[int, int, int] | None:
    """Character offsets (marker_start, answer_start, answer_end) of the final answer in `completion`.

    `completion[marker_start:answer_start]` is the marker (`\\boxed{`, `<answer>`, plus any
    whitespace before the answer) and `completion[answer_start:answer_end]` the answer text without
    the closing brace or tag. The ISPO trainer maps these offsets to the token spans m_i and a_i of
    spec/ISPO.md. For "boxed" the last complete box wins (an unclosed trailing box is ignored); for
    "answer_tag" the last `<answer>` before the last `</answer>`. None when there is no complete,
    non-empty answer, so a rollout without an answer span gets no IFD term. Only the last
    `VerifyConfig.max_scan_chars` characters are searched.
    """
    _check_format(answer_format)
    if not isinstance(completion, str) or not completion:
        return None
    offset = max(0, len(completion) - DEFAULT_CONFIG.max_scan_chars)
    text = completion[offset:]
    if answer_format == "boxed":
        spans = _box_spans(text)
        if not spans:
            return None
        span = spans[0][:3]
    else:
        close = text.rfind(_ANSWER_CLOSE)
        if close < 0:
            return None
        marker_start = text.rfind(_ANSWER_OPEN, 0, close)
        if marker_start < 0:
            return None
        answer_start, answer_end = _strip_span(text, marker_start + len(_ANSWER_OPEN), close)
        span = (marker_start, answer_start, answer_end)
    if span[1] == span[2]:
        return None
    return span[0] + offset, span[1] + offset, span[2] + offset


def extract_answer(completion: str, answer_format: AnswerFormat = "boxed") -> str | None:
    """The final answer text of `completion` (see `find_answer_span`), or None if absent or empty."""
    span = find_answer_span(completion, answer_format)
    return None if span is None else completion[span[1] : span[2]]


# Between two boxes of one multi-part answer only separators may appear.
_BOX_SEPARATOR_RE = re.compile(
    r"(?:\s|\$|,|;|&|\\quad|\\qquad|\\,|\\;|\\text\{\s*(?:and|or|,)?\s*\}|\b(?:and|or)\b)*"
)


def _trailing_box_run(completion: str) -> str | None:
    """The last boxes joined by ", " when two or more are separated only by commas, and/or, spaces.

    `\\boxed{69}, \\boxed{84}` is one two-part answer: right for the gold `69,84`, and wrong for
    the gold `84`, so hedging over several boxes is not rewarded.
    """
    text = completion[-DEFAULT_CONFIG.max_scan_chars :]
    spans = _box_spans(text)
    run = spans[:1]
    for span in spans[1:]:
        # A box nested in the next one is not a separate part.
        if span[3] > run[-1][0] or not _BOX_SEPARATOR_RE.fullmatch(text, span[3], run[-1][0]):
            break
        run.append(span)
    if len(run) < 2 or any(start == end for _, start, end, _ in run):
        return None
    return ", ".join(text[start:end] for _, start, end, _ in reversed(run))


def _graded_answer(completion: str, answer_format: AnswerFormat) -> str | None:
    """The text that `verify_*` grades: `extract_answer`, widened to a trailing run of boxes."""
    if answer_format == "boxed":
        return _trailing_box_run(completion) or extract_answer(completion, "boxed")
    answer = extract_answer(completion, "answer_tag")
    if answer is not None and "\\boxed" in answer:
        answer = extract_answer(answer, "boxed")  # `<answer>\boxed{5}</answer>`
    return answer


# --------------------------------------------------------------------------------------------------
# Cheap screening of absurd inputs (caller's process): refused without waking a worker
# --------------------------------------------------------------------------------------------------

_FACTORIAL_RE = re.compile(r"(\d+)\s*!")
# `9^{9^{9}}`, `10^{10^{10}}`, `9**9**9`: a number to a numeric power of a number. Symbolic towers
# (`2^{2^{n}}`) never evaluate and pass.
_NUMERIC_TOWER_RE = re.compile(r"\d\s*(?:\^|\*\*)\s*[{(]?\s*\d+\s*(?:\^|\*\*)\s*[{(]?\s*\d")
# A literal exponent: `^123`, `^{123}`, `**123`.
_EXPONENT_RE = re.compile(r"(?:\^|\*\*)\s*\{?\s*\+?(\d+)")


def _nesting_depth(text: str) -> int:
    depth = best = 0
    for char in text:
        if char in "{([":
            depth += 1
            best = max(best, depth)
        elif char in "})]":
            depth = max(0, depth - 1)
    return best


def _exponent_depth(text: str) -> int:
    """How deep powers nest: `x^2` is 1, `e^{-x^{2}}` is 2, `2^{2^{2^{2}}}` is 3."""
    best = 0
    # Stack of (brace depth at which an exponent group opened); its length is the power depth.
    exponent_groups: list[int] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if exponent_groups and exponent_groups[-1] == depth:
                exponent_groups.pop()
            depth -= 1
        elif char == "^":
            j = i + 1
            while j < n and text[j].isspace():
                j += 1
            if j < n and text[j] == "{":
                exponent_groups.append(depth + 1)
                best = max(best, len(exponent_groups))
            else:
                best = max(best, len(exponent_groups) + 1)
        i += 1
    return best


def _braces_balance(text: str) -> bool:
    depth = 0
    for match in _BRACE_RE.finditer(text):
        depth += {"{": 1, "}": -1}.get(match.group(), 0)
        if depth < 0:
            return False
    return depth == 0


def _refusal(text: str, config: VerifyConfig) -> str | None:
    """Why `text` is refused unparsed, or None. Cheap heuristics; the worker deadline backs them up."""
    if len(text) > config.max_answer_chars:
        return "too long"
    if not _braces_balance(text):
        return "unbalanced braces"  # a corrupted gold; extracted answers always balance
    if _nesting_depth(text) > config.max_nesting:
        return "nested too deeply"
    if _exponent_depth(text) >= 3 or _NUMERIC_TOWER_RE.search(text):
        return "exponent tower"
    for match in _FACTORIAL_RE.finditer(text):
        digits = match.group(1).lstrip("0")
        if len(digits) > len(str(config.max_factorial)) or int(digits or "0") > config.max_factorial:
            return "large factorial"
    exponents = (match.group(1).lstrip("0") for match in _EXPONENT_RE.finditer(text))
    if any(len(digits) > config.max_exponent_digits for digits in exponents):
        return "large exponent"
    return None


# --------------------------------------------------------------------------------------------------
# Grading (runs inside a worker process)
# --------------------------------------------------------------------------------------------------

# `3.83e35`, `1e-5`, `2.7778e-6`: not preceded by a letter/backslash so `\sec5` or `x_e3` stay put.
_SCI_RE = re.compile(r"(?<![\w\\.])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
_PY_NAME_RE = re.compile(r"\b(?:np|numpy|math|sympy|sp)\.(\w+)(\s*\()?")
_PY_FUNCTIONS = {
    "arcsin": r"\arcsin", "arccos": r"\arccos", "arctan": r"\arctan", "asin": r"\arcsin",
    "acos": r"\arccos", "atan": r"\arctan", "sin": r"\sin", "cos": r"\cos", "tan": r"\tan",
    "exp": r"\exp", "log": r"\ln", "ln": r"\ln", "log10": r"\log_{10}", "sqrt": r"\sqrt",
}
_PY_CONSTANTS = {"pi": r"\pi", "e": "e", "inf": r"\infty"}
# `t(0,4]`: a variable glued to an interval (mismatched brackets, so not a function call).
_GLUED_INTERVAL_RE = re.compile(r"^([A-Za-z])\s*(\((?:[^()\[\]]*)\]|\[(?:[^()\[\]]*)\))$")
# `\left(`, `(`, `[`, `\{` wrappers that may be peeled off a multi-part answer written as a tuple.
_WRAPPERS = (
    (r"\left(", r"\right)"), (r"\left[", r"\right]"), (r"\left\{", r"\right\}"),
    (r"\{", r"\}"), ("(", ")"), ("[", "]"),
)


def _normalize(text: str) -> str:
    """Rewrite notation Math-Verify's LaTeX parser misreads; the same rules apply to gold and answer."""
    text = text.strip()
    text = text.replace(r"\$", "").replace("$", " ")
    text = re.sub(r"^(?:\\q?quad\s*)+", "", text).strip()
    text = text.rstrip(".").strip()
    # `3.83e35` would parse as 3.83 * e * 35.
    text = _SCI_RE.sub(lambda m: rf"{m.group(1)} \times 10^{{{m.group(2)}}}", text)
    for _ in range(4):  # calls nest: np.exp(np.log(2))
        text, before = _python_to_latex(text), text
        if text == before:
            break
    text = _GLUED_INTERVAL_RE.sub(r"\1 \\in \2", text)
    # `m_{\max }`: a \max inside a subscript is a label, not the operator.
    text = re.sub(r"_\{\\(max|min)\s*\}", r"_{\1}", text)
    # OlympiadBench glosses some answers in prose: `f(x)=a x+b, where b is an arbitrary integer...`
    text = re.split(r",?\s*(?:\\text\{\s*)?\bwhere\b", text, maxsplit=1)[0].strip()
    return text


_BRACKET_TOKEN_RE = re.compile(r"\\left.|\\right.|\\[{}]|[(\[{)\]}]|,")


def _top_level_commas(text: str) -> tuple[bool, bool]:
    """(has a comma outside all brackets, brackets never close below depth 0)."""
    depth, comma = 0, False
    for match in _BRACKET_TOKEN_RE.finditer(text):
        token = match.group()
        if token == ",":
            comma = comma or depth == 0
        elif token.startswith("\\left") or token in ("(", "[", "{", r"\{"):
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return comma, False
    return comma, depth == 0


def _python_to_latex(text: str) -> str:
    """`np.arcsin(x)` -> `\\arcsin\\left(x\\right)`, `np.sqrt(2)` -> `\\sqrt{2}`, `np.pi` -> `\\pi`.

    Minerva golds are partly Python; LaTeX parsing reads `np.arcsin` as a product of symbols.
    """
    out, position = [], 0
    for match in _PY_NAME_RE.finditer(text):
        if match.start() < position:
            continue
        name, call = match.group(1), match.group(2)
        if call and name in _PY_FUNCTIONS:
            close = _matching_paren(text, match.end())
            if close is None:
                continue
            inner = text[match.end() : close]
            if name == "sqrt":
                latex = rf"\sqrt{{{inner}}}"
            else:
                latex = rf"{_PY_FUNCTIONS[name]}\left({inner}\right)"
            out.append(text[position : match.start()] + latex)
            position = close + 1
        elif not call and name in _PY_CONSTANTS:
            out.append(text[position : match.start()] + _PY_CONSTANTS[name])
            position = match.end()
    return "".join(out) + text[position:]


def _matching_paren(text: str, start: int) -> int | None:
    """Index of the `)` closing a `(` that ends just before `start`."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _top_level_comma(text: str) -> bool:
    return _top_level_commas(text)[0]


def _unwrap(text: str) -> str | None:
    """`text` without one pair of enclosing brackets, if it has one around a top-level comma list."""
    for opening, closing in _WRAPPERS:
        if text.startswith(opening) and text.endswith(closing):
            inner = text[len(opening) : len(text) - len(closing)]
            comma, balanced = _top_level_commas(inner)
            if comma and balanced:  # `(1,2),(3,4)` is two tuples, not one wrapper
                return inner
    return None


def _worker_parsers():
    """Math-Verify entry points, imported lazily so the caller's process never loads sympy."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    return parse, verify, [LatexExtractionConfig()], [ExprExtractionConfig()]


def _parse_candidates(text: str) -> list:
    """Parsed forms of an answer string: first strategy that yields a sympy object wins.

    Falls back to Math-Verify's string form so that two unparseable but identical strings still
    compare equal; an empty list means nothing at all could be read.
    """
    parse, _, latex_config, expr_config = _worker_parsers()
    # timeouts are off: the worker's own deadline bounds the whole pair, and Math-Verify's alarm(0)
    # in its `finally` would cancel that deadline.
    attempts = (
        (rf"\boxed{{{text}}}", latex_config),
        (f"${text}$", latex_config),
        (text, expr_config),
    )
    fallback: list = []
    for source, config in attempts:
        parsed = parse(source, config, parsing_timeout=None)
        objects = [p for p in parsed if not isinstance(p, str)]
        if objects:
            return objects
        if not fallback:
            fallback = [p for p in parsed if isinstance(p, str) and p.strip()]
    return fallback or ([text] if text else [])


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[tuple, bool]:
    """(parsed gold candidates, is_multi_part). Cached: one gold serves all G rollouts of a prompt."""
    text = _normalize(gold)
    candidates = _parse_candidates(text) if text else []
    from sympy import FiniteSet

    is_multi = _top_level_comma(text) and any(isinstance(c, FiniteSet) for c in candidates)
    return tuple(candidates), is_multi


@functools.lru_cache(maxsize=16384)
def _grade(gold: str, answer: str | None) -> bool | None:
    """Grade one pair inside the worker. Gold first; None only when the gold yields nothing.

    Cached: the rollouts of one prompt often repeat an answer, and evaluation repeats samples.
    """
    gold_candidates, is_multi = _parse_gold(gold)
    if not gold_candidates:
        return None
    if answer is None:
        return False
    text = _normalize(answer)
    if not text:
        return False
    _, verify, _, _ = _worker_parsers()
    predictions = _parse_candidates(text)
    if is_multi:
        inner = _unwrap(text)
        if inner is not None:
            predictions = predictions + _parse_candidates(inner)
    return any(
        verify(expected, prediction, timeout_seconds=None)
        and not _equal_only_after_rounding(expected, prediction)
        for expected in gold_candidates
        for prediction in predictions
    )


def _numeric_value(expr) -> float | None:
    """The value of a real constant expression, or None for anything else (symbols, sets, strings)."""
    from sympy import Expr

    if not isinstance(expr, Expr) or expr.free_symbols:
        return None
    try:
        value = complex(expr.evalf(30))
    except Exception:  # noqa: BLE001 - sympy raises many types on expressions it cannot evaluate
        return None
    return value.real if value.imag == 0 and math.isfinite(value.real) else None


def _equal_only_after_rounding(gold, prediction) -> bool:
    """Whether Math-Verify's match is an artefact of its absolute rounding of floats.

    It compares floats rounded to 6 decimal places, so every value below 5e-7 "equals" 0 and the
    Minerva gold 3.89e-10 would accept `0.0` or 5e-10. Small values must also agree to a relative
    1e-4; above 1e-2 the rounding is already finer than that, and percentages keep Math-Verify's
    rules (`10\\%` matching `10`).
    """
    a, b = _numeric_value(gold), _numeric_value(prediction)
    if a is None or b is None:
        return False
    scale = max(abs(a), abs(b))
    return scale < 1e-2 and abs(a - b) > 1e-4 * scale


class _Deadline(BaseException):
    """Raised by the worker's timer; a BaseException so Math-Verify's `except Exception` lets it pass."""


def _on_deadline(signum, frame):
    raise _Deadline


def _grade_with_deadline(gold: str, answer: str | None, timeout: float) -> bool | None:
    stage = "gold"
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3))
        _parse_gold(gold)
        stage = "answer"
        return _grade(gold, answer)
    except _Deadline:
        return None if stage == "gold" else False
    except Exception:  # noqa: BLE001 - a grading bug must cost one pair, not the worker
        logger.debug("grading failed", exc_info=True)
        return None if stage == "gold" else False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _worker_main(read_fd: int, write_fd: int) -> None:
    """Entry point of a worker process: grade batches from the parent until the pipe closes."""
    requests = Connection(read_fd, writable=False)
    results = Connection(write_fd, readable=False)
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_deadline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_parsers()
    _parse_gold("1")  # warm up antlr and sympy before declaring ready
    try:
        results.send("ready")
        while True:
            batch = requests.recv()
            for index, gold, answer, timeout in batch:
                results.send((index, _grade_with_deadline(gold, answer, timeout)))
    except (EOFError, OSError):
        return  # the parent closed the pipes or exited: nothing left to grade


# --------------------------------------------------------------------------------------------------
# Worker processes (caller's side)
# --------------------------------------------------------------------------------------------------

_WORKER_COMMAND = (
    "import sys; from ispo.verify import _worker_main; _worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class _WorkerSlot:
    """One worker process, started lazily and restarted after a kill. Used by one thread at a time."""

    def __init__(self, config: VerifyConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.results: Connection | None = None

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        env = dict(os.environ)
        # The child must import this very package even when it is not installed (a source checkout).
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_COMMAND, str(child_read), str(child_write)],
                pass_fds=(child_read, child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            )
        finally:
            os.close(child_read)
            os.close(child_write)
        self.requests = Connection(parent_write, readable=False)
        self.results = Connection(parent_read, writable=False)
        try:
            ready = self.results.poll(self.config.startup_timeout) and self.results.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            # An environment problem (Math-Verify missing), not a property of any input: every
            # reward would silently be False, so this is the one error that is raised.
            raise RuntimeError("ispo.verify: the answer-checking worker failed to start")

    def kill(self) -> None:
        if self.process is not None:
            try:
                self.process.kill()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for connection in (self.requests, self.results):
            if connection is not None:
                connection.close()
        self.process = self.requests = self.results = None

    def run(self, items: list[tuple], timeout: float) -> list[bool | None]:
        """Grade `items` (gold, answer) in order; each gets `timeout` seconds."""
        try:
            return self._run(items, timeout)
        except BaseException:
            # Interrupted mid-batch (KeyboardInterrupt): the worker may still be answering this
            # batch, and its late answers must never be read as the next batch's.
            self.kill()
            raise

    def _run(self, items: list[tuple], timeout: float) -> list[bool | None]:
        outcomes: list[bool | None] = [False] * len(items)
        todo = list(range(len(items)))
        broken_pipes = 0
        while todo:
            if self.process is None or self.process.poll() is not None:
                self.kill()
                self._start()
            try:
                self.requests.send([(i, *items[i], timeout) for i in todo])
            except OSError:
                # Died between the check and the send; a fresh worker gets the batch.
                self.kill()
                broken_pipes += 1
                if broken_pipes > 3:
                    raise RuntimeError("ispo.verify: the answer-checking worker keeps dying") from None
                continue
            done = 0
            for index in todo:
                try:
                    if not self.results.poll(timeout + self.config.kill_grace):
                        raise TimeoutError
                    got, outcome = self.results.recv()
                except (TimeoutError, EOFError, OSError):
                    # Hung in C code or crashed: this pair is False, the rest go to a fresh worker.
                    logger.warning("ispo.verify: worker timed out or died; restarting it")
                    self.kill()
                    done += 1
                    break
                if got != index:
                    raise RuntimeError(f"ispo.verify: worker answered pair {got}, expected {index}")
                outcomes[index] = outcome
                done += 1
            todo = todo[done:]
        return outcomes


class Verifier:
    """A pool of grading workers. The module functions use a shared default instance.

    Own one (and `close()` it, or use it as a context manager) to isolate a component, e.g. an
    evaluation harness that wants more parallel workers than the training reward.
    """

    def __init__(self, max_workers: int | None = None, config: VerifyConfig = DEFAULT_CONFIG):
        if max_workers is None:
            max_workers = min(2, os.cpu_count() or 1)
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.config = config
        self.max_workers = max_workers
        self._slots = [_WorkerSlot(config) for _ in range(max_workers)]
        self._busy = [False] * max_workers
        self._available = threading.Condition()
        self._pid = os.getpid()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill all workers. Safe to call twice; a later `verify_batch` starts them again."""
        if os.getpid() != self._pid:
            return  # inherited through fork: the workers belong to the parent process
        for slot in self._slots:
            slot.kill()

    def _run(self, items: list[tuple], timeout: float, preferred: int = 0) -> list[bool | None]:
        """Grade on slot `preferred` if it is free (its caches know these golds), else on any free one."""
        with self._available:
            while all(self._busy):
                self._available.wait()
            index = preferred if not self._busy[preferred] else self._busy.index(False)
            self._busy[index] = True
        try:
            return self._slots[index].run(items, timeout)
        finally:
            with self._available:
                self._busy[index] = False
                self._available.notify()

    def verify_batch(
        self,
        golds: Sequence[str],
        completions: Sequence[str],
        *,
        answer_format: AnswerFormat = "boxed",
        timeout: float = 5.0,
    ) -> list[bool | None]:
        """See the module-level `verify_batch`."""
        _check_format(answer_format)
        if len(golds) != len(completions):
            raise ValueError(f"got {len(golds)} golds but {len(completions)} completions")
        timeout = float(timeout)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        outcomes: list[bool | None] = [None] * len(golds)
        work: list[tuple[int, tuple]] = []
        for i, (gold, completion) in enumerate(zip(golds, completions)):
            if not isinstance(gold, str) or not gold.strip() or _refusal(gold, self.config):
                continue  # None: the gold is unusable
            answer = _graded_answer(completion, answer_format) if isinstance(completion, str) else None
            if answer is not None and _refusal(answer, self.config):
                answer = None
            # A pair without an answer still visits the worker: whether the gold parses decides
            # between False and None, and that parse is cached there.
            work.append((i, (gold, answer)))
        if not work:
            return outcomes
        # Split a large batch over the workers (a small one is not worth a second process start).
        # A gold always goes to the same worker, whose caches then hold its parse and its graded
        # answers across calls: the G rollouts of a prompt, the samples of an evaluation.
        num_chunks = min(self.max_workers, max(1, len(work) // 64))
        chunks: list[list[tuple[int, tuple]]] = [[] for _ in range(num_chunks)]
        for entry in work:
            chunks[zlib.crc32(entry[1][0].encode("utf-8", "replace")) % num_chunks].append(entry)
        used = [k for k, chunk in enumerate(chunks) if chunk]
        if len(used) == 1:
            results = [self._run([item for _, item in chunks[used[0]]], timeout, used[0])]
        else:
            with ThreadPoolExecutor(len(used)) as executor:
                futures = [executor.submit(self._run, [item for _, item in chunks[k]], timeout, k) for k in used]
                results = [future.result() for future in futures]
        for chunk, chunk_results in zip((chunks[k] for k in used), results):
            for (i, _), outcome in zip(chunk, chunk_results):
                outcomes[i] = outcome
        return outcomes


_default_verifier: Verifier | None = None
_default_lock = threading.Lock()


def _default() -> Verifier:
    """The shared pool, created on first use (and afresh in a forked child)."""
    global _default_verifier
    with _default_lock:
        if _default_verifier is None or _default_verifier._pid != os.getpid():
            _default_verifier = Verifier()
            atexit.register(_default_verifier.close)
        return _default_verifier


def verify_batch(
    golds: Sequence[str],
    completions: Sequence[str],
    *,
    answer_format: AnswerFormat = "boxed",
    timeout: float = 5.0,
) -> list[bool | None]:
    """`verify_answer` over (gold, completion) pairs; what the training reward and evaluation call.

    One round trip to a warm worker for the whole batch (large batches are split over the pool),
    and each gold is parsed once however many rollouts share it. `timeout` is per pair, so a batch
    of n hostile pairs can take n * timeout; the cheap screens refuse most of them without parsing.
    Mismatched lengths raise ValueError.
    """
    return _default().verify_batch(golds, completions, answer_format=answer_format, timeout=timeout)


def verify_answer(
    gold: str,
    completion: str,
    *,
    answer_format: AnswerFormat = "boxed",
    timeout: float = 5.0,
) -> bool | None:
    """Whether the completion's final answer equals `gold` (gold first); None if the gold is unusable.

    Whatever the gold and completion text, never raises and returns within about `timeout` seconds
    (plus one worker start on first use); see the module docstring for what counts as a match and
    for the multi-part policy. Safe from any thread. Argument errors (unknown `answer_format`,
    non-positive `timeout`) raise ValueError.
    """
    return verify_batch([gold], [completion], answer_format=answer_format, timeout=timeout)[0]
