"""Outcome rewards in TRL's reward-function signature, built on ``ispo.answers.verify_batch``.

Training reward (R_o of docs/algorithm.md "3. Composite reward and advantage") and evaluation call the
same checker, so they cannot drift apart.
"""

from __future__ import annotations

import warnings
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


def resolve_outcome_reward(
    names: list[str],
    weights: list[float],
    choice: str | None,
    *,
    uses_outcome: bool = True,
    allow_override: bool = False,
) -> int:
    """Index of the reward function whose value is R_o (docs/algorithm.md, "The outcome reward").

    ``choice`` (``ISPOConfig.outcome_reward``) names it: a function name or an index; by default the only
    function, else ``math_accuracy``. The others are auxiliary: added with their weights to the method's
    reward, never used for the correct/incorrect branch. R_o's own weight must be 1 (a 0/1 outcome)
    unless ``allow_override``. ``uses_outcome=False`` (GRPO's family) skips the weight check and warning.
    """
    if choice is None:
        if len(names) == 1:
            index = 0
        elif "math_accuracy" in names:
            index = names.index("math_accuracy")
        else:
            raise ValueError(
                f"ISPOConfig.outcome_reward: {len(names)} reward functions {names} and none is 'math_accuracy'; "
                "name the 0/1 outcome reward (function name or index)"
            )
    elif str(choice).isdigit():
        index = int(choice)
        if index >= len(names):
            raise ValueError(f"ISPOConfig.outcome_reward: index {index} but only {len(names)} reward functions")
    elif choice in names:
        index = names.index(choice)
    else:
        raise ValueError(f"ISPOConfig.outcome_reward: no reward function named {choice!r} (have {names})")
    weight = weights[index]
    if uses_outcome and weight != 1.0 and not allow_override:
        raise ValueError(
            f"ISPOConfig.reward_weights: the outcome reward {names[index]!r} must have weight 1, got {weight:g} "
            "(R_o is the 0/1 outcome; scale the auxiliary rewards instead, or set allow_outcome_override=True)"
        )
    if len(names) > 1 and uses_outcome:
        others = [n for i, n in enumerate(names) if i != index]
        warnings.warn(
            f"ISPO: outcome reward {names[index]!r}; auxiliary rewards {others} are added with their weights to "
            "the trained reward and can reorder correct and incorrect rollouts (so can the intrinsic terms: "
            "dominance/violations measures it)",
            stacklevel=3,
        )
    return index


def check_dataset_rows(dataset, name: str, required: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first row of ``dataset`` that lacks a required column value."""
    if isinstance(dataset, dict):  # DatasetDict, or TRL's dict of named eval datasets
        for split, part in dataset.items():
            check_dataset_rows(part, f"{name}[{split!r}]", required)
        return
    if dataset is None or not hasattr(dataset, "column_names") or not hasattr(dataset, "__len__"):
        return  # iterable datasets are not scanned up front
    for column in required:
        if column not in dataset.column_names:
            raise ValueError(
                f"{name} row 0 has no {column!r} column (columns: {dataset.column_names}); "
                f"ISPO datasets need the columns {list(required)}"
            )
        for index, value in enumerate(dataset[column]):
            if value is None or (isinstance(value, (str, list)) and len(value) == 0):
                raise ValueError(f"{name} row {index}: {column!r} is empty")
