"""Answer spans in token space, located on the rollout's own token ids (never re-tokenised, docs/algorithm.md
"1. Sequence level: Conditional IFD").

``ispo.answers.extract.find_answer_span`` gives character offsets in the decoded completion; this module
maps them back to token positions on the rollout's ids: the marker m_i and the answer a_i of
docs/algorithm.md "Notation". The exact criterion is on decoded prefixes: token k holds character c when
``len(decode(ids[:k])) <= c < len(decode(ids[:k+1]))``. Answers sit near the end, so a candidate k is
first found on short decoded *suffixes* (galloping back from the end, then bisecting), and checked with
the two prefix decodes of the criterion; where a tokenizer's decoding is not concatenative at that cut
and the check fails, a bisection on prefixes decides. All rows are decoded together, one
``batch_decode`` per search step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ispo.answers.extract import find_answer_span
from ispo.answers.formats import AnswerFormat, check_answer_format


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
    tokenizer, completion_ids: Sequence[Sequence[int]], answer_format: AnswerFormat
) -> list[AnswerTokens | None]:
    """For each completion (unpadded ids), the token span of its last answer, or None when it has none.

    The text searched is ``tokenizer.decode(ids, skip_special_tokens=True)``, as TRL decodes completions.
    Raises ValueError for an unknown ``answer_format``.
    """
    check_answer_format(answer_format)
    ids = [list(row) for row in completion_ids]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    char_spans = [find_answer_span(text, answer_format) for text in texts]
    # One query per boundary: (row, character offset); answer: the token that holds that character.
    queries: list[tuple[int, int]] = []
    for row, span in enumerate(char_spans):
        if span is not None and span[2] > span[1]:
            marker_start, answer_start, answer_end = span
            queries += [(row, marker_start), (row, answer_start), (row, answer_end - 1)]
    token_of = _tokens_holding_chars(tokenizer, ids, texts, queries)
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


def _decoded_lengths(tokenizer, pieces: list[list[int]]) -> list[int]:
    return [len(text) for text in tokenizer.batch_decode(pieces, skip_special_tokens=True)] if pieces else []


def _tokens_holding_chars(tokenizer, ids: list[list[int]], texts: list[str], queries: list[tuple[int, int]]) -> dict:
    """(row, char) -> index of the token of ``ids[row]`` whose decoded text holds that character."""
    queries = list(dict.fromkeys(queries))  # a one-character answer asks twice
    guess = _suffix_search(tokenizer, ids, texts, queries)
    # exact check on prefixes: len(decode(ids[:k])) <= c < len(decode(ids[:k+1]))
    before = _decoded_lengths(tokenizer, [ids[q[0]][: guess[q]] for q in queries])
    through = _decoded_lengths(tokenizer, [ids[q[0]][: guess[q] + 1] for q in queries])
    token_of = {q: guess[q] for q, b, t in zip(queries, before, through, strict=True) if b <= q[1] < t}
    token_of.update(_prefix_search(tokenizer, ids, [q for q in queries if q not in token_of]))
    return token_of


def _suffix_search(tokenizer, ids: list[list[int]], texts: list[str], queries: list[tuple[int, int]]) -> dict:
    """Candidate tokens from decoded suffixes: the largest k with len(decode(ids[k:])) >= len(text) - c."""
    need = {q: len(texts[q[0]]) - q[1] for q in queries}  # characters from c to the end
    width = {q: 16 for q in queries}
    lo: dict = {}
    while len(lo) < len(queries):  # gallop back from the end until the suffix reaches the character
        pending = [q for q in queries if q not in lo]
        starts = {q: max(0, len(ids[q[0]]) - width[q]) for q in pending}
        lengths = _decoded_lengths(tokenizer, [ids[q[0]][starts[q] :] for q in pending])
        for q, length in zip(pending, lengths, strict=True):
            if length >= need[q] or starts[q] == 0:
                lo[q] = starts[q]
            else:
                width[q] *= 2
    hi = {q: len(ids[q[0]]) for q in queries}  # the empty suffix never reaches the character
    while True:
        pending = [q for q in queries if hi[q] - lo[q] > 1]
        if not pending:
            break
        mids = {q: (lo[q] + hi[q]) // 2 for q in pending}
        lengths = _decoded_lengths(tokenizer, [ids[q[0]][mids[q] :] for q in pending])
        for q, length in zip(pending, lengths, strict=True):
            if length >= need[q]:
                lo[q] = mids[q]
            else:
                hi[q] = mids[q]
    return {q: min(lo[q], max(0, len(ids[q[0]]) - 1)) for q in queries}


def _prefix_search(tokenizer, ids: list[list[int]], queries: list[tuple[int, int]]) -> dict:
    """(row, char) -> index of the first token k such that decode(ids[row][:k+1]) is longer than char."""
    # Search k in [lo, hi): the smallest prefix length whose decoded text extends past the character.
    lo = {q: 1 for q in queries}
    hi = {q: len(ids[q[0]]) for q in queries}
    while True:
        pending = [q for q in queries if lo[q] < hi[q]]
        if not pending:
            break
        mids = {q: (lo[q] + hi[q]) // 2 for q in pending}
        lengths = _decoded_lengths(tokenizer, [ids[q[0]][: mids[q]] for q in pending])
        for q, length in zip(pending, lengths, strict=True):
            if length > q[1]:
                hi[q] = mids[q]
            else:
                lo[q] = mids[q] + 1
    # lo is the prefix length; the token index is one less
    return {q: max(0, lo[q] - 1) for q in queries}
