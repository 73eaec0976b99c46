"""`ispo.answers.extract`: which text of a completion is the final answer (pure string work, no worker)."""

from __future__ import annotations

import pytest

from ispo.answers import extract_answer, find_answer_span
from ispo.answers.extract import graded_answer

# (completion, answer_format, expected extract_answer)
EXTRACT_CASES = [
    (r"so \boxed{5}.", "boxed", "5"),
    (r"\boxed{\frac{1}{2}}", "boxed", r"\frac{1}{2}"),
    (r"\boxed{\left\{1,2\right\}}", "boxed", r"\left\{1,2\right\}"),
    (r"\boxed{\{1, 2\}}", "boxed", r"\{1, 2\}"),
    (r"first \boxed{1} then \boxed{2}", "boxed", "2"),
    (r"\boxed{ 7 }", "boxed", "7"),
    (r"\boxed {7}", "boxed", "7"),
    (r"\fbox{7}", "boxed", "7"),
    (r"\boxed 7.", "boxed", "7"),
    (r"$\boxed 3.5$", "boxed", "3.5"),
    (r"\boxed{2} and a truncated \boxed{\frac{1}{", "boxed", "2"),
    (r"\boxed{}", "boxed", None),
    (r"\boxed{3} \boxed{ }", "boxed", None),
    ("no answer", "boxed", None),
    ("", "boxed", None),
    (r"\boxed{\text{a}\\{b}}", "boxed", r"\text{a}\\{b}"),
    ("<answer>42</answer>", "answer_tag", "42"),
    ("<answer>\n 42 \n</answer>", "answer_tag", "42"),
    ("<answer>1</answer><answer>2</answer>", "answer_tag", "2"),
    ("<answer>1</answer><answer>2", "answer_tag", "1"),
    ("<answer> </answer>", "answer_tag", None),
    (r"\boxed{3}", "answer_tag", None),
]


@pytest.mark.parametrize(("completion", "answer_format", "expected"), EXTRACT_CASES)
def test_extract_answer(completion, answer_format, expected):
    assert extract_answer(completion, answer_format) == expected


@pytest.mark.parametrize(("completion", "answer_format", "expected"), EXTRACT_CASES)
def test_find_answer_span_agrees_with_extract(completion, answer_format, expected):
    span = find_answer_span(completion, answer_format)
    if expected is None:
        assert span is None
        return
    marker_start, answer_start, answer_end = span
    assert completion[answer_start:answer_end] == expected
    marker = completion[marker_start:answer_start].strip()
    assert marker in {r"\boxed{", r"\boxed {", r"\fbox{", r"\boxed", "<answer>"}


# (completion, answer_format, (marker, answer))
SPAN_CASES = [
    (r"x \boxed{\frac{1}{2}} y", "boxed", (r"\boxed{", r"\frac{1}{2}")),
    (r"\boxed{1} \boxed{22}", "boxed", (r"\boxed{", "22")),
    ("t <answer>\n9</answer>", "answer_tag", ("<answer>\n", "9")),
]


@pytest.mark.parametrize(("completion", "answer_format", "expected"), SPAN_CASES)
def test_find_answer_span_offsets(completion, answer_format, expected):
    marker_start, answer_start, answer_end = find_answer_span(completion, answer_format)
    assert (completion[marker_start:answer_start], completion[answer_start:answer_end]) == expected
    assert completion.rfind(expected[0]) == marker_start


def test_find_answer_span_offsets_in_long_completion():
    completion = "a" * 200_000 + r"\boxed{12}" + "b" * 10
    marker_start, answer_start, answer_end = find_answer_span(completion)
    assert (marker_start, answer_start, answer_end) == (200_000, 200_007, 200_009)


def test_unknown_format_raises():
    with pytest.raises(ValueError, match="answer_format"):
        find_answer_span(r"\boxed{1}", "latex")  # type: ignore[arg-type]


# (completion, answer_format, text the grader reads)
GRADED_CASES = [
    (r"\boxed{69}, \boxed{84}", "boxed", "69, 84"),
    (r"$\boxed{2}$, $\boxed{3}$ \text{ and } $\boxed{4}$", "boxed", "2, 3, 4"),
    (r"first \boxed{69}, so the second is \boxed{84}", "boxed", "84"),  # prose between: not one answer
    (r"\boxed{\boxed{5}}", "boxed", "5"),  # a nested box is not a second part: the inner one is last
    (r"\boxed{5} and then \boxed{}", "boxed", None),
    (r"<answer>\boxed{5}</answer>", "answer_tag", "5"),
    ("<answer> 7 </answer>", "answer_tag", "7"),
    ("no answer", "answer_tag", None),
]


@pytest.mark.parametrize(("completion", "answer_format", "expected"), GRADED_CASES)
def test_graded_answer(completion, answer_format, expected):
    assert graded_answer(completion, answer_format) == expected
