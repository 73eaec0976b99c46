"""Flexible extraction (``ispo eval --flexible-extract``): the last number, graded beside the strict score."""

from __future__ import annotations

import json

import pytest

from ispo.eval import EvalConfig, evaluate
from ispo.eval.flexible import FLEXIBLE_LABEL, add_flexible, last_number, split_metric
from ispo.eval.summary import markdown_report, metric_names, summarize

from .conftest import write_jsonl
from .test_runner import NoBackend, ScriptedBackend


@pytest.mark.parametrize(
    ("completion", "number"),
    [
        ("So the answer is 42.", "42"),
        ("She pays $1,234 in total.", "1234"),
        ("It costs $18.50 each", "18.50"),
        ("The change is -4 degrees", "-4"),
        ("5-4 = 1", "1"),
        ("Step 1: 3 apples. Step 2: 10.5 pears, so 13.5", "13.5"),
        ("Lists 1,2,3", "3"),  # not a thousands group: three numbers
        ("1,000,000 then 7.", "7"),
        ("x3 and y", None),  # digits inside a word are no number
        ("no numbers at all", None),
        ("The answer is \\boxed{12}. Check: 2 * 6", "6"),  # the last number, not the boxed one
    ],
)
def test_last_number(completion, number):
    assert last_number(completion) == number


def test_split_metric():
    assert split_metric("pass@1") == ("correct", "pass@1")
    assert split_metric("flexible avg@8") == ("flexible_correct", "avg@8")


def test_metric_names_with_flexible():
    assert metric_names(1, 0.0, flexible=True) == ["pass@1", "flexible pass@1"]
    assert metric_names(4, 0.6, flexible=True)[-3:] == ["flexible avg@4", "flexible pass@2", "flexible pass@4"]


def test_add_flexible_grades_the_last_number_with_the_strict_grader():
    records = [
        {"gold": "18", "completion": "She earns 9 * 2 = 18 dollars."},
        {"gold": "18", "completion": "She earns \\boxed{18} dollars, 2 days"},
        {"gold": "1234", "completion": "Total: 1,234."},
        {"gold": "0.5", "completion": "Half: 1/2"},  # a fraction reads as its last number
        {"gold": "7", "completion": "I do not know."},
        {"gold": "3", "completion": "3", "flexible_answer": "x", "flexible_correct": False},  # kept as is
    ]
    assert add_flexible(records) == 5
    assert [r["flexible_answer"] for r in records] == ["18", "2", "1234", "2", None, "x"]
    assert [r["flexible_correct"] for r in records] == [True, False, True, False, False, False]


def _record(problem_id, correct, flexible_correct, answer="1"):
    return {
        "benchmark": "gsm8k",
        "problem_id": problem_id,
        "sample_index": 0,
        "correct": correct,
        "flexible_correct": flexible_correct,
        "flexible_answer": answer,
        "extracted_answer": None,
        "num_tokens": 3,
        "finish_reason": "stop",
    }


def test_summary_reports_strict_and_flexible_apart():
    from ispo.eval.benchmarks import Problem

    problems = {"gsm8k": [Problem(str(i), "q", "1") for i in range(4)]}
    records = [
        _record("0", True, True),
        _record("1", False, True),
        _record("2", False, True),
        _record("3", False, False, None),
    ]
    summary = summarize(problems, records, model_name="m", n_samples=1, temperature=0.0, flexible=True)
    gsm8k = summary["benchmarks"]["gsm8k"]
    assert gsm8k["metrics"]["pass@1"]["value"] == pytest.approx(0.25)
    assert gsm8k["metrics"]["flexible pass@1"]["value"] == pytest.approx(0.75)
    assert gsm8k["flexible_no_answer_rate"] == pytest.approx(0.25)
    assert summary["macro_average"]["flexible pass@1"]["value"] == pytest.approx(0.75)
    assert summary["extraction"] == FLEXIBLE_LABEL
    report = markdown_report(summary)
    assert "## flexible pass@1" in report and "last number in the completion" in report
    plain = summarize(problems, records, model_name="m", n_samples=1, temperature=0.0)
    assert plain["metrics"] == ["pass@1"] and "extraction" not in plain


FLEXIBLE_ANSWERS = {
    "What is 1+1?": "1+1 is \\boxed{2}.",  # strict and flexible
    "What is 2+3?": "2 + 3 = 5, so five.",  # flexible only
    "What is 4+4?": "Maybe \\boxed{8}, or 9",  # strict only: the last number is 9
}


def test_eval_flag_scores_both_and_resumes_old_samples(tmp_path, tokenizer):
    rows = [
        {"id": f"q{i}", "problem": problem, "answer": str(eval(problem[8:-1]))}
        for i, problem in enumerate(FLEXIBLE_ANSWERS)
    ]
    data = write_jsonl(tmp_path / "toy.jsonl", rows)
    output_dir = tmp_path / "out"
    settings = dict(model="scripted", benchmarks=[str(data)], output_dir=str(output_dir))
    strict = evaluate(EvalConfig(**settings), backend=ScriptedBackend(tokenizer, answers=FLEXIBLE_ANSWERS))
    assert strict["metrics"] == ["pass@1"]
    assert "flexible_correct" not in (output_dir / "samples.jsonl").read_text()

    # the same samples, graded flexibly too without generating anything again
    both = evaluate(EvalConfig(**settings, flexible_extract=True), backend=NoBackend())
    toy = both["benchmarks"]["toy"]["metrics"]
    assert toy["pass@1"]["value"] == pytest.approx(2 / 3) == strict["benchmarks"]["toy"]["metrics"]["pass@1"]["value"]
    assert toy["flexible pass@1"]["value"] == pytest.approx(2 / 3)
    assert "## flexible pass@1" in (output_dir / "summary.md").read_text()

    # a fresh run with the flag writes the flexible verdicts into every record
    fresh = tmp_path / "fresh"
    evaluate(
        EvalConfig(**{**settings, "output_dir": str(fresh)}, flexible_extract=True),
        backend=ScriptedBackend(tokenizer, answers=FLEXIBLE_ANSWERS),
    )
    records = {r["problem_id"]: r for r in map(json.loads, (fresh / "samples.jsonl").read_text().splitlines())}
    assert [(records[k]["correct"], records[k]["flexible_correct"]) for k in ("q0", "q1", "q2")] == [
        (True, True),
        (False, True),
        (True, False),
    ]
    assert records["q2"]["flexible_answer"] == "9"


def test_the_flag_is_on_the_command_line():
    import argparse

    from ispo.eval.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--model", "m", "--output-dir", "o", "--flexible-extract"])
    assert config_from_args(args).flexible_extract is True
    assert "last number" in parser.format_help()
