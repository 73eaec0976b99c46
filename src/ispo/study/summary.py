"""A study's summary from its finished cells: ``study.json``, ``study.md`` and ``study.png``.

``study.json`` records the model (``"tiny"``: the demo's warm-started model), task, split, seeds and steps
at the top, then per method:
``accuracy[LEVEL]`` (``mean``, ``ci95``, ``sd``, ``n``, ``by_seed``) of the held-out sampled accuracy for
LEVEL in easy, medium, hard, all; ``vs_baseline[LEVEL]`` (``mean_diff``, ``ci95``, ``n``, ``seeds``) of the
paired difference to the baseline on the seeds both finished; ``indices`` (failure modes of the training
rollouts: ``zero_adv_rate/outcome late``, ``zero_adv_rate/composite late``, ``hc/incorrect early``,
``hc/incorrect late``, ``entropy/pi_old late``; early/late = mean over the first/last 25% of steps) and
``train_seconds``, each with ``mean`` and ``ci95`` over seeds. Intervals: ``ispo.study.stats``.
Standard library and matplotlib (Agg) only: it can be rerun on a finished folder without torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ispo.common import cell_dir
from ispo.demo.evaluate import LEVELS
from ispo.study.spec import Study, format_seeds
from ispo.study.stats import INTERVAL_METHOD, mean_ci, paired_difference

# (label in study.json, metrics.jsonl key, part of the run)
INDICES: tuple[tuple[str, str, str], ...] = (
    ("zero_adv_rate/outcome early", "zero_adv_rate/outcome", "early"),
    ("zero_adv_rate/outcome late", "zero_adv_rate/outcome", "late"),
    ("zero_adv_rate/composite late", "zero_adv_rate/composite", "late"),
    ("hc/entropy_incorrect early", "hc/entropy_incorrect", "early"),
    ("hc/entropy_incorrect late", "hc/entropy_incorrect", "late"),
    ("hc/incorrect early", "hc/incorrect", "early"),
    ("hc/incorrect late", "hc/incorrect", "late"),
    ("critical/frac late", "critical/frac", "late"),
    ("critical/entropy_frac late", "critical/entropy_frac", "late"),
    ("critical/drift_frac late", "critical/drift_frac", "late"),
    ("ifd/correct late", "ifd/correct", "late"),
    ("ifd/incorrect late", "ifd/incorrect", "late"),
    ("dominance/violations late", "dominance/violations", "late"),
    ("entropy/pi_old late", "entropy/pi_old", "late"),
)


# the paper's Fig. 6 quantity of each cell (eval.json's ``stalled``, ``ispo.demo.stalled``)
STALLED: tuple[str, ...] = ("stalled", "solved_later", "solved_at_start")


def collect(output_dir: Path, study: Study, seeds: list[int]) -> dict[str, dict[int, dict]]:
    """Per finished cell: ``{method: {seed: {"accuracy": {level: v}, "indices": {label: v}, "train_seconds": s}}}``."""
    from ispo.report import early_late, load_run

    results: dict[str, dict[int, dict]] = {name: {} for name in study.methods}
    for name in study.methods:
        for seed in seeds:
            folder = cell_dir(output_dir, name, seed)
            if not (folder / "run.json").exists():
                continue
            run = load_run(folder)
            after = run.eval.get("after", {})
            accuracy = {level: after[f"sampled/{level}"] for level in LEVELS if f"sampled/{level}" in after}
            indices = {}
            for label, key, phase in INDICES:
                early, late = early_late(run.series((key,))[1])
                value = early if phase == "early" else late
                if value is not None:
                    indices[label] = value
            stalled = {key: run.eval.get("stalled", {}).get(key) for key in STALLED}
            # format compliance (a pretrained model's evaluation): the share with a parseable answer
            answer_format = {
                level: after[f"format/sampled/{level}"] for level in LEVELS if f"format/sampled/{level}" in after
            }
            results[name][seed] = {
                "accuracy": accuracy,
                "format": answer_format,
                "indices": indices,
                "stalled": {key: value for key, value in stalled.items() if value is not None},
                "train_seconds": run.wall_seconds(),
            }
    return results


def summarize_study(results: dict[str, dict[int, dict]], study: Study, seeds: list[int], base, before: dict) -> dict:
    """The content of ``study.json`` (see the module doc)."""
    baseline = results.get(study.baseline, {})
    methods = {}
    for name, by_seed in results.items():
        entry: dict = {"fields": study.methods[name], "given": study.given.get(name, {}), "seeds": sorted(by_seed)}
        entry["accuracy"] = {}
        entry["vs_baseline"] = {}
        for level in LEVELS:
            values = {s: r["accuracy"][level] for s, r in by_seed.items() if level in r["accuracy"]}
            entry["accuracy"][level] = _with_seeds(values)
            base_values = {s: r["accuracy"][level] for s, r in baseline.items() if level in r["accuracy"]}
            entry["vs_baseline"][level] = paired_difference(values, base_values)
        entry["indices"] = {
            label: _with_seeds({s: r["indices"][label] for s, r in by_seed.items() if label in r["indices"]})
            for label, _, _ in INDICES
        }
        answer_format = {
            level: _with_seeds({s: r["format"][level] for s, r in by_seed.items() if level in r.get("format", {})})
            for level in LEVELS
        }
        if any(answer_format.values()):
            entry["format"] = answer_format
        entry["stalled"] = _stalled_entry(by_seed, baseline)
        entry["train_seconds"] = _with_seeds(
            {s: r["train_seconds"] for s, r in by_seed.items() if r["train_seconds"] is not None}
        )
        methods[name] = entry
    done = sum(len(by_seed) for by_seed in results.values())
    return {
        "study": study.path,
        "model": base.model or "tiny",  # a pretrained model (--model), or the demo's warm-started tiny model
        "task": base.task,
        "split": base.split,
        "seeds": list(seeds),
        "steps": base.steps,
        "baseline": study.baseline,
        "heldout": {
            "problems_per_difficulty": base.eval.problems_per_difficulty,
            "samples_per_problem": base.eval.num_samples,
            "temperature": base.eval.temperature,
            "metric": "sampled accuracy (mean over samples per problem), by difficulty",
        },
        "interval": INTERVAL_METHOD,
        "cells": {"finished": done, "total": len(results) * len(seeds)},
        "before": {level: before.get(f"sampled/{level}") for level in LEVELS},
        **(
            {"before_format": {level: before.get(f"format/sampled/{level}") for level in LEVELS}}
            if any(f"format/sampled/{level}" in before for level in LEVELS)
            else {}
        ),
        "methods": methods,
    }


def _stalled_entry(by_seed: dict[int, dict], baseline: dict[int, dict]) -> dict:
    """The Fig. 6 numbers of one method: each over seeds, and the paired differences that answer it.

    ``later_vs_start``: solved by the trained policy minus by the start model on the same prompts and
    sampling seeds (what training added to a fresh draw); ``vs_baseline``: solved later, method minus
    baseline per seed (a seed without stalled prompts has no value and drops out).
    """

    def values(rows: dict[int, dict], key: str) -> dict[int, float]:
        return {s: r["stalled"][key] for s, r in rows.items() if key in r.get("stalled", {})}

    later = values(by_seed, "solved_later")
    return {
        "prompts": _with_seeds(values(by_seed, "stalled")),
        "solved_later": _with_seeds(later),
        "solved_at_start": _with_seeds(values(by_seed, "solved_at_start")),
        "later_vs_start": paired_difference(later, values(by_seed, "solved_at_start")),
        "vs_baseline": paired_difference(later, values(baseline, "solved_later")),
    }


def _with_seeds(values: dict[int, float]) -> dict | None:
    """``mean_ci`` of the values plus ``by_seed``; None without values."""
    if not values:
        return None
    return {**mean_ci(list(values.values())), "by_seed": {str(s): v for s, v in sorted(values.items())}}


def write_summary(output_dir: Path, study: Study, seeds: list[int], base, before: dict, *, wall_seconds=None) -> dict:
    """Collect the finished cells and write ``study.json``, ``study.md`` and ``study.png``; returns the json content."""
    output_dir = Path(output_dir)
    summary = summarize_study(collect(output_dir, study, seeds), study, seeds, base, before)
    if wall_seconds is not None:
        summary["wall_seconds_this_run"] = round(wall_seconds, 1)
    image = plot_accuracy(summary, output_dir / "study.png")
    _write_text(output_dir / "study.json", json.dumps(summary, indent=2) + "\n")
    _write_text(output_dir / "study.md", render_markdown(summary, image.name if image else None))
    return summary


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(value: float | None, signed: bool = False, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _cell(stats: dict | None, *, key: str = "mean", signed: bool = False, digits: int = 3) -> str:
    """``0.384 [0.370, 0.398]``; bold when a paired interval excludes 0."""
    if stats is None:
        return "n/a"
    text = _fmt(stats[key], signed, digits)
    ci = stats.get("ci95")
    if ci is None:
        return f"{text} (n={stats['n']}, no interval)"
    text = f"{text} [{_fmt(ci[0], signed, digits)}, {_fmt(ci[1], signed, digits)}]"
    if signed and (ci[0] > 0 or ci[1] < 0):
        text = f"**{text}**"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def render_markdown(summary: dict, image: str | None) -> str:
    seeds = format_seeds(summary["seeds"])
    where = f"split `{summary['split']}`, seeds {seeds}"
    heldout = summary["heldout"]
    n_seeds = len(summary["seeds"])
    model = summary.get("model", "tiny")  # summaries written before the model was recorded: the tiny model
    model_words = "" if model == "tiny" else f"model `{model}`, "
    start = "warm start" if model == "tiny" else "pretrained model (no warm start)"
    before_label = "warm start" if model == "tiny" else "the pretrained model"
    lines = [
        f"# Study {summary['study'] or ''}: {model_words}task `{summary['task']}`, {where}",
        "",
        f"{_count(len(summary['methods']), 'method')} x {_count(n_seeds, 'seed')}, "
        f"{_count(summary['steps'], 'RL step')} per cell, each cell "
        f"from the same {start} with the seed's prompts (ispo sweep). Held-out: "
        f"{heldout['problems_per_difficulty']} problems per difficulty from the `{summary['split']}` split, "
        f"{_count(heldout['samples_per_problem'], 'sample')} each at temperature {heldout['temperature']:g} "
        "(sampled accuracy). "
        f"Cells finished: {summary['cells']['finished']} of {summary['cells']['total']}.",
        "",
        f"Intervals: {summary['interval']}. Bold: a paired interval that excludes 0.",
        "",
        f"## Held-out accuracy ({where}): mean [95% CI]",
        "",
        "| method | " + " | ".join(LEVELS) + " | seeds |",
        "|---|" + "---|" * (len(LEVELS) + 1),
        f"| before RL ({before_label}) | "
        + " | ".join(_fmt(summary["before"].get(level)) for level in LEVELS)
        + f" | (split `{summary['split']}`) |",
    ]
    for name, entry in summary["methods"].items():
        label = f"{name} (baseline)" if name == summary["baseline"] else name
        cells = " | ".join(_cell(entry["accuracy"][level]) for level in LEVELS)
        lines.append(f"| {label} | {cells} | {format_seeds(entry['seeds']) or 'none'} |")
    lines += [
        "",
        f"## Paired difference to {summary['baseline']} ({where}): mean [95% CI] of method - baseline per seed",
        "",
        "| method | " + " | ".join(LEVELS) + " | seeds |",
        "|---|" + "---|" * (len(LEVELS) + 1),
    ]
    for name, entry in summary["methods"].items():
        if name == summary["baseline"]:
            continue
        diffs = entry["vs_baseline"]
        cells = " | ".join(_cell(diffs[level], key="mean_diff", signed=True) for level in LEVELS)
        shared = next((d["seeds"] for d in diffs.values() if d), [])
        lines.append(f"| {name} | {cells} | {format_seeds(shared) or 'none'} |")
    if any("format" in entry for entry in summary["methods"].values()):
        before_format = summary.get("before_format", {})
        lines += [
            "",
            f"## Format compliance ({where}): mean [95% CI]",
            "",
            "Share of held-out completions with a parseable final answer (`\\boxed{}`), whether right or wrong.",
            "",
            "| method | " + " | ".join(LEVELS) + " | seeds |",
            "|---|" + "---|" * (len(LEVELS) + 1),
            f"| before RL ({before_label}) | "
            + " | ".join(_fmt(before_format.get(level)) for level in LEVELS)
            + " | |",
        ]
        for name, entry in summary["methods"].items():
            if "format" in entry:
                cells = " | ".join(_cell(entry["format"][level]) for level in LEVELS)
                lines.append(f"| {name} | {cells} | {format_seeds(entry['seeds']) or 'none'} |")
    lines += [
        "",
        f"## Failure-mode indices of the training rollouts (seeds {seeds}): mean [95% CI]",
        "",
        "Early / late: mean over the first / last 25% of the steps. Zero-advantage rates: share of groups with no "
        "learning signal (outcome: all rollouts alike; composite: all advantages ~0). `hc/incorrect`: "
        "Hallucinated Certainty (probability of the sampled token at critical tokens of wrong rollouts).",
        "",
        "| method | " + " | ".join(f"`{label}`" for label, _, _ in INDICES) + " | train seconds |",
        "|---|" + "---|" * (len(INDICES) + 1),
    ]
    for name, entry in summary["methods"].items():
        cells = " | ".join(_cell(entry["indices"][label]) for label, _, _ in INDICES)
        lines.append(f"| {name} | {cells} | {_cell(entry['train_seconds'], digits=0)} |")
    if any(entry.get("stalled", {}).get("prompts") for entry in summary["methods"].values()):
        lines += [
            "",
            f"## All-wrong groups early, solved later (the paper's Fig. 6; seeds {seeds}): mean [95% CI]",
            "",
            "Stalled prompts: training prompts whose whole group was wrong in the first 25% of the steps. "
            "Solved: at least one of G fresh samples correct, at the training temperature, from the trained "
            "policy (later) and from the start model on the same sampling seeds (start: what a fresh draw "
            f"gives by chance). Paired: later - start within a method; later - {summary['baseline']} per seed.",
            "",
            f"| method | stalled prompts | solved later | solved by the start model | later - start | "
            f"later - {summary['baseline']} |",
            "|---|---|---|---|---|---|",
        ]
        for name, entry in summary["methods"].items():
            stalled = entry.get("stalled", {})
            cells = [
                _cell(stalled.get("prompts"), digits=1),
                _cell(stalled.get("solved_later")),
                _cell(stalled.get("solved_at_start")),
                _cell(stalled.get("later_vs_start"), key="mean_diff", signed=True),
                "—" if name == summary["baseline"] else _cell(stalled.get("vs_baseline"), key="mean_diff", signed=True),
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if image:
        lines += ["", f"![held-out accuracy by method ({where})]({image})"]
    lines += ["", "## Methods (ISPOConfig fields, as given in the study file)", ""]
    for name, entry in summary["methods"].items():
        given = ", ".join(f"{k}: {json.dumps(v)}" for k, v in entry["given"].items()) or "(ISPOConfig defaults)"
        lines.append(f"- **{name}**: {given}")
    return "\n".join(lines) + "\n"


def plot_accuracy(summary: dict, path: Path) -> Path | None:
    """One panel per level: each method's mean held-out accuracy with its 95% interval over seeds."""
    names = [name for name, entry in summary["methods"].items() if entry["accuracy"]["all"] is not None]
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LEVELS), figsize=(3.2 * len(LEVELS), 1.6 + 0.28 * len(names)), squeeze=False)
    baseline = summary["methods"].get(summary["baseline"], {}).get("accuracy", {})
    for ax, level in zip(axes[0], LEVELS):
        ends = [summary["before"].get(level)]
        for row, name in enumerate(names):
            stats = summary["methods"][name]["accuracy"][level]
            if stats is None:
                continue
            ci = stats["ci95"]
            error = None if ci is None else [[stats["mean"] - ci[0]], [ci[1] - stats["mean"]]]
            color = "black" if name == summary["baseline"] else "tab:blue"
            ax.errorbar([stats["mean"]], [row], xerr=error, fmt="o", color=color, capsize=3, markersize=4)
            ends += [stats["mean"]] + (ci or [])
        ends = [v for v in ends if v is not None]
        low, high = max(0.0, min(ends)), min(1.0, max(ends))  # accuracies: an interval past 0 or 1 is cut
        pad = max(0.02, 0.1 * (high - low))
        ax.set_xlim(max(0.0, low - pad), min(1.0, high + pad))
        if baseline.get(level):
            ax.axvline(baseline[level]["mean"], color="black", linestyle="--", linewidth=0.8)
        if summary["before"].get(level) is not None:
            ax.axvline(summary["before"][level], color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(level, fontsize=9)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if level == LEVELS[0] else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"held-out accuracy (sampled), task {summary['task']}, split {summary['split']}, "
        f"seeds {format_seeds(summary['seeds'])}: mean and 95% t-interval "
        f"(dashed: {summary['baseline']}, dotted: before RL)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
