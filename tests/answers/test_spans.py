"""`ispo.answers.spans`: answer spans located in token space on the rollout's own ids."""

from __future__ import annotations

import pytest

from ispo.answers.formats import ANSWER_MARKERS
from ispo.answers.spans import AnswerTokens, locate_answer_tokens
from ispo.models.tiny import build_char_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


@pytest.mark.parametrize(
    ("text", "answer_format", "marker", "answer"),
    [
        ("so 2+3 = 5, \\boxed{5}", "boxed", "\\boxed{", "5"),
        ("first \\boxed{4} then \\boxed{12}.", "boxed", "\\boxed{", "12"),
        ("think <answer>x^2</answer>", "answer_tag", "<answer>", "x^2"),
        ("\\boxed{\\frac{1}{2}}", "boxed", "\\boxed{", "\\frac{1}{2}"),
    ],
)
def test_marker_and_answer_tokens(tokenizer, text, answer_format, marker, answer):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id, tokenizer.pad_token_id]
    (span,) = locate_answer_tokens(tokenizer, [ids], answer_format)
    assert isinstance(span, AnswerTokens)
    assert tokenizer.decode(ids[span.marker_start : span.answer_start]) == marker
    assert tokenizer.decode(ids[span.answer_start : span.answer_end]) == answer
    assert marker == ANSWER_MARKERS[answer_format]  # the trainer places this text before a gold answer


@pytest.mark.parametrize("text", ["no answer here", "\\boxed{", "\\boxed{}", ""])
def test_no_answer_is_none(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert locate_answer_tokens(tokenizer, [ids], "boxed") == [None]


def test_unknown_format_raises_even_for_an_empty_batch(tokenizer):
    with pytest.raises(ValueError, match="answer_format"):
        locate_answer_tokens(tokenizer, [], "latex")  # type: ignore[arg-type]


def test_special_tokens_inside_the_completion_are_skipped(tokenizer):
    """Offsets are in the text TRL decodes (special tokens skipped) but positions index the raw ids."""
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = [im_end] + tokenizer("a \\boxed{7}", add_special_tokens=False)["input_ids"]
    (span,) = locate_answer_tokens(tokenizer, [ids], "boxed")
    assert tokenizer.decode(ids[span.answer_start : span.answer_end]) == "7"
    assert span.marker_start == 3


def test_multi_character_tokens():
    """Byte-level BPE style: one token can hold several characters (here: words of a word-level vocab)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = ["so", " ", "\\boxed{", "12", "3", "}", "."]
    vocab = {p: i for i, p in enumerate(pieces)} | {"[UNK]": len(pieces)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    ids = [0, 1, 2, 3, 4, 5, 6]  # "so \boxed{123}."
    (span,) = locate_answer_tokens(tokenizer, [ids], "boxed")
    assert (span.marker_start, span.answer_start, span.answer_end) == (2, 3, 5)


def test_suffix_search_agrees_with_prefix_bisection(tokenizer):
    import random

    from ispo.answers.spans import _prefix_search, _tokens_holding_chars

    rng = random.Random(0)
    texts = ["".join(rng.choice("ab \\{}12+") for _ in range(rng.randint(1, 300))) for _ in range(20)]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    queries = [(row, rng.randrange(len(t))) for row, t in enumerate(texts) for _ in range(3)]
    expected = _prefix_search(tokenizer, ids, list(dict.fromkeys(queries)))
    assert _tokens_holding_chars(tokenizer, ids, texts, queries) == expected


def test_non_concatenative_decoding_falls_back_to_prefixes():
    """SentencePiece-style decoders drop the leading space of a decoded piece: suffix lengths are off by one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["▁so", "▁it", "▁is", "▁\\boxed{", "12", "}", "[UNK]"]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    ids = [0, 1, 2, 3, 4, 5]  # "so it is \boxed{12}"
    assert tokenizer.decode(ids) == "so it is \\boxed{12}"
    (span,) = locate_answer_tokens(tokenizer, [ids], "boxed")
    assert (span.marker_start, span.answer_start, span.answer_end) == (3, 4, 5)


@pytest.mark.timeout(60)
def test_one_character_answers_do_not_hang():
    # a one-character answer asks for the same (row, char) twice; the search once waited forever for
    # a second distinct result
    from ispo.data.synthetic import CHARACTERS
    from ispo.models.tiny import build_char_tokenizer

    tokenizer = build_char_tokenizer(CHARACTERS)
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in ("5+4=9\n\\boxed{9}", "\\boxed{19}")]
    spans = locate_answer_tokens(tokenizer, ids, "boxed")
    assert (spans[0].answer_start, spans[0].answer_end) == (13, 14)
    assert (spans[1].answer_start, spans[1].answer_end) == (7, 9)
