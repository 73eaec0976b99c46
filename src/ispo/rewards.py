"""Outcome rewards in TRL's reward-function signature, built on ``ispo.answers.verify_batch``.

Training reward (R_o of docs/algorithm.md "3. Composite reward and advantage") and evaluation call the
same checker, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ispo.answers import AnswerFormat, verify_batch


def completion_text(completion: Any) -> str:
    """The text of a completion: a plain string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                content = message.get("content", "")
                if isinstance(content, list):  # content blocks: keep the text parts
                    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
                return "" if content is None else str(content)
        return ""
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def math_accuracy(
    completions: list,
    answer: list,
    *,
    answer_format: AnswerFormat = "boxed",
    timeout: float = 5.0,
    **kwargs,
) -> list[float | None]:
    """1.0 when the completion's final answer equals the gold ``answer``, 0.0 when not, None when the gold
    cannot be parsed (TRL then leaves the row out of the group baseline and gives it advantage 0).

    A completion without an answer (no ``\\boxed{}`` / ``<answer>``) scores 0.0. ``answer`` is the
    dataset column of the same name, which TRL passes through; other columns arrive in ``kwargs``.
    """
    if len(completions) != len(answer):
        raise ValueError(f"math_accuracy: {len(completions)} completions but {len(answer)} answers")
    texts = [completion_text(completion) for completion in completions]
    golds = [str(gold) for gold in answer]
    verdicts = verify_batch(golds, texts, answer_format=answer_format, timeout=timeout)
    return [None if verdict is None else float(verdict) for verdict in verdicts]


def math_accuracy_reward(answer_format: AnswerFormat = "boxed", timeout: float = 5.0):
    """``math_accuracy`` bound to one answer format, named ``math_accuracy`` for TRL's logs."""

    def math_accuracy_for_format(completions, answer, **kwargs):
        return math_accuracy(completions, answer, answer_format=answer_format, timeout=timeout, **kwargs)

    math_accuracy_for_format.__name__ = "math_accuracy"
    math_accuracy_for_format.__qualname__ = "math_accuracy"
    return math_accuracy_for_format
