"""Apply the selection rule of docs/study.md ("Selection rule") to the dev studies, mechanically.

    python recipes/studies/select_recommended.py ARITHMETIC_DIR... -- BRANCHING_DIR...

Each side lists the study folders of one task (split dev, seeds 0-4) whose cells hold the candidates and
GRPO (the variants study and the combination study). Prints every candidate's paired difference to GRPO
on `all` per task, whether it is eligible, and the selected one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ispo.methods.presets import ISPO_PAPER
from ispo.study.stats import paired_difference

BASELINE, PAPER = "GRPO", "ISPO-paper"
NOT_CANDIDATES = {BASELINE, PAPER}
TIE_POINTS = 0.5


def accuracies(folders: list[Path]) -> dict[str, dict[int, float]]:
    """Per method: seed -> sampled accuracy on `all` after RL, over the cells of ``folders``."""
    values: dict[str, dict[int, float]] = {}
    for folder in folders:
        for run_json in sorted(folder.glob("*/seed*/run.json")):
            cell = run_json.parent
            name, seed = cell.parent.name, int(cell.name.removeprefix("seed"))
            after = json.loads((cell / "eval.json").read_text())["after"]["sampled/all"]
            previous = values.setdefault(name, {}).get(seed)
            if previous is not None and previous != after:
                raise SystemExit(f"{name} seed {seed}: two folders disagree ({previous} vs {after})")
            values[name][seed] = after
    return values


def changes_from_paper(fields: dict) -> int:
    """How many ISPOConfig fields differ from the ispo_paper preset."""
    return sum(1 for key, value in fields.items() if ISPO_PAPER.get(key) != value)


def main(argv: list[str]) -> None:
    split = argv.index("--")
    tasks = {"arithmetic": [Path(p) for p in argv[:split]], "branching": [Path(p) for p in argv[split + 1 :]]}
    table: dict[str, dict[str, dict]] = {}
    given: dict[str, dict] = {}
    for task, folders in tasks.items():
        values = accuracies(folders)
        for folder in folders:
            for name, fields in json.loads((folder / "sweep.json").read_text())["methods"].items():
                given.setdefault(name, fields)
        for name, per_seed in values.items():
            if name in NOT_CANDIDATES:
                continue
            table.setdefault(name, {})[task] = paired_difference(per_seed, values[BASELINE])
    rows = []
    for name, per_task in table.items():
        if set(per_task) != set(tasks) or any(d is None or d["n"] < 5 for d in per_task.values()):
            print(f"{name}: not on both tasks with 5 seeds, left out")
            continue
        eligible = all(d["ci95"][1] >= 0 for d in per_task.values())
        mean = sum(d["mean_diff"] for d in per_task.values()) / len(per_task)
        rows.append((mean, name, eligible, per_task))
    rows.sort(key=lambda row: -row[0])
    print("candidate | arithmetic - GRPO | branching - GRPO | mean | eligible | changes")
    for mean, name, eligible, per_task in rows:
        cells = " | ".join(
            f"{100 * d['mean_diff']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
            for d in per_task.values()
        )
        print(f"{name} | {cells} | {100 * mean:+.2f} | {eligible} | {changes_from_paper(given[name])}")
    eligible_rows = [row for row in rows if row[2]]
    if not eligible_rows:
        print("selected: none (every candidate is below GRPO on a task)")
        return
    best = eligible_rows[0][0]
    tied = [row for row in eligible_rows if 100 * (best - row[0]) <= TIE_POINTS]
    tied.sort(key=lambda row: (changes_from_paper(given[row[1]]), -row[0]))
    print(f"selected: {tied[0][1]} {given[tied[0][1]]} (tied within {TIE_POINTS} points: {[row[1] for row in tied]})")


if __name__ == "__main__":
    main(sys.argv[1:])
