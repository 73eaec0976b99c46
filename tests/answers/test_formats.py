"""`ispo.answers.formats`: the one table of answer formats, and everything that reads it agrees with it."""

from __future__ import annotations

from typing import get_args

import pytest

from ispo.answers import (
    ANSWER_FORMAT_SPECS,
    ANSWER_FORMATS,
    ANSWER_MARKERS,
    AnswerFormat,
    check_answer_format,
    extract_answer,
    find_answer_span,
)


def test_the_literal_type_and_the_table_list_the_same_formats():
    assert ANSWER_FORMATS == get_args(AnswerFormat) == tuple(ANSWER_FORMAT_SPECS) == ("boxed", "answer_tag")
    assert ANSWER_MARKERS == {"boxed": "\\boxed{", "answer_tag": "<answer>"}
    assert all(spec.name == name for name, spec in ANSWER_FORMAT_SPECS.items())


@pytest.mark.parametrize("answer_format", ANSWER_FORMATS)
@pytest.mark.parametrize("answer", ["5", "\\frac{1}{2}", "x^{2}"])
def test_a_wrapped_answer_is_extracted_with_its_marker(answer_format, answer):
    spec = ANSWER_FORMAT_SPECS[answer_format]
    completion = "Thinking... " + spec.wrap(answer) + " done."
    assert extract_answer(completion, answer_format) == answer
    marker_start, answer_start, _ = find_answer_span(completion, answer_format)
    assert completion[marker_start:answer_start] == spec.marker


_ALIASES = [(name, alias) for name, spec in ANSWER_FORMAT_SPECS.items() for alias in spec.aliases]


@pytest.mark.parametrize(("answer_format", "alias"), _ALIASES)
def test_aliases_are_read_too(answer_format, alias):
    spec = ANSWER_FORMAT_SPECS[answer_format]
    assert extract_answer(f"so {alias}7{spec.closing}", answer_format) == "7"


@pytest.mark.parametrize("answer_format", ANSWER_FORMATS)
def test_the_instruction_names_the_marker(answer_format):
    spec = ANSWER_FORMAT_SPECS[answer_format]
    assert spec.marker.rstrip("{") in spec.instruction


def test_unknown_format_is_refused_by_name():
    check_answer_format("boxed")
    with pytest.raises(ValueError, match="answer_format must be one of"):
        check_answer_format("latex")
