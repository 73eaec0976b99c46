"""Answer confidence of a sampled completion: the model's probability on its own answer tokens.

Hallucinated Certainty (spec section 4) shows at evaluation time as a high answer confidence on
incorrect samples. The answer span is the one ``ispo.verify`` grades (its ``find_answer_span``:
the last complete ``\\boxed{...}`` or ``<answer>...</answer>``), located in the decoded text and
mapped back to completion tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ispo.verify import find_answer_span


def char_span_to_token_span(tokenizer, token_ids: Sequence[int], char_span: tuple[int, int]) -> tuple[int, int]:
    """Map a ``[start, end)`` span of ``decode(token_ids)`` to the ``[first, last + 1)`` tokens covering it.

    Binary search on decoded prefix lengths (O(log T) decodes), which needs no offset mapping and
    so works for any tokenizer, including byte-level BPE whose tokens split characters.
    """
    start, end = char_span

    def first_prefix_longer_than(position: int) -> int:
        low, high = 0, len(token_ids)
        while low < high:
            middle = (low + high) // 2
            if len(tokenizer.decode(token_ids[:middle], skip_special_tokens=True)) > position:
                high = middle
            else:
                low = middle + 1
        return low

    first = max(first_prefix_longer_than(start) - 1, 0)
    last = max(first_prefix_longer_than(end - 1), first + 1)
    return first, min(last, len(token_ids))


def answer_confidence(
    tokenizer,
    token_ids: Sequence[int],
    token_logprobs: Sequence[float],
    answer_format: str = "boxed",
) -> tuple[float, float] | None:
    """``(mean log-prob, mean probability)`` of the answer-span tokens, or None without an answer."""
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    span = find_answer_span(text, answer_format)
    if span is None:
        return None
    first, last = char_span_to_token_span(tokenizer, token_ids, (span[1], span[2]))
    span = token_logprobs[first:last]
    if not span:
        return None
    return sum(span) / len(span), sum(math.exp(lp) for lp in span) / len(span)
