"""The answer formats: where a completion puts its final answer, and the text that marks it.

This is the one table of formats. The extractor (`ispo.answers.extract`), the trainer (which places
the marker m_i before an answer's tokens, docs/algorithm.md "Notation"), the training and evaluation
prompts and the configuration choices all read it, so a format is added or changed here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "ANSWER_FORMATS",
    "ANSWER_FORMAT_SPECS",
    "ANSWER_MARKERS",
    "AnswerFormat",
    "AnswerFormatSpec",
    "check_answer_format",
]

AnswerFormat = Literal["boxed", "answer_tag"]
ANSWER_FORMATS: tuple[str, ...] = get_args(AnswerFormat)


@dataclass(frozen=True)
class AnswerFormatSpec:
    """How one answer format is written.

    Attributes:
        name: the `answer_format` value.
        marker: the opening text written before the answer, m_i of docs/algorithm.md "Notation"; the
            trainer tokenises it when it places a gold answer after a rollout's thinking.
        closing: the text that ends the answer.
        aliases: other opening texts the extractor also reads (`\\fbox{` for a box).
        instruction: the prompt sentence asking for the final answer in this format.
    """

    name: str
    marker: str
    closing: str
    aliases: tuple[str, ...]
    instruction: str

    def wrap(self, answer: str) -> str:
        """`answer` written in this format: `\\boxed{5}`, `<answer>5</answer>`."""
        return f"{self.marker}{answer}{self.closing}"


ANSWER_FORMAT_SPECS: dict[str, AnswerFormatSpec] = {
    "boxed": AnswerFormatSpec(
        name="boxed",
        marker="\\boxed{",
        closing="}",
        aliases=("\\fbox{",),
        instruction="Please reason step by step, and put your final answer within \\boxed{}.",
    ),
    "answer_tag": AnswerFormatSpec(
        name="answer_tag",
        marker="<answer>",
        closing="</answer>",
        aliases=(),
        instruction="Please reason step by step, and put your final answer within <answer> </answer> tags.",
    ),
}

# format -> the marker text placed before an answer when building tokens
ANSWER_MARKERS: dict[str, str] = {name: spec.marker for name, spec in ANSWER_FORMAT_SPECS.items()}

if tuple(ANSWER_FORMAT_SPECS) != ANSWER_FORMATS:  # the Literal and the table must list the same formats
    raise ImportError(f"ANSWER_FORMAT_SPECS {tuple(ANSWER_FORMAT_SPECS)} disagrees with AnswerFormat {ANSWER_FORMATS}")


def check_answer_format(answer_format: str) -> None:
    """Raise ValueError naming `answer_format` unless it is one of `ANSWER_FORMATS`."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
