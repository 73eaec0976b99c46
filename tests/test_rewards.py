"""math_accuracy: TRL's reward-function signature over ispo.answers, as (gold, completion, expected) rows."""

from __future__ import annotations

import pytest

from ispo.rewards import completion_text, math_accuracy, math_accuracy_reward

CASES = [  # (gold, completion, expected reward)
    ("5", "2+3 = 5, so \\boxed{5}", 1.0),
    ("5", "\\boxed{6}", 0.0),
    ("5", "the answer is 5", 0.0),  # no answer marker: incorrect
    ("\\frac{1}{2}", "\\boxed{0.5}", 1.0),
    ("\\frac{1}{2}", "\\boxed{\\frac12}", 1.0),
    ("42", "first \\boxed{41}, no wait: \\boxed{42}", 1.0),  # the last box counts
    ("42", "\\boxed{42} hmm actually \\boxed{43}", 0.0),
    ("3", "", 0.0),
    ("", "\\boxed{3}", None),  # unusable gold: None, TRL skips the row
]


@pytest.mark.parametrize(("gold", "completion", "expected"), CASES)
def test_plain_completions(gold, completion, expected):
    assert math_accuracy([completion], [gold]) == [expected]


def test_conversational_completions_and_extra_columns():
    completions = [[{"role": "assistant", "content": "\\boxed{7}"}], [{"role": "assistant", "content": "\\boxed{8}"}]]
    rewards = math_accuracy(completions, ["7", "7"], prompts=["p", "p"], trainer_state=None, problem=["a", "b"])
    assert rewards == [1.0, 0.0]


def test_answer_tag_format():
    assert math_accuracy(["<answer>12</answer>", "\\boxed{12}"], ["12", "12"], answer_format="answer_tag") == [1.0, 0.0]
    reward = math_accuracy_reward("answer_tag")
    assert reward.__name__ == "math_accuracy"
    assert reward(completions=["think <answer> 12 </answer>"], answer=["12"]) == [1.0]


def test_length_mismatch_and_bad_completion():
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        math_accuracy(["a", "b"], ["1"])
    with pytest.raises(TypeError):
        completion_text(3)


def test_completion_text():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "b"}]}]) == "b"
    assert completion_text([]) == ""
