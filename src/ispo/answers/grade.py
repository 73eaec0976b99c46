"""Grading one (gold, answer) pair with Math-Verify; runs inside a worker process (`ispo.answers.workers`).

Conventions
-----------
* **Gold first**, as Math-Verify's `verify`, which is not symmetric (assignments and relations are
  read differently on each side).
* **Verdicts.** True / False for correct / incorrect; None only when the GOLD yields nothing to any
  parse strategy, so the pair carries no outcome reward R_o (docs/algorithm.md "3. Composite reward
  and advantage": an unscorable rollout gets advantage 0). Golds that Math-Verify cannot turn into
  an expression (`MR=SRMC`) keep its string form and are compared as strings, so they are not None.
* **Normalisation** (`normalize`), the same for gold and answer: scientific notation becomes
  `\\times 10^{k}`, `np.`/`math.` calls become LaTeX, stray `$` and a final full stop go,
  `t(0,4]` becomes `t \\in (0,4]`, a prose gloss after "where" goes. Then math-mode spacing is made
  canonical, as LaTeX ignores it: `6 - 5 i` and `6-5i`, `e^{i t}` and `e^{it}` are the same answer
  (Math-Verify reads a standalone `i` as the imaginary unit only when spaces isolate it), while a
  command keeps its boundary (`\\cdot x` never becomes `\\cdotx`) and `\\text{...}` keeps its words.
  A word `and` / `or` standing alone is prose and reads as a comma, before the spaces go; the
  scientific notation and the "where" gloss, plain-text conventions, are read before that too.
  `\\dfrac`, `\\tfrac`, `\\cfrac` are `\\frac`; text in a subscript (`\\lambda_{\\text{red}}`) is a
  label; a subscripted `E`/`e` (`E_{1}`) is a symbol, not Euler's number (Math-Verify's parser
  otherwise drops that term: the gold `\\frac{1}{3} E_{1}+\\frac{2}{3} E_{2}` read as 2/3).
* **Parsing** (`parse_candidates`): as LaTeX inside `\\boxed{}`, then inside `$...$`, then as a
  plain expression; the first strategy that yields a sympy object wins (a union would let the gold
  `69,84` also mean the decimal 69.84). Failing all, the strings compare, never one that Math-Verify
  cut short (unbalanced braces).
* **Multi-part policy.** A gold with top-level commas (OlympiadBench joins several answers that way,
  `69,84`) parses to a set and is compared as an UNORDERED collection with every part required:
  `69, 84`, `84, 69`, `\\boxed{69}, \\boxed{84}`, `(69, 84)` and `\\{69, 84\\}` match; `69` alone or
  `69, 84, 85` do not. Commas inside brackets belong to one tuple or interval (the gold `(1,2)` is
  one answer and needs `(1,2)`), and digit groups of exactly three (`1,000`, `58,500`) are a
  thousands separator on both sides, as Math-Verify reads them (with or without a space after the
  comma, which LaTeX ignores: `69, 840` is `69,840`).
* **Rounding.** Math-Verify compares floats rounded to 6 decimal places; small values must also
  agree to a relative 1e-4 (`equal_only_after_rounding`).

Math-Verify and sympy are imported lazily, so the caller's process never loads them.
"""

from __future__ import annotations

import functools
import math
import re

from ispo.answers.extract import close_brace
from ispo.answers.screen import braces_balance

__all__ = ["grade", "normalize", "parse_gold"]

