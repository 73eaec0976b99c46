"""``ispo report RUN_DIR [RUN_DIR ...] [--output-dir DIR]``: plots and a table from runs' ``metrics.jsonl``.

Works on any run that wrote ``metrics.jsonl`` (one JSON object per optimizer step, as ``ISPOTrainer``
does), demo or real. Two optional files in a run folder add to the report: ``eval.json``
(``{"before": {...}, "after": {...}}`` held-out accuracies such as ``"sampled/hard"``, written by
``ispo demo``) and ``run.json`` (``{"name": ..., "wall_seconds": ...}``).

Writes to the output folder:
- ``training_dynamics.png``: one panel per diagnostic (accuracy, Zero-Advantage rates, Hallucinated
  Certainty on incorrect and correct rollouts, IFD, critical-token fraction, entropy, length), every
  run overlaid in its own colour, smoothed with a moving average (raw values faint behind);
- ``heldout_accuracy.png``: held-out accuracy by difficulty before and after, when runs have ``eval.json``;
- ``report.md``: held-out accuracy by difficulty, failure-mode indices early vs late, wall time.

An incomplete last line of ``metrics.jsonl`` (a run cut short mid-write) is skipped with a one-line
warning and noted in ``report.md``; any other malformed line, or a missing folder, is an error naming it
(on the command line: one line, exit status 2). Kept light on purpose: json, math and matplotlib (Agg)
only, no torch or TRL.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ispo.jsonl import read_jsonl

logger = logging.getLogger(__name__)

# panel title -> [(metric key candidates, line style, legend suffix)]; the first key found is used.
PANELS: list[tuple[str, list[tuple[tuple[str, ...], str, str]]]] = [
    ("training accuracy (outcome reward)", [(("accuracy", "rewards/math_accuracy/mean"), "-", "")]),
    (
        "Zero-Advantage Collapse: share of groups",
        [(("zero_adv_rate/outcome",), "-", " outcome"), (("zero_adv_rate/composite",), "--", " composite")],
    ),
    (
        "Hallucinated Certainty: entropy (nats) at critical tokens",
        [(("hc/entropy_incorrect",), "-", " incorrect"), (("hc/entropy_correct",), "--", " correct")],
    ),
    (
        "p of the sampled token at critical tokens",
        [(("hc/incorrect",), "-", " incorrect"), (("hc/correct",), "--", " correct")],
    ),
    (
        "conditional IFD (nats per answer token)",
        [(("ifd/correct",), "-", " correct"), (("ifd/incorrect",), "--", " incorrect")],
    ),
    (
        "critical-set sizes (share of tokens)",
        [
            (("critical/entropy_frac",), ":", " |E|"),
            (("critical/drift_frac",), "--", " |D|"),
            (("critical/frac",), "-", " |C|"),
        ],
    ),
    (
        "token reward R_token",
        [(("tok_reward/correct",), "-", " correct"), (("tok_reward/incorrect",), "--", " incorrect")],
    ),
    ("dominance violations: share of mixed groups", [(("dominance/violations",), "-", "")]),
    ("mean entropy", [(("entropy/pi_old", "entropy"), "-", "")]),
    (
        "completion length (tokens)",
        [(("completion_length", "completions/mean_length", "completion_length/mean"), "-", "")],
    ),
]

# failure-mode and health indices for the early-vs-late table: (label, key candidates)
INDICES: list[tuple[str, tuple[str, ...]]] = [
    ("accuracy", ("accuracy", "rewards/math_accuracy/mean")),
    ("zero_adv_rate/outcome", ("zero_adv_rate/outcome",)),
    ("zero_adv_rate/composite", ("zero_adv_rate/composite",)),
    ("hc/entropy_incorrect", ("hc/entropy_incorrect",)),
    ("hc/entropy_correct", ("hc/entropy_correct",)),
    ("hc/incorrect", ("hc/incorrect",)),
    ("hc/correct", ("hc/correct",)),
    ("ifd/correct", ("ifd/correct",)),
    ("ifd/incorrect", ("ifd/incorrect",)),
    ("critical/entropy_frac", ("critical/entropy_frac",)),
    ("critical/drift_frac", ("critical/drift_frac",)),
    ("critical/frac", ("critical/frac",)),
    ("dominance/violations", ("dominance/violations",)),
    ("entropy", ("entropy/pi_old", "entropy")),
]

# per-step time keys, first found wins; summed for the wall time when neither run.json nor elapsed_s give it
STEP_TIME_KEYS = ("step_time", "timing/step", "time/step", "step_seconds")
DIFFICULTY_ORDER = ("easy", "medium", "hard", "all")


@dataclass
class Run:
    name: str
    path: Path
    records: list[dict]
    eval: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    skipped_lines: int = 0  # incomplete last line of metrics.jsonl (a run cut short)

    def series(self, candidates: tuple[str, ...]) -> tuple[list[float], list[float]]:
        """(steps, values) of the first key in ``candidates`` that any record has; non-finite values dropped."""
        for key in candidates:
            if any(key in r for r in self.records):
                xs, ys = [], []
                for i, record in enumerate(self.records):
                    value = record.get(key)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        xs.append(record.get("step", i + 1))
                        ys.append(float(value))
                return xs, ys
        return [], []

    def wall_seconds(self) -> float | None:
        if isinstance(self.info.get("wall_seconds"), (int, float)):
            return float(self.info["wall_seconds"])
        _, elapsed = self.series(("elapsed_s",))  # ISPOTrainer's time since the run started
        if elapsed:
            return max(elapsed)
        for key in STEP_TIME_KEYS:
            _, values = self.series((key,))
            if values:
                return sum(values)
        return None


def load_run(path: str | Path) -> Run:
    """A run folder (or its ``metrics.jsonl``). An incomplete last line (a run cut short mid-write) is
    skipped with a one-line warning; any other malformed line is an error naming the file and line.

    Raises:
        FileNotFoundError: no such folder, or no ``metrics.jsonl`` in it.
        ValueError: a malformed ``metrics.jsonl``, ``eval.json`` or ``run.json``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run folder {path} does not exist")
    metrics = path / "metrics.jsonl" if path.is_dir() else path
    if not metrics.exists():
        raise FileNotFoundError(f"{path} has no metrics.jsonl (is it a run's output_dir?)")
    contents = read_jsonl(metrics)
    notice = contents.notice()
    if notice:
        logger.warning("ispo report: %s", notice)
    folder = metrics.parent
    info = _read_json(folder / "run.json")
    return Run(
        name=str(info.get("name") or folder.name),
        path=folder,
        records=contents.records,
        eval=_read_json(folder / "eval.json"),
        info=info,
        skipped_lines=contents.skipped,
    )


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what is there)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


