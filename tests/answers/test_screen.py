"""`ispo.answers.screen`: absurd input is refused before any parsing; a refused gold is None."""

from __future__ import annotations

import pytest

from ispo.answers import VerifyConfig, verify_answer
from ispo.answers.screen import refusal

# (text, reason it is refused, or None)
REFUSAL_CASES = [
    ("1" * 2_001, "too long"),
    (r"\frac{3}{", "unbalanced braces"),
    ("}{", "unbalanced braces"),
    (r"\{1\}", None),  # escaped braces do not count
    ("(" * 41 + "1" + ")" * 41, "nested too deeply"),
    ("(" * 40 + "1" + ")" * 40, None),
    (r"2^{2^{2}}", "exponent tower"),
    (r"9^{9^{9}}", "exponent tower"),
    ("9**9**9", "exponent tower"),
    (r"e^{-x^{2}}", None),  # two levels are ordinary
    (r"2^{2^{n}}", None),
    ("10000!", "large factorial"),
    ("1000!", None),
    ("0001000!", None),
    (r"2^{12345}", "large exponent"),
    (r"2^{1234}", None),
    ("x**12345", "large exponent"),
    (r"\frac{3}{4}", None),
]


@pytest.mark.parametrize(("text", "reason"), REFUSAL_CASES)
def test_refusal(text, reason):
    assert refusal(text, VerifyConfig()) == reason


def test_limits_come_from_the_config():
    assert refusal("1000!", VerifyConfig(max_factorial=999)) == "large factorial"
    assert refusal("12345", VerifyConfig(max_answer_chars=4)) == "too long"
    assert refusal(r"2^{123}", VerifyConfig(max_exponent_digits=2)) == "large exponent"


def test_bad_config_raises():
    with pytest.raises(ValueError, match="max_nesting"):
        VerifyConfig(max_nesting=0)
    with pytest.raises(ValueError, match="kill_grace"):
        VerifyConfig(kill_grace=-1)


# Golds that carry no signal: None, never a fake False.
UNPARSEABLE_GOLDS = ["", "   \n", "x" * 5_000, r"2^{2^{2^{2^{2}}}}", r"\frac{3}{", "}"]


@pytest.mark.parametrize("gold", UNPARSEABLE_GOLDS, ids=["empty", "blank", "long", "tower", "unclosed", "stray"])
def test_unparseable_gold_is_none(gold, warm):
    assert verify_answer(gold, r"\boxed{5}") is None
    assert verify_answer(gold, "no answer here") is None
