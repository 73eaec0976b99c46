"""Backwards-compatible alias of `ispo.answers`, the home of answer extraction and grading.

`from ispo.verify import verify_answer` keeps working; new code imports from `ispo.answers`.
"""

from ispo.answers import (
    ANSWER_FORMATS,
    AnswerFormat,
    Verifier,
    VerifyConfig,
    extract_answer,
    find_answer_span,
    verify_answer,
    verify_batch,
)

__all__ = [
    "ANSWER_FORMATS",
    "AnswerFormat",
    "Verifier",
    "VerifyConfig",
    "extract_answer",
    "find_answer_span",
    "verify_answer",
    "verify_batch",
]
