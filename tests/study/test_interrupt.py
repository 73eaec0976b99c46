"""An interrupted or killed sweep leaves no worker process behind (they would keep two cores busy for hours)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.spawn,
    pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads process children from /proc"),
]

WORK = """
import os, time
from pathlib import Path

def sleep_long(job):
    Path(job.name).write_text(str(os.getpid()))  # this worker has started a cell
    time.sleep(600)
    return {}
"""

SWEEP = """
import multiprocessing
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from ispo.study.runner import _run_jobs, interrupt_on_sigterm
from work import sleep_long

if __name__ == "__main__":  # spawned workers import this file too
    # a process of the caller's own, started before the sweep: stopping the sweep must leave it running
    bystander = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(600,))
    bystander.start()
    Path(sys.argv[1], "bystander").write_text(str(bystander.pid))
    jobs = [SimpleNamespace(name=f"{sys.argv[1]}/started{i}", config=SimpleNamespace(seed=i)) for i in range(4)]
    try:
        with interrupt_on_sigterm():
            _run_jobs(jobs, 2, total=4, already=0, log=print, work=sleep_long)
    except KeyboardInterrupt:
        Path(sys.argv[1], "bystander_after_stop").write_text("alive" if bystander.is_alive() else "stopped")
        bystander.kill()
        sys.exit(130)
"""


def start_sweep(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A sweep of four 10-minute cells on two workers, returned once both workers are inside a cell."""
    (tmp_path / "work.py").write_text(textwrap.dedent(WORK))
    (tmp_path / "sweep.py").write_text(textwrap.dedent(SWEEP))
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    sweep = subprocess.Popen([sys.executable, str(tmp_path / "sweep.py"), str(tmp_path)], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = sorted(tmp_path.glob("started*"))
        if len(started) == 2:
            return sweep, [int(path.read_text() or 0) for path in started]
        assert sweep.poll() is None, "the sweep exited before its workers started"
        time.sleep(0.2)
    sweep.kill()
    pytest.fail("the two workers never started a cell")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's wait is missing


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if running(pid)]


def test_sigterm_stops_the_workers(tmp_path):
    sweep, workers = start_sweep(tmp_path)
    assert all(running(pid) for pid in workers)
    sweep.send_signal(signal.SIGTERM)
    assert sweep.wait(timeout=60) == 130  # the Ctrl-C path, not a hard kill
    assert wait_gone(workers, 15) == []
    assert len(list(tmp_path.glob("started*"))) == 2  # queued cells were not started on the way out
    assert (tmp_path / "bystander_after_stop").read_text() == "alive"  # only the sweep's own workers stopped


def test_workers_exit_when_the_sweep_is_killed(tmp_path):
    sweep, workers = start_sweep(tmp_path)
    sweep.kill()  # SIGKILL: no handler runs; each worker notices its parent is gone
    sweep.wait(timeout=30)
    os.kill(int((tmp_path / "bystander").read_text()), signal.SIGKILL)  # the test's own process, orphaned
    assert wait_gone(workers, 15) == []
