import math

import pytest

from ispo.eval.confidence import answer_confidences


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_confidence_reads_the_graded_answer_tokens(tokenizer):
    text = "first \\boxed{1} then \\boxed{23}"
    ids = encode(tokenizer, text) + [tokenizer.eos_token_id]
    logprobs = [-5.0] * len(ids)
    start = text.rindex("23")
    logprobs[start] = math.log(0.5)
    logprobs[start + 1] = math.log(0.25)
    [(mean_logprob, mean_prob)] = answer_confidences(tokenizer, [ids], [logprobs])
    assert mean_logprob == pytest.approx((math.log(0.5) + math.log(0.25)) / 2)
    assert mean_prob == pytest.approx(0.375)


def test_rows_without_an_answer_have_no_confidence(tokenizer):
    rows = [
        encode(tokenizer, "no box \\boxed{12"),
        encode(tokenizer, "<answer> 7 </answer>"),
        encode(tokenizer, "\\boxed{7}"),
    ]
    logprobs = [[-2.0] * len(row) for row in rows]
    assert answer_confidences(tokenizer, rows, logprobs, "answer_tag") == [
        None,
        pytest.approx((-2.0, math.exp(-2.0))),
        None,
    ]
    assert answer_confidences(tokenizer, rows, logprobs)[:2] == [None, None]
