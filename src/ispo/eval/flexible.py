"""Flexible extraction: the last number of a completion, graded beside the strict answer.

The strict score reads only the answer where ``--answer-format`` puts it (``\\boxed{}``), exactly as
the training reward does. Evaluation harnesses also report GSM8K with a *flexible* extraction that
takes the last number written anywhere in the completion (lm-evaluation-harness's
``flexible-extract``), which credits a model that reasons to the right number but never writes the
marker. ``ispo eval --flexible-extract`` adds that score as separate metrics named ``flexible
pass@1`` (and so on); the strict ones keep their names and values. The training reward never uses
it. docs/eval.md ("Strict and flexible extraction") states the rule.

The rule: a number is an optional minus sign, then digits with optional thousands commas
(``1,234``) and an optional decimal part (``3.5``); a ``$`` before it and a period after it are not
part of it. The last such number in the completion is the answer, commas removed, and is graded by
the same grader as the strict answer. A fraction ``3/4`` reads as its last number, ``4``: flexible
extraction is meant for numeric answers (GSM8K); on MATH-500 it is reported but means less.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence

FLEXIBLE_PREFIX = "flexible "  # metric names: "flexible pass@1", "flexible avg@8", ...
FLEXIBLE_LABEL = (
    "flexible = the last number in the completion (lm-evaluation-harness's GSM8K flexible-extract); "
    "the other metrics are strict: the answer in the answer format, as the training reward reads it"
)

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def last_number(completion: str) -> str | None:
    """The last number written in ``completion`` (commas removed), or None when there is none."""
    matches = _NUMBER.findall(completion.replace("$", " "))
    return matches[-1].replace(",", "") if matches else None


def flexible_verdicts(golds: Sequence[str], completions: Sequence[str], *, timeout: float = 5.0) -> list:
    """``(answer, verdict)`` per completion: its last number and True / False (None: unusable gold)."""
    from ispo.answers import verify_batch

    answers = [last_number(text) for text in completions]
    verdicts = verify_batch(
        list(golds),
        ["" if answer is None else f"\\boxed{{{answer}}}" for answer in answers],
        answer_format="boxed",
        timeout=timeout,
    )
    return list(zip(answers, verdicts, strict=True))


def add_flexible(records: Sequence[MutableMapping], *, timeout: float = 5.0) -> int:
    """Give each record without them ``flexible_answer`` and ``flexible_correct``; returns how many."""
    missing = [record for record in records if "flexible_correct" not in record]
    if missing:
        results = flexible_verdicts([r["gold"] for r in missing], [r["completion"] for r in missing], timeout=timeout)
        for record, (answer, verdict) in zip(missing, results, strict=True):
            record["flexible_answer"] = answer
            record["flexible_correct"] = verdict
    return len(missing)


def split_metric(metric: str) -> tuple[str, str]:
    """``(record field, base metric)``: ``"flexible pass@1"`` -> ``("flexible_correct", "pass@1")``."""
    if metric.startswith(FLEXIBLE_PREFIX):
        return "flexible_correct", metric[len(FLEXIBLE_PREFIX) :]
    return "correct", metric
