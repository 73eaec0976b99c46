"""Answer spans in token space, located on the rollout's own token ids (spec s1: never re-tokenise).

``ispo.verify.find_answer_span`` gives character offsets in the decoded completion; this module maps
them back to token positions by decoding prefixes of the rollout's ids. Decoded prefix length grows
with the prefix, so each boundary is found by binary search: O(log T) decodes per boundary rather
than one per token, and all rows are decoded together in one ``batch_decode`` per search step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerTokens:
    """Token positions (in the completion, 0-based, end exclusive) of the last answer.

    ``marker_start <= answer_start < answer_end``; the marker is ``[marker_start, answer_start)``, the
    answer ``[answer_start, answer_end)``. A token shared by the marker and the answer counts as answer.
    """

    marker_start: int
    answer_start: int
    answer_end: int


def locate_answer_tokens(
    tokenizer, completion_ids: Sequence[Sequence[int]], answer_format: str
) -> list[AnswerTokens | None]:
    """For each completion (unpadded ids), the token span of its last answer, or None when it has none.

    The text searched is ``tokenizer.decode(ids, skip_special_tokens=True)``, as TRL decodes completions.
    """
    from ispo.verify import find_answer_span

    ids = [list(row) for row in completion_ids]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    char_spans = [find_answer_span(text, answer_format) for text in texts]
    # One query per boundary: (row, character offset); answer: the token that holds that character.
    queries: list[tuple[int, int]] = []
    for row, span in enumerate(char_spans):
        if span is not None and span[2] > span[1]:
            marker_start, answer_start, answer_end = span
            queries += [(row, marker_start), (row, answer_start), (row, answer_end - 1)]
    token_of = _tokens_holding_chars(tokenizer, ids, queries)
    result: list[AnswerTokens | None] = []
    for row, span in enumerate(char_spans):
        if span is None or span[2] <= span[1]:
            result.append(None)
            continue
        marker_tok = token_of[(row, span[0])]
        answer_tok = token_of[(row, span[1])]
        last_tok = token_of[(row, span[2] - 1)]
        result.append(AnswerTokens(min(marker_tok, answer_tok), answer_tok, max(last_tok, answer_tok) + 1))
    return result


def _tokens_holding_chars(tokenizer, ids: list[list[int]], queries: list[tuple[int, int]]) -> dict:
    """(row, char) -> index of the first token k such that decode(ids[row][:k+1]) is longer than char."""
    # Search k in [lo, hi): the smallest prefix length whose decoded text extends past the character.
    lo = {q: 1 for q in queries}
    hi = {q: len(ids[q[0]]) + 1 for q in queries}
    while True:
        pending = [q for q in queries if lo[q] < hi[q]]
        if not pending:
            break
        mids = {q: (lo[q] + hi[q]) // 2 for q in pending}
        lengths = [len(t) for t in tokenizer.batch_decode([ids[q[0]][: mids[q]] for q in pending], skip_special_tokens=True)]
        for q, length in zip(pending, lengths, strict=True):
            if length > q[1]:
                hi[q] = mids[q]
            else:
                lo[q] = mids[q] + 1
    # lo is the prefix length; the token index is one less (clamped for texts that decode oddly)
    return {q: max(0, min(lo[q], len(ids[q[0]])) - 1) for q in queries}
