import math

import pytest

from ispo.eval.confidence import answer_confidence, char_span_to_token_span


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_char_tokenizer_span_is_exact(tokenizer):
    text = "so \\boxed{\\frac{1}{2}} ok"
    ids = encode(tokenizer, text) + [tokenizer.eos_token_id]
    start = text.index("\\frac")
    first, last = char_span_to_token_span(tokenizer, ids, (start, start + len("\\frac{1}{2}")))
    assert tokenizer.decode(ids[first:last]) == "\\frac{1}{2}"


def test_multi_character_tokens_cover_the_span():
    """A byte-level BPE (tokens span several characters and split UTF-8) still covers the answer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = ["the answer is \\boxed{42} and \\boxed{x^2}", "héllo wörld ∑ answer 4242"] * 50
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    text = "∑ héllo, the answer is \\boxed{4242} wörld"
    ids = encode(tokenizer, text)
    assert tokenizer.decode(ids) == text
    start = text.index("4242")
    first, last = char_span_to_token_span(tokenizer, ids, (start, start + 4))
    covered = tokenizer.decode(ids[first:last])
    assert "4242" in covered and len(covered) < len("{4242}") + 4


def test_answer_confidence_reads_the_graded_span(tokenizer):
    text = "first \\boxed{1} then \\boxed{23}"
    ids = encode(tokenizer, text)
    logprobs = [-5.0] * len(ids)
    start = text.rindex("23")
    logprobs[start] = math.log(0.5)
    logprobs[start + 1] = math.log(0.25)
    mean_logprob, mean_prob = answer_confidence(tokenizer, ids, logprobs)
    assert mean_logprob == pytest.approx((math.log(0.5) + math.log(0.25)) / 2)
    assert mean_prob == pytest.approx(0.375)


def test_no_answer_means_no_confidence(tokenizer):
    assert answer_confidence(tokenizer, encode(tokenizer, "no box \\boxed{12"), [-1.0] * 16) is None
    ids = encode(tokenizer, "<answer> 7 </answer>")
    assert answer_confidence(tokenizer, ids, [-2.0] * len(ids), "answer_tag") == pytest.approx((-2.0, math.exp(-2.0)))
