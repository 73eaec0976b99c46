"""The sweep's cell loop (``ispo.study.runner._run_jobs``) with stand-in cells: progress lines, failures, and
the partial summary written after each finished cell."""

from __future__ import annotations

from types import SimpleNamespace

from ispo.study.runner import _run_jobs


def stand_in(job) -> dict:
    if job.name == "broken":
        raise RuntimeError("no\nluck")
    return {"after": {"sampled/all": 0.5}, "train_seconds": 1.0, "cell_seconds": 2.0}


def test_the_summary_hook_runs_after_each_finished_cell_and_its_errors_do_not_stop_the_study():
    jobs = [SimpleNamespace(name=name, config=SimpleNamespace(seed=0)) for name in ("A", "broken", "B", "C")]
    lines, calls = [], []

    def on_cell() -> None:
        calls.append(len(lines))
        if len(calls) == 1:
            raise OSError("disk full")

    failures = _run_jobs(jobs, 1, total=5, already=1, log=lines.append, work=stand_in, on_cell=on_cell)

    assert failures == ["broken/seed0"]
    assert [line.split(":")[0] for line in lines] == [
        "[2/5] A seed 0",
        "summary after A seed 0 not written",
        "[3/5] broken seed 0",
        "[4/5] B seed 0",
        "[5/5] C seed 0",
    ]
    assert "OSError: disk full" in lines[1] and "FAILED (RuntimeError: no)" in lines[2]
    assert calls == [1, 4, 5]  # once per finished cell, after its progress line; not after the failed one
    assert all("\n" not in line for line in lines)