EARLY_FRACTION = 0.25  # "early" / "late": the first / last quarter of the steps


def window_length(steps: int, fraction: float = EARLY_FRACTION) -> int:
    """How many steps "early" (and "late") span: ``fraction`` of them rounded up, at least one (3 of 10, 25 of
    100, 75 of 300). One definition for the failure-mode indices and the Fig. 6 early checkpoint."""
    return max(1, math.ceil(steps * fraction))


def early_late(values: list[float], fraction: float = EARLY_FRACTION) -> tuple[float | None, float | None]:
    """Means of the first and last ``window_length`` points of a series."""
    if not values:
        return None, None
    k = window_length(len(values), fraction)
    return sum(values[:k]) / k, sum(values[-k:]) / k


def plot_dynamics(runs: list[Run], path: Path, *, smoothing: int | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ncols = 4
    nrows = math.ceil(len(PANELS) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (title, lines) in zip(axes.flat, PANELS, strict=False):  # more axes than panels
        drawn = False
        for r, run in enumerate(runs):
            color = colors[r % len(colors)]
            for keys, style, suffix in lines:
                xs, ys = run.series(keys)
                if not xs:
                    continue
                window = smoothing or max(1, len(ys) // 10)
                if window > 1:
                    ax.plot(xs, ys, style, color=color, alpha=0.2, linewidth=0.8)
                ax.plot(xs, smooth(ys, window), style, color=color, linewidth=1.6, label=run.name + suffix)
                drawn = True
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("step", fontsize=7)
        if drawn:
            ax.legend(fontsize=6, loc="best")
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(PANELS) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _eval_levels(runs: list[Run]) -> list[str]:
    keys = {k for run in runs for phase in run.eval.values() if isinstance(phase, dict) for k in phase}
    return sorted(keys, key=lambda k: (k.split("/")[0] != "sampled", _level_rank(k), k))


def _level_rank(key: str) -> int:
    level = key.split("/")[-1]
    return DIFFICULTY_ORDER.index(level) if level in DIFFICULTY_ORDER else len(DIFFICULTY_ORDER)


def plot_heldout(runs: list[Run], path: Path) -> Path | None:
    """Grouped bars: one group per difficulty, before (shared, hatched) and after per run."""
    levels = [k for k in _eval_levels(runs) if k.startswith("sampled/")] or _eval_levels(runs)
    if not levels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bars = []  # (label, color, hatch, values)
    before = next((run.eval["before"] for run in runs if isinstance(run.eval.get("before"), dict)), None)
    if before is not None:
        bars.append(("before RL", "lightgrey", "//", [before.get(k) for k in levels]))
    for r, run in enumerate(runs):
        after = run.eval.get("after")
        if isinstance(after, dict):
            bars.append((f"{run.name} after", colors[r % len(colors)], None, [after.get(k) for k in levels]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(levels), 3.0))
    width = 0.8 / max(1, len(bars))
    for b, (label, color, hatch, values) in enumerate(bars):
        xs = [i + (b - (len(bars) - 1) / 2) * width for i in range(len(levels))]
        heights = [v if isinstance(v, (int, float)) else 0.0 for v in values]
        ax.bar(xs, heights, width, label=label, color=color, hatch=hatch, edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([k.split("/", 1)[-1] for k in levels], fontsize=8)
    ax.set_ylabel("held-out accuracy", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(f"held-out accuracy by difficulty ({levels[0].split('/')[0]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _steps(run: Run) -> str:
    skipped = f"; {run.skipped_lines} incomplete line of metrics.jsonl skipped" if run.skipped_lines else ""
    return f"{len(run.records)} steps{skipped}"


def markdown_report(runs: list[Run], images: list[str]) -> str:
    lines = ["# Run report", ""]
    lines.append("Runs: " + ", ".join(f"`{run.name}` ({run.path}, {_steps(run)})" for run in runs))
    lines.append("")
    levels = _eval_levels(runs)
    if levels:
        lines += ["## Held-out accuracy by difficulty", ""]
        lines.append("| run | phase | " + " | ".join(levels) + " |")
        lines.append("|---|---|" + "---|" * len(levels))
        for run in runs:
            for phase in ("before", "after"):
                values = run.eval.get(phase)
                if isinstance(values, dict):
                    lines.append(f"| {run.name} | {phase} | " + " | ".join(_fmt(values.get(k)) for k in levels) + " |")
        lines += ["", "`sampled` = mean accuracy over samples at the RL temperature; `greedy` = greedy pass@1.", ""]
    lines += ["## Failure-mode indices, early vs late (first / last 25% of steps)", ""]
    lines.append("| index | " + " | ".join(f"{run.name} early | {run.name} late" for run in runs) + " |")
    lines.append("|---|" + "---|---|" * len(runs))
    for label, keys in INDICES:
        cells = []
        for run in runs:
            early, late = early_late(run.series(keys)[1])
            cells += [_fmt(early), _fmt(late)]
        if any(c != "n/a" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Zero-Advantage Collapse: `zero_adv_rate/*` = share of prompt groups with no learning signal "
        "(all outcomes equal / all composite advantages ~0). Hallucinated Certainty as the paper plots it: "
        "`hc/entropy_incorrect` = mean entropy (nats) at the critical tokens of incorrect rollouts; falling = "
        "the policy grows confident where it is wrong (`hc/incorrect`: the sampled token's probability there). "
        "`critical/*`: |E|, |D|, |C| as shares of completion tokens. `dominance/violations`: share of mixed "
        "groups where some incorrect rollout's reward is >= some correct one's.",
        "",
        "## Wall time",
        "",
        "| run | steps | wall time |",
        "|---|---|---|",
    ]
    for run in runs:
        seconds = run.wall_seconds()
        lines.append(f"| {run.name} | {len(run.records)} | {'n/a' if seconds is None else f'{seconds:.0f} s'} |")
    lines.append("")
    for image in images:
        lines.append(f"![{Path(image).stem}]({image})")
    lines.append("")
    return "\n".join(lines)


def make_report(run_dirs: list[str | Path], output_dir: str | Path, *, smoothing: int | None = None) -> Path:
    """Write the plots and ``report.md`` for ``run_dirs`` into ``output_dir``; returns the report's path."""
    runs = [load_run(d) for d in run_dirs]
    names = [run.name for run in runs]
    for i, run in enumerate(runs):  # two runs with the same folder name: tell them apart
        if names.count(run.name) > 1:
            run.name = f"{run.name}[{i}]"
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    images = [plot_dynamics(runs, output_dir / "training_dynamics.png", smoothing=smoothing).name]
    heldout = plot_heldout(runs, output_dir / "heldout_accuracy.png")
    if heldout is not None:
        images.insert(0, heldout.name)
    report = output_dir / "report.md"
    report.write_text(markdown_report(runs, images))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (or metrics.jsonl files)")
    parser.add_argument("--output-dir", default=None, help="where to write (default: the first run's parent)")
    parser.add_argument("--smoothing", type=int, default=None, help="moving-average window (default: steps/10)")


def run(args: argparse.Namespace) -> int:
    first = Path(args.run_dirs[0])
    default = (first.parent if first.is_file() else first).parent
    try:
        report = make_report(args.run_dirs, args.output_dir or default, smoothing=args.smoothing)
    except (FileNotFoundError, ValueError) as error:  # a user's mistake: say which file, no traceback
        print(f"ispo report: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report} and plots in {report.parent}")
    return 0
