"""From per-sample records to ``summary.json`` and a markdown table shaped like the paper's.

Scores are fractions in [0, 1] in ``summary.json`` and percentages (one decimal) in the table.
A problem whose gold answer cannot be parsed (``correct`` is None) is listed, counted and left out
of every score and of the confidence statistics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ispo.eval.benchmarks import PAPER_BENCHMARKS, Problem, display_name
from ispo.eval.flexible import FLEXIBLE_LABEL, FLEXIBLE_PREFIX, split_metric
from ispo.eval.metrics import bootstrap_ci, bootstrap_macro_ci, default_pass_ks, per_problem_scores


def metric_names(
    n_samples: int, temperature: float, pass_ks: Sequence[int] | None = None, *, flexible: bool = False
) -> list[str]:
    """``["pass@1"]`` for greedy decoding; ``["avg@n", "pass@k", ...]`` when sampling; with ``flexible``,
    the same again prefixed ``"flexible "`` (:mod:`ispo.eval.flexible`)."""
    if temperature == 0:
        names = ["pass@1"]
    else:
        ks = default_pass_ks(n_samples) if pass_ks is None else [k for k in pass_ks if 1 < k <= n_samples]
        names = [f"avg@{n_samples}"] + [f"pass@{k}" for k in ks]
    return names + [FLEXIBLE_PREFIX + name for name in names] if flexible else names


def summarize_benchmark(
    problems: Sequence[Problem],
    records: Sequence[dict],
    *,
    metrics: Sequence[str],
    n_samples: int,
    num_resamples: int = 1000,
    seed: int = 0,
) -> tuple[dict, dict[str, np.ndarray]]:
    """One benchmark's entry of ``summary.json`` and its per-problem scores ``{metric: (P,)}``.

    Only problems with all ``n_samples`` samples are scored; the others are counted as incomplete.
    A ``flexible`` metric reads each record's ``flexible_correct`` instead of ``correct``.
    """
    by_problem: dict[str, dict[int, dict]] = defaultdict(dict)
    for record in records:
        if record["sample_index"] < n_samples:
            by_problem[record["problem_id"]][record["sample_index"]] = record
    outcomes, unparseable, incomplete = [], [], 0
    scored: list[dict] = []
    grouped: list[list[dict]] = []  # the scored problems' records, in sample order
    for problem in problems:
        samples = by_problem.get(problem.id, {})
        if len(samples) < n_samples:
            incomplete += 1
        elif any(r["correct"] is None for r in samples.values()):
            unparseable.append(problem.id)
        else:
            ordered = [samples[i] for i in range(n_samples)]
            outcomes.append([bool(r["correct"]) for r in ordered])
            scored.extend(ordered)
            grouped.append(ordered)
    entry: dict = {
        "num_problems": len(problems),
        "num_scored_problems": len(outcomes),
        "num_unparseable_golds": len(unparseable),
        "unparseable_golds": unparseable,
        "num_incomplete_problems": incomplete,
        "samples_per_problem": n_samples,
        "metrics": {},
    }
    scores: dict[str, np.ndarray] = {}
    for metric in metrics:
        if not outcomes:
            entry["metrics"][metric] = {"value": None, "ci95": None}
            continue
        key, base = split_metric(metric)
        if key == "correct":
            scores[metric] = per_problem_scores(outcomes, base)
        else:
            scores[metric] = per_problem_scores([[bool(r.get(key)) for r in samples] for samples in grouped], base)
        low, high = bootstrap_ci(scores[metric], num_resamples=num_resamples, seed=seed)
        entry["metrics"][metric] = {"value": float(scores[metric].mean()), "ci95": [low, high]}
    entry["confidence"] = _confidence(scored)
    entry["mean_completion_tokens"] = _mean([r["num_tokens"] for r in scored])
    entry["truncated_rate"] = _mean([r["finish_reason"] == "length" for r in scored])
    entry["no_answer_rate"] = _mean([r["extracted_answer"] is None for r in scored])
    if any(split_metric(metric)[0] != "correct" for metric in metrics):
        entry["flexible_no_answer_rate"] = _mean([r.get("flexible_answer") is None for r in scored])
    return entry, scores


def _confidence(records: Sequence[dict]) -> dict:
    """Mean answer-span probability and completion log-prob, for correct vs incorrect samples."""
    result = {}
    for label, wanted in (("correct", True), ("incorrect", False)):
        group = [r for r in records if r["correct"] is wanted]
        result[label] = {
            "num_samples": len(group),
            "num_with_answer": sum(r.get("answer_mean_prob") is not None for r in group),
            "answer_mean_prob": _mean_of(group, "answer_mean_prob"),
            "answer_mean_logprob": _mean_of(group, "answer_mean_logprob"),
            "completion_mean_logprob": _mean_of(group, "mean_logprob"),
        }
    return result


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _mean_of(records: Sequence[dict], key: str) -> float | None:
    """Mean of ``key`` over the records that have it (a sample without an answer has no span)."""
    return _mean([r[key] for r in records if r.get(key) is not None])


def summarize(
    benchmarks: dict[str, Sequence[Problem]],
    records: Sequence[dict],
    *,
    model_name: str,
    n_samples: int,
    temperature: float,
    pass_ks: Sequence[int] | None = None,
    num_resamples: int = 1000,
    seed: int = 0,
    flexible: bool = False,
) -> dict:
    """The whole ``summary.json``: per benchmark, macro average over benchmarks, and the settings.

    ``flexible`` adds the flexible-extraction metrics (records need ``flexible_correct``,
    :func:`ispo.eval.flexible.add_flexible`).
    """
    metrics = metric_names(n_samples, temperature, pass_ks, flexible=flexible)
    records_by_benchmark: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        records_by_benchmark[record["benchmark"]].append(record)
    per_benchmark, all_scores = {}, {}
    for name, problems in benchmarks.items():
        per_benchmark[name], all_scores[name] = summarize_benchmark(
            problems,
            records_by_benchmark.get(name, []),
            metrics=metrics,
            n_samples=n_samples,
            num_resamples=num_resamples,
            seed=seed,
        )
    macro = {}
    for metric in metrics:
        groups = [all_scores[name].get(metric) for name in benchmarks]
        if any(group is None for group in groups):
            macro[metric] = {"value": None, "ci95": None}
            continue
        low, high = bootstrap_macro_ci(groups, num_resamples=num_resamples, seed=seed)
        macro[metric] = {"value": float(np.mean([g.mean() for g in groups])), "ci95": [low, high]}
    summary = {
        "model": model_name,
        "decoding": "greedy" if temperature == 0 else f"sampling, temperature {temperature}",
        "metrics": metrics,
        "benchmarks": per_benchmark,
        "macro_average": macro,
        "unparseable_golds": {
            name: b["unparseable_golds"] for name, b in per_benchmark.items() if b["unparseable_golds"]
        },
    }
    if flexible:
        summary["extraction"] = FLEXIBLE_LABEL
    return summary


def markdown_table(summaries: Sequence[dict], metric: str) -> str:
    """Rows: models; columns: benchmarks (the paper's order first) and the macro average, in percent."""
    names: list[str] = []
    for summary in summaries:
        names += [name for name in summary["benchmarks"] if name not in names]
    order = {name: i for i, name in enumerate(PAPER_BENCHMARKS)}
    names.sort(key=lambda name: order.get(name, len(order)))
    header = ["Model", *(display_name(name) for name in names), "Avg."]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    for summary in summaries:
        cells = [summary["model"]]
        for name in names:
            entry = summary["benchmarks"].get(name, {}).get("metrics", {}).get(metric)
            cells.append(_percent(entry))
        cells.append(_percent(summary["macro_average"].get(metric)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _percent(entry: dict | None) -> str:
    return "-" if not entry or entry.get("value") is None else f"{100 * entry['value']:.1f}"


def markdown_report(summary: dict) -> str:
    """``summary.md``: one table per metric, then the 95% intervals and answer confidence."""
    parts = [f"# Evaluation of {summary['model']} ({summary['decoding']})\n"]
    if summary.get("extraction"):
        parts.append(f"\nExtraction: {summary['extraction']}.\n")
    for metric in summary["metrics"]:
        parts.append(f"\n## {metric}\n\n{markdown_table([summary], metric)}")
    parts.append("\n## 95% bootstrap intervals\n\n| Benchmark | " + " | ".join(summary["metrics"]) + " |\n")
    parts.append("|---|" + "|".join([":---:"] * len(summary["metrics"])) + "|\n")
    rows = [(display_name(n), b["metrics"]) for n, b in summary["benchmarks"].items()]
    for label, metrics in rows + [("Avg.", summary["macro_average"])]:
        parts.append(f"| {label} | " + " | ".join(_interval(metrics.get(m)) for m in summary["metrics"]) + " |\n")
    parts.append(
        "\n## Answer confidence (mean probability of the answer tokens)\n\n"
        "| Benchmark | correct | incorrect |\n|---|:---:|:---:|\n"
    )
    for name, entry in summary["benchmarks"].items():
        confidence = entry["confidence"]
        cells = [_probability(confidence[label]["answer_mean_prob"]) for label in ("correct", "incorrect")]
        parts.append(f"| {display_name(name)} | {cells[0]} | {cells[1]} |\n")
    if summary["unparseable_golds"]:
        listed = ", ".join(f"{n}: {len(ids)}" for n, ids in summary["unparseable_golds"].items())
        parts.append(f"\nUnparseable gold answers, excluded from the scores: {listed} (ids in summary.json).\n")
    return "".join(parts)


def _interval(entry: dict | None) -> str:
    if not entry or entry.get("ci95") is None:
        return "-"
    low, high = entry["ci95"]
    return f"{100 * low:.1f} to {100 * high:.1f}"


def _probability(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
