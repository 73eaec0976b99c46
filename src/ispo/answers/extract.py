"""Finding the final answer in a completion: pure string work, run in the caller's process.

Only the final answer is graded: the contents of the last complete `\\boxed{...}` (`\\fbox{...}` and
`\\boxed 5` count too), or of the last `<answer>...</answer>` (a box inside it is unwrapped). Text
before it is never parsed, which also keeps long completions cheap. When the last boxes form a run
joined only by commas, "and" or spaces (`\\boxed{69}, \\boxed{84}`), the run is graded as one
multi-part answer (`graded_answer`), so boxing several candidates is never rewarded for the one
that happens to be right. `extract_answer` still returns only the last box.
"""

from __future__ import annotations

import re

from ispo.answers.config import DEFAULT_CONFIG
from ispo.answers.formats import ANSWER_FORMAT_SPECS, AnswerFormat, check_answer_format

__all__ = ["extract_answer", "find_answer_span", "graded_answer"]

_BOXED = ANSWER_FORMAT_SPECS["boxed"]
_TAG = ANSWER_FORMAT_SPECS["answer_tag"]
# The box commands, from the formats table: `boxed`, `fbox`.
_BOX_COMMANDS = [opening.removeprefix("\\").removesuffix("{") for opening in (_BOXED.marker, *_BOXED.aliases)]
# `\boxed{`, `\boxed {`, `\fbox{`; and the brace-less `\boxed 5` (one token).
_BOX_MARKER_RE = re.compile(rf"\\(?:{'|'.join(_BOX_COMMANDS)})\s*\{{|\\{_BOX_COMMANDS[0]}[ \t]+(?=[^\s{{\\$])")
# Escaped characters are consumed in pairs so `\{`, `\}` and `\\{` count correctly.
BRACE_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_BARE_TOKEN_RE = re.compile(r"[^\s$]+")
# At most this many box markers are tried from the end: each unclosed one costs a scan to the end.
_MAX_MARKERS_TRIED = 32


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) to exclude surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def close_brace(text: str, open_end: int) -> int | None:
    """Index of the `}` that closes the group opened just before `open_end`, or None if unclosed."""
    depth = 1
    for match in BRACE_RE.finditer(text, open_end):
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
            close = close_brace(text, marker.end())
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


def find_answer_span(completion: str, answer_format: AnswerFormat = "boxed") -> tuple[int, int, int] | None:
    """Character offsets (marker_start, answer_start, answer_end) of the final answer in `completion`.

    `completion[marker_start:answer_start]` is the marker (`\\boxed{`, `<answer>`, plus any
    whitespace before the answer) and `completion[answer_start:answer_end]` the answer text without
    the closing brace or tag. The ISPO trainer maps these offsets to the token spans m_i and a_i of
    docs/algorithm.md "Notation" (`ispo.answers.spans`). For "boxed" the last complete box wins (an
    unclosed trailing box is ignored); for "answer_tag" the last `<answer>` before the last
    `</answer>`. None when there is no complete, non-empty answer, so a rollout without an answer
    span gets no IFD term. Only the last `VerifyConfig.max_scan_chars` characters are searched.
    Raises ValueError for an unknown `answer_format`.
    """
    check_answer_format(answer_format)
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
        close = text.rfind(_TAG.closing)
        if close < 0:
            return None
        marker_start = text.rfind(_TAG.marker, 0, close)
        if marker_start < 0:
            return None
        answer_start, answer_end = _strip_span(text, marker_start + len(_TAG.marker), close)
        span = (marker_start, answer_start, answer_end)
    if span[1] == span[2]:
        return None
    return span[0] + offset, span[1] + offset, span[2] + offset


def extract_answer(completion: str, answer_format: AnswerFormat = "boxed") -> str | None:
    """The final answer text of `completion` (see `find_answer_span`), or None if absent or empty."""
    span = find_answer_span(completion, answer_format)
    return None if span is None else completion[span[1] : span[2]]


# Between two boxes of one multi-part answer only separators may appear.
_BOX_SEPARATOR_RE = re.compile(r"(?:\s|\$|,|;|&|\\quad|\\qquad|\\,|\\;|\\text\{\s*(?:and|or|,)?\s*\}|\b(?:and|or)\b)*")


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


def graded_answer(completion: str, answer_format: AnswerFormat) -> str | None:
    """The text that the grader reads: `extract_answer`, widened to a trailing run of boxes."""
    if answer_format == "boxed":
        return _trailing_box_run(completion) or extract_answer(completion, "boxed")
    answer = extract_answer(completion, "answer_tag")
    if answer is not None and "\\boxed" in answer:
        answer = extract_answer(answer, "boxed")  # `<answer>\boxed{5}</answer>`
    return answer
