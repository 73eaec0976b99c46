"""Refusing absurd input up front, in the caller's process, without waking a grading worker.

Cheap heuristics on the text: over-long strings, unbalanced braces, deep nesting, exponent towers,
huge factorials and huge literal exponents are refused unparsed (sympy would spend minutes on them,
or hang in C where no timer fires). A refused answer grades False and a refused gold None. The
worker's own deadline (`ispo.answers.workers`) backs these screens up for whatever slips through.
"""

from __future__ import annotations

import re

from ispo.answers.config import VerifyConfig
from ispo.answers.extract import BRACE_RE

__all__ = ["refusal"]

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


def braces_balance(text: str) -> bool:
    depth = 0
    for match in BRACE_RE.finditer(text):
        depth += {"{": 1, "}": -1}.get(match.group(), 0)
        if depth < 0:
            return False
    return depth == 0


def refusal(text: str, config: VerifyConfig) -> str | None:
    """Why `text` is refused unparsed, or None. Cheap heuristics; the worker deadline backs them up."""
    if len(text) > config.max_answer_chars:
        return "too long"
    if not braces_balance(text):
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
