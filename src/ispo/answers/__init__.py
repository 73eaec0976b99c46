"""Answers: where a completion's final answer is, and whether it equals the gold answer.

The training reward (the outcome reward R_o of docs/algorithm.md "3. Composite reward and
advantage") and the evaluation harness both call `verify_batch`, so the two cannot drift; the
trainer locates the answer marker m_i and span a_i of docs/algorithm.md "Notation" with
`locate_answer_tokens`, on the same `find_answer_span`. One module per job:

- `formats`: the one table of answer formats (`ANSWER_FORMAT_SPECS`, `ANSWER_FORMATS`,
  `AnswerFormat`, `ANSWER_MARKERS`).
- `extract`: the final answer's text and character span in a completion.
- `screen`: refusing absurd input before any parsing.
- `grade`: normalisation and Math-Verify grading of one (gold, answer) pair, gold first.
- `workers`: persistent grading processes with deadlines (`Verifier`, `verify_batch`, `verify_answer`).
- `spans`: the answer's token positions on a rollout's own ids (`locate_answer_tokens`).

Verdicts: True / False for correct / incorrect (no answer, an empty, unparseable or absurd answer is
False); None when the gold itself is unusable, so a reward skips the pair rather than score 0.
"""

from ispo.answers.config import DEFAULT_CONFIG, VerifyConfig
from ispo.answers.extract import extract_answer, find_answer_span
from ispo.answers.formats import (
    ANSWER_FORMAT_SPECS,
    ANSWER_FORMATS,
    ANSWER_MARKERS,
    AnswerFormat,
    AnswerFormatSpec,
    check_answer_format,
)
from ispo.answers.spans import AnswerTokens, locate_answer_tokens
from ispo.answers.workers import Verifier, verify_answer, verify_batch

__all__ = [
    "ANSWER_FORMATS",
    "ANSWER_FORMAT_SPECS",
    "ANSWER_MARKERS",
    "DEFAULT_CONFIG",
    "AnswerFormat",
    "AnswerFormatSpec",
    "AnswerTokens",
    "Verifier",
    "VerifyConfig",
    "check_answer_format",
    "extract_answer",
    "find_answer_span",
    "locate_answer_tokens",
    "verify_answer",
    "verify_batch",
]
