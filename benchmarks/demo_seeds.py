"""Three seeds of the offline demo, GRPO vs ISPO: mean and spread of the final held-out accuracy by
difficulty and of the failure-mode indices.

    python benchmarks/demo_seeds.py [--seeds 0 1 2] [--steps N] [--output-dir runs/demo_seeds]
    python benchmarks/demo_seeds.py --summarize-only --output-dir runs/demo_seeds   # re-print a finished sweep

Every seed shares the cached warm start and the held-out set; the seed changes the RL sampling and
the RL prompts. Spread is the sample standard deviation over seeds (and min..max).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

LEVELS = ("easy", "medium", "hard", "all")
# (label, metrics.jsonl key, which part of the run)
INDICES = (
    ("zero_adv_rate/outcome late", "zero_adv_rate/outcome", "late"),
    ("zero_adv_rate/composite late", "zero_adv_rate/composite", "late"),
    ("hc/incorrect early", "hc/incorrect", "early"),
    ("hc/incorrect late", "hc/incorrect", "late"),
    ("hc/correct late", "hc/correct", "late"),
    ("train accuracy late", "accuracy", "late"),
    ("entropy late", "entropy", "late"),
)


def run_seeds(seeds: list[int], steps: int | None, output_dir: Path) -> None:
    from ispo.demo.run import DemoConfig, run_demo

    for seed in seeds:
        config = DemoConfig(output_dir=str(output_dir / f"seed{seed}"), seed=seed, progress=False)
        if steps is not None:
            config.steps = steps
        started = time.perf_counter()
        print(f"seed {seed}: running ...", flush=True)
        run_demo(config)
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)


def _phase_mean(values: list[float], phase: str) -> float | None:
    from ispo.report import early_late

    early, late = early_late(values)
    return early if phase == "early" else late


def collect(output_dir: Path, methods: tuple[str, ...]) -> dict:
    from ispo.report import load_run

    table: dict[tuple[str, str], list[float]] = {}
    for seed_dir in sorted(p for p in output_dir.glob("seed*") if p.is_dir()):
        for method in methods:
            run_dir = seed_dir / method
            if not (run_dir / "metrics.jsonl").exists():
                continue
            run = load_run(run_dir)
            before, after = run.eval.get("before", {}), run.eval.get("after", {})
            for level in LEVELS:
                for name, source in (("before", before), ("after", after)):
                    key = f"sampled/{level}"
                    if key in source:
                        table.setdefault((method, f"{name} {level}"), []).append(source[key])
            for label, key, phase in INDICES:
                value = _phase_mean(run.series((key,))[1], phase)
                if value is not None:
                    table.setdefault((method, label), []).append(value)
            if run.wall_seconds() is not None:
                table.setdefault((method, "train seconds"), []).append(run.wall_seconds())
    return table


def summarize(table: dict, methods: tuple[str, ...]) -> str:
    rows = sorted({row for _, row in table}, key=_row_order)
    header = "| metric | " + " | ".join(f"{m} mean ± sd (min..max), n" for m in methods) + " |"
    lines = [header, "|---|" + "---|" * len(methods)]
    for row in rows:
        cells = []
        for method in methods:
            values = table.get((method, row), [])
            if not values:
                cells.append("n/a")
                continue
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(
                f"{statistics.mean(values):.3f} ± {sd:.3f} ({min(values):.3f}..{max(values):.3f}), {len(values)}"
            )
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row_order(row: str):
    order = [f"{p} {level}" for p in ("before", "after") for level in LEVELS] + [label for label, _, _ in INDICES]
    return (order.index(row) if row in order else len(order), row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="RL steps per method (default: the demo's)")
    parser.add_argument("--output-dir", default="runs/demo_seeds")
    parser.add_argument("--summarize-only", action="store_true")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    methods = ("GRPO", "ISPO")
    if not args.summarize_only:
        run_seeds(args.seeds, args.steps, output_dir)
    text = summarize(collect(output_dir, methods), methods)
    print(text)
    (output_dir / "summary.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