# `3.83e35`, `1e-5`, `2.7778e-6`: not preceded by a letter/backslash so `\sec5` or `x_e3` stay put.
_SCI_RE = re.compile(r"(?<![\w\\.])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
_PY_NAME_RE = re.compile(r"\b(?:np|numpy|math|sympy|sp)\.(\w+)(\s*\()?")
_PY_FUNCTIONS = {
    "arcsin": r"\arcsin",
    "arccos": r"\arccos",
    "arctan": r"\arctan",
    "asin": r"\arcsin",
    "acos": r"\arccos",
    "atan": r"\arctan",
    "sin": r"\sin",
    "cos": r"\cos",
    "tan": r"\tan",
    "exp": r"\exp",
    "log": r"\ln",
    "ln": r"\ln",
    "log10": r"\log_{10}",
    "sqrt": r"\sqrt",
}
_PY_CONSTANTS = {"pi": r"\pi", "e": "e", "inf": r"\infty"}
# `t(0,4]`: a variable glued to an interval (mismatched brackets, so not a function call).
_GLUED_INTERVAL_RE = re.compile(r"^([A-Za-z])\s*(\((?:[^()\[\]]*)\]|\[(?:[^()\[\]]*)\))$")
_TEXT_LABEL_RE = re.compile(r"_\s*\{\s*\\(?:text[A-Za-z]*|mathrm|mbox)\s*\{([^{}]*)\}\s*\}")
# `\left(`, `(`, `[`, `\{` wrappers that may be peeled off a multi-part answer written as a tuple.
_WRAPPERS = (
    (r"\left(", r"\right)"),
    (r"\left[", r"\right]"),
    (r"\left\{", r"\right\}"),
    (r"\{", r"\}"),
    ("(", ")"),
    ("[", "]"),
)


def normalize(text: str) -> str:
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
    # `\lambda_{\text{red}}`: text in a subscript is a label too (Math-Verify cuts `_{\text{` short).
    text = _TEXT_LABEL_RE.sub(lambda m: "_{" + re.sub(r"\s+", "", m.group(1)) + "}", text)
    # OlympiadBench glosses some answers in prose: `f(x)=a x+b, where b is an arbitrary integer...`
    text = re.split(r",?\s*(?:\\text\{\s*)?\bwhere\b", text, maxsplit=1)[0].strip()
    return _canonical_math(text)


# One LaTeX token at a time: a text-mode group opener, a control word, a control symbol (`\ `, `\,`,
# `\\`), a run of whitespace, or a run of anything else.
_LATEX_TOKEN_RE = re.compile(
    r"(?P<text>\\(?:text[A-Za-z]*|mbox|hbox)\s*\{)|(?P<word>\\[A-Za-z]+)|(?P<symbol>\\.)"
    r"|(?P<space>\s+)|(?P<run>[^\\\s]+)",
    re.DOTALL,
)
_CONTROL_WORD_RE = re.compile(r"\\[A-Za-z]+")
# Display variants of a fraction: the same value.
_FRACTION_VARIANTS = {r"\dfrac": r"\frac", r"\tfrac": r"\frac", r"\cfrac": r"\frac"}
# Prose connectives, which Math-Verify reads as separators only while spaces isolate them.
_CONNECTIVES = ("and", "or")
# An `E`/`e` with a subscript is a label (E_{1}, the energy of level 1), but Math-Verify's grammar reads
# `E` as an exponent marker, fails, and keeps only part of the expression (`\frac{1}{3} E_{1}+\frac{2}{3}
# E_{2}` became 2/3). `\mathsf{E}` parses as a plain symbol, also after a number (`\mathrm` and `\text`
# read as units there). Letters of a run are separate symbols in math mode, so none needs excluding.
_SUBSCRIPTED_E_RE = re.compile(r"([Ee])(?=_)")
_SUBSCRIPTED_E_SYMBOL = r"\\mathsf{\1}"  # a replacement template


def _canonical_math(text: str) -> str:
    """`text` with math-mode spacing made canonical; text-mode groups (`\\text{...}`) kept verbatim.

    Whitespace goes everywhere LaTeX ignores it, and one space stays where it ends a control word
    before a letter (`\\cdot x`, `\\pi r`). `\\dfrac`/`\\tfrac`/`\\cfrac` become `\\frac`, a standalone
    `and`/`or` a comma (`2, and 3` one comma), a subscripted `E` `\\mathsf{E}`.
    """
    tokens: list[str] = []
    kinds: list[str] = []  # per token: "text", "word", "symbol", "space" (a kept one) or "run"
    position = 0
    while position < len(text):
        match = _LATEX_TOKEN_RE.match(text, position)
        if match is None:  # a lone backslash at the very end
            tokens.append(text[position:])
            kinds.append("symbol")
            break
        kind, token = match.lastgroup, match.group()
        if kind == "text":
            close = close_brace(text, match.end())
            if close is not None:
                tokens.append(re.sub(r"\s+", "", token) + text[match.end() : close + 1])
                kinds.append("text")
                position = close + 1
                continue
            kind, token = "word", _CONTROL_WORD_RE.match(token).group()
        position = match.start() + len(token)
        if kind == "space":
            if kinds and kinds[-1] == "word" and text[position : position + 1].isalpha():
                tokens.append(" ")  # `\cdot x` is not `\cdotx`
                kinds.append("space")
            continue
        if kind == "word":
            token = _FRACTION_VARIANTS.get(token, token)
        elif kind == "run" and token in _CONNECTIVES:
            token = "" if tokens and tokens[-1].endswith(",") else ","
        if kind == "run" and kinds and kinds[-1] == "run":
            tokens[-1] += token  # two runs meet where a space went
        else:
            tokens.append(token)
            kinds.append(kind)
    return "".join(
        _SUBSCRIPTED_E_RE.sub(_SUBSCRIPTED_E_SYMBOL, token) if kind == "run" else token
        for token, kind in zip(tokens, kinds, strict=True)
    )


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


_BRACKET_TOKEN_RE = re.compile(r"\\left.|\\right.|\\[{}]|[(\[{)\]}]|,")


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


def _unwrap(text: str) -> str | None:
    """`text` without one pair of enclosing brackets, if it has one around a top-level comma list."""
    for opening, closing in _WRAPPERS:
        if text.startswith(opening) and text.endswith(closing):
            inner = text[len(opening) : len(text) - len(closing)]
            comma, balanced = _top_level_commas(inner)
            if comma and balanced:  # `(1,2),(3,4)` is two tuples, not one wrapper
                return inner
    return None


def math_verify_api():
    """Math-Verify's (parse, verify, LaTeX config, expression config), imported on first use."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    return parse, verify, [LatexExtractionConfig()], [ExprExtractionConfig()]


def parse_candidates(text: str) -> list:
    """Parsed forms of an answer string: first strategy that yields a sympy object wins.

    Falls back to Math-Verify's string form so that two unparseable but identical strings still
    compare equal; an empty list means nothing at all could be read.
    """
    parse, _, latex_config, expr_config = math_verify_api()
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
            # an unbalanced string is Math-Verify's extraction cut short (`\lambda_{`): two different
            # answers cut at the same place must not compare equal
            fallback = [p for p in parsed if isinstance(p, str) and p.strip() and braces_balance(p)]
    return fallback or ([text] if text else [])


@functools.lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple[tuple, bool]:
    """(parsed gold candidates, is_multi_part). Cached: one gold serves all G rollouts of a prompt."""
    text = normalize(gold)
    candidates = parse_candidates(text) if text else []
    from sympy import FiniteSet

    is_multi = _top_level_commas(text)[0] and any(isinstance(c, FiniteSet) for c in candidates)
    return tuple(candidates), is_multi


@functools.lru_cache(maxsize=16384)
def grade(gold: str, answer: str | None) -> bool | None:
    """Grade one pair. Gold first; None only when the gold yields nothing.

    Cached: the rollouts of one prompt often repeat an answer, and evaluation repeats samples.
    """
    gold_candidates, is_multi = parse_gold(gold)
    if not gold_candidates:
        return None
    if answer is None:
        return False
    text = normalize(answer)
    if not text:
        return False
    _, verify, _, _ = math_verify_api()
    predictions = parse_candidates(text)
    if is_multi:
        inner = _unwrap(text)
        if inner is not None:
            predictions = predictions + parse_candidates(inner)
    return any(
        verify(expected, prediction, timeout_seconds=None) and not equal_only_after_rounding(expected, prediction)
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


def equal_only_after_rounding(gold, prediction) -> bool:
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
