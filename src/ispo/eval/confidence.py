"""Answer confidence of sampled completions: the model's probability on its own answer tokens.

Hallucinated Certainty (docs/algorithm.md, "4. Diagnostics") shows at evaluation time as a high answer
confidence on incorrect samples. The answer tokens are located exactly as the trainer locates the
answer span a_i of docs/algorithm.md "Notation" (``ispo.answers.locate_answer_tokens``, on top of
``find_answer_span``), so the number read here and the one logged in training describe the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ispo.answers.spans import locate_answer_tokens


def answer_confidences(
    tokenizer,
    completion_ids: Sequence[Sequence[int]],
    token_logprobs: Sequence[Sequence[float]],
    answer_format: str = "boxed",
) -> list[tuple[float, float] | None]:
    """Per completion, ``(mean log-prob, mean probability)`` of its answer tokens, or None without an answer.

    Args:
        completion_ids: B rows of generated token ids (unpadded, ``(T_b,)`` each).
        token_logprobs: B rows of the sampled tokens' log-probs, aligned with ``completion_ids``.
    """
    spans = locate_answer_tokens(tokenizer, completion_ids, answer_format)
    confidences: list[tuple[float, float] | None] = []
    for span, logprobs in zip(spans, token_logprobs, strict=True):
        answer = list(logprobs[span.answer_start : span.answer_end]) if span is not None else []
        if not answer:
            confidences.append(None)
            continue
        confidences.append((sum(answer) / len(answer), sum(math.exp(lp) for lp in answer) / len(answer)))
    return confidences
