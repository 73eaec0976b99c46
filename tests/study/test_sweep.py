"""``ispo sweep`` end to end on a toy budget: cells, resume, one "before" evaluation per study, worker processes."""

from __future__ import annotations

import json

import pytest

from ispo.demo.run import DemoConfig
from ispo.study.spec import parse_study

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_base(tiny_demo_config) -> DemoConfig:
    """The toy study budget, split dev."""
    return tiny_demo_config(split="dev")


STUDY = {
    "baseline": "GRPO",
    "methods": {"GRPO": {"preset": "grpo"}, "IFD-only": {"preset": "ispo_paper", "lambda_tok": 0}},
}


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Counts the cells trained and the "before" evaluations made in this process."""
    import ispo.demo.run as demo_run

    monkeypatch.setenv("ISPO_CACHE", str(tmp_path / "cache"))
    calls = {"cells": [], "before": 0}
    run_cell, evaluate_folder = demo_run.run_cell, demo_run.evaluate_folder

    def counting_cell(config, name, *args, **kwargs):
        calls["cells"].append((name, config.seed))
        return run_cell(config, name, *args, **kwargs)

    def counting_before(*args, **kwargs):
        calls["before"] += 1
        return evaluate_folder(*args, **kwargs)

    monkeypatch.setattr(demo_run, "run_cell", counting_cell)
    monkeypatch.setattr(demo_run, "evaluate_folder", counting_before)
    return calls


def test_cells_resume_and_before_is_evaluated_once(tmp_path, counted, tiny_base):
    from ispo.study.runner import run_sweep

    study, base, out = parse_study(STUDY, path="toy.yaml"), tiny_base, tmp_path / "study"
    lines, partial_summaries = [], []

    def log(line: str) -> None:  # after each progress line, the summary of the cells finished before it
        lines.append(line)
        if line.startswith("[") and (out / "study.json").exists():
            partial_summaries.append(json.loads((out / "study.json").read_text())["cells"])

    summary = run_sweep(study, [0, 1], out, base, log=log)
    assert sorted(counted["cells"]) == [("GRPO", 0), ("GRPO", 1), ("IFD-only", 0), ("IFD-only", 1)]
    # the summary is rewritten as each cell finishes (read here before the next cell's is written)
    assert partial_summaries == [{"finished": k, "total": 4} for k in (1, 2, 3)]
    assert counted["before"] == 1
    for name in ("GRPO", "IFD-only"):
        for seed in (0, 1):
            folder = out / name / f"seed{seed}"
            assert {p.name for p in folder.iterdir()} == {"metrics.jsonl", "eval.json", "run.json"}
            evaluation = json.loads((folder / "eval.json").read_text())
            assert evaluation["split"] == "dev" and "sampled/hard" in evaluation["after"]
            assert json.loads((folder / "run.json").read_text())["seed"] == seed
            value = summary["methods"][name]["accuracy"]["all"]["by_seed"][str(seed)]
            assert value == evaluation["after"]["sampled/all"]
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4] IFD-only seed 1: all ") and "ETA" in progress[-1]
    assert {"study.json", "study.md", "study.png", "before.json", "sweep.json"} <= {p.name for p in out.iterdir()}

    # a second run: every cell finished, nothing trained, "before" read back
    stamp = (out / "GRPO" / "seed0" / "run.json").stat().st_mtime_ns
    counted["cells"].clear()
    run_sweep(study, [0, 1], out, base, log=lines.append)
    assert counted["cells"] == [] and counted["before"] == 1
    assert (out / "GRPO" / "seed0" / "run.json").stat().st_mtime_ns == stamp

    # an interrupted cell (a folder without run.json) reruns from scratch; the others stay
    partial = out / "IFD-only" / "seed1"
    (partial / "run.json").unlink()
    (partial / "leftover.tmp").write_text("half a run")
    run_sweep(study, [0, 1], out, base, log=lines.append)
    assert counted["cells"] == [("IFD-only", 1)]
    assert (partial / "run.json").exists() and not (partial / "leftover.tmp").exists()
    assert (out / "GRPO" / "seed0" / "run.json").stat().st_mtime_ns == stamp

    # more seeds later: only the new cells run
    counted["cells"].clear()
    summary = run_sweep(study, [0, 1, 2], out, base, log=lines.append)
    assert sorted(counted["cells"]) == [("GRPO", 2), ("IFD-only", 2)]
    assert summary["methods"]["IFD-only"]["vs_baseline"]["all"]["seeds"] == [0, 1, 2]


def test_a_cell_is_the_demo_pipeline(tmp_path, counted, tiny_base):
    """The same method and seed give the same numbers through ispo demo and through ispo sweep."""
    from dataclasses import replace

    from ispo.demo.run import run_demo
    from ispo.study.runner import run_sweep

    base = tiny_base
    run_demo(replace(base, output_dir=str(tmp_path / "demo"), methods=("GRPO",), seed=1))
    run_sweep(
        parse_study({"baseline": "GRPO", "methods": {"GRPO": "grpo"}}),
        [1],
        tmp_path / "study",
        base,
        log=lambda line: None,
    )
    demo = json.loads((tmp_path / "demo" / "GRPO" / "eval.json").read_text())
    sweep = json.loads((tmp_path / "study" / "GRPO" / "seed1" / "eval.json").read_text())
    assert demo == sweep
    steps = [json.loads(line) for line in (tmp_path / "demo" / "GRPO" / "metrics.jsonl").read_text().splitlines()]
    cell = [
        json.loads(line) for line in (tmp_path / "study" / "GRPO" / "seed1" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["loss"] for r in steps] == [r["loss"] for r in cell]


@pytest.mark.spawn
def test_two_worker_processes(tmp_path, monkeypatch, tiny_base):
    """--jobs 2: cells in spawned workers, one progress line each, the same files as in-process."""
    from ispo.study.runner import run_sweep

    monkeypatch.setenv("ISPO_CACHE", str(tmp_path / "cache"))
    lines = []
    summary = run_sweep(parse_study(STUDY), [0], tmp_path / "study", tiny_base, jobs=2, log=lines.append)
    assert summary["cells"] == {"finished": 2, "total": 2} and not summary["failed_cells"]
    assert sorted(line.split(":")[0].split("] ")[1] for line in lines if line.startswith("[")) == [
        "GRPO seed 0",
        "IFD-only seed 0",
    ]
    assert (tmp_path / "study" / "IFD-only" / "seed0" / "run.json").exists()
