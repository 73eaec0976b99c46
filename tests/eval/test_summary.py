import pytest

from ispo.eval import Problem, pass_at_k
from ispo.eval.summary import markdown_report, markdown_table, metric_names, summarize


def record(benchmark, problem_id, index, correct, *, prob=None, tokens=10, finish="stop"):
    return {
        "benchmark": benchmark,
        "problem_id": problem_id,
        "sample_index": index,
        "correct": correct,
        "extracted_answer": None if prob is None else "x",
        "answer_mean_prob": prob,
        "answer_mean_logprob": None,
        "mean_logprob": -1.0,
        "num_tokens": tokens,
        "finish_reason": finish,
    }


PROBLEMS = {
    "math500": [Problem("a", "?", "1"), Problem("b", "?", "2"), Problem("c", "?", "3")],
    "aime24": [Problem("x", "?", "1"), Problem("y", "?", "2")],
}


def test_metric_names():
    assert metric_names(1, 0.0) == ["pass@1"]
    assert metric_names(4, 0.6) == ["avg@4", "pass@2", "pass@4"]
    assert metric_names(8, 0.6, [1, 8]) == ["avg@8", "pass@8"]


def test_sampling_scores_unparseable_and_incomplete_problems():
    records = [
        *(record("math500", "a", i, c, prob=0.9) for i, c in enumerate([True, False, False, True])),
        *(record("math500", "b", i, None) for i in range(4)),  # unparseable gold
        *(record("math500", "c", i, False, prob=0.6) for i in range(3)),  # one sample missing
        *(record("aime24", "x", i, True, prob=0.8, finish="length") for i in range(4)),
        *(record("aime24", "y", i, i == 0, prob=0.2) for i in range(5)),  # a 5th sample is ignored
    ]
    summary = summarize(PROBLEMS, records, model_name="m", n_samples=4, temperature=0.6)
    math500, aime24 = summary["benchmarks"]["math500"], summary["benchmarks"]["aime24"]
    assert summary["metrics"] == ["avg@4", "pass@2", "pass@4"]
    assert math500["num_scored_problems"] == 1 and math500["num_incomplete_problems"] == 1
    assert math500["unparseable_golds"] == ["b"] and summary["unparseable_golds"] == {"math500": ["b"]}
    assert math500["metrics"]["avg@4"]["value"] == 0.5
    assert math500["metrics"]["pass@2"]["value"] == pytest.approx(pass_at_k(4, 2, 2))
    assert aime24["metrics"]["avg@4"]["value"] == pytest.approx((1 + 0.25) / 2)
    assert aime24["metrics"]["pass@4"]["value"] == 1.0
    assert summary["macro_average"]["avg@4"]["value"] == pytest.approx((0.5 + 0.625) / 2)
    low, high = summary["macro_average"]["avg@4"]["ci95"]
    assert low <= summary["macro_average"]["avg@4"]["value"] <= high
    confidence = aime24["confidence"]
    assert confidence["correct"]["num_samples"] == 5 and confidence["incorrect"]["num_samples"] == 3
    assert confidence["correct"]["answer_mean_prob"] == pytest.approx((4 * 0.8 + 0.2) / 5)
    assert confidence["incorrect"]["answer_mean_prob"] == pytest.approx(0.2)
    assert aime24["truncated_rate"] == 0.5


def test_greedy_summary_and_a_benchmark_without_scored_problems():
    records = [record("math500", p.id, 0, p.id == "a") for p in PROBLEMS["math500"]]
    summary = summarize(PROBLEMS, records, model_name="m", n_samples=1, temperature=0.0)
    assert summary["benchmarks"]["math500"]["metrics"]["pass@1"]["value"] == pytest.approx(1 / 3)
    assert summary["benchmarks"]["aime24"]["metrics"]["pass@1"] == {"value": None, "ci95": None}
    assert summary["macro_average"]["pass@1"]["value"] is None
    assert "| m | - | 33.3 | - |" in markdown_table([summary], "pass@1")


def test_table_is_shaped_like_the_paper():
    records = [record(b, p.id, 0, True) for b, problems in PROBLEMS.items() for p in problems]
    base = summarize(PROBLEMS, records, model_name="Qwen2.5-Math-1.5B", n_samples=1, temperature=0.0)
    trained = summarize({"math500": PROBLEMS["math500"]}, records, model_name="+ ISPO", n_samples=1, temperature=0.0)
    lines = markdown_table([base, trained], "pass@1").splitlines()
    assert lines[0] == "| Model | AIME24 | MATH-500 | Avg. |"  # the paper's column order, then the average
    assert lines[2] == "| Qwen2.5-Math-1.5B | 100.0 | 100.0 | 100.0 |"
    assert lines[3] == "| + ISPO | - | 100.0 | 100.0 |"
    report = markdown_report(base)
    assert "## pass@1" in report and "95% bootstrap" in report and "Answer confidence" in report
