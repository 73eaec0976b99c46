"""Running a study: every (method, seed) cell through the demo pipeline, resumable, in worker processes.

Per cell ``DIR/<method>/seed<S>/{metrics.jsonl, eval.json, run.json}`` (``ispo.demo.run.run_cell``:
same warm start, same prompts for a seed, same budget as ``ispo demo``). ``run.json`` is written last and
atomically, so a folder with it is a finished cell that is never rerun; a folder without it was
interrupted and is deleted and rerun from scratch. The warm start (cached) is made once before the
workers start, and the "before RL" evaluation once per study (``DIR/before.json``), not per cell. With
``jobs`` > 1, cells run in that many worker processes (spawned, one torch thread each) that load the
warm start from its folder; with one job they run in this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ispo.common import cell_dir, first_line, write_json_atomic
from ispo.data.synthetic import DIFFICULTY_NAMES
from ispo.study.spec import Study, StudyError, format_seeds


@dataclass
class CellJob:
    """One (method, seed) cell to run; picklable, for a worker process."""

    config: Any  # ispo.demo.run.DemoConfig with the cell's seed
    name: str
    fields: dict
    model_folder: str
    before: dict
    run_dir: str


def settings_record(base) -> dict:
    """What makes a cell's result comparable with another's: recorded in ``DIR/sweep.json``, checked on resume."""
    return {
        "task": base.task,
        "split": base.split,
        "steps": base.steps,
        "eval": asdict(base.eval),
        "warm_start": base.warmstart.key(),
        "budget": {
            "prompts_per_step": base.prompts_per_step,
            "num_generations": base.num_generations,
            "learning_rate": base.learning_rate,
            "max_completion_length": base.max_completion_length,
            "temperature": base.temperature,
            "difficulty_weights": list(base.difficulty_weights),
        },
        # only when set, so the sweep.json of a tiny-model study (and its resumption) stays as it was
        **({"model": base.model} if base.model else {}),
        # torch threads per cell round differently: recorded when not the default 1, for the same reason
        **({"threads": base.threads} if base.threads != 1 else {}),
    }


def run_sweep(
    study: Study,
    seeds: list[int],
    output_dir: str | Path,
    base,
    *,
    jobs: int = 1,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run every unfinished cell of ``study`` x ``seeds`` and write the summary; returns ``study.json``'s content.

    Args:
        base: the ``DemoConfig`` every cell starts from (task, split, steps, evaluation, warm start); each
            cell replaces its seed.
        jobs: worker processes; 1 runs the cells in this process.
        threads: torch threads of each cell (1 by default: cells of a tiny model gain little from more;
            SmolLM2 cells on 2 cores ran at the same throughput one at a time with 2 threads as two at a
            time with 1, docs/demo.md). Recorded in sweep.json when not 1.

    Raises:
        StudyError: ``output_dir`` holds a study run with other settings, or a finished cell of a method
            whose fields changed since (nothing is run).
    """
    from ispo.demo.run import demo_problems, evaluate_folder, setup_runtime, warm_start_folder
    from ispo.study.summary import write_summary

    log = log or _print
    if jobs < 1:
        raise StudyError(f"--jobs: must be at least 1, got {jobs}")
    if threads < 1:
        raise StudyError(f"--threads: must be at least 1, got {threads}")
    if not seeds:
        raise StudyError("--seeds: no seeds")
    output_dir = Path(output_dir)
    base = replace(base, progress=False, threads=threads)
    setup_runtime(threads)
    _quiet_transformers()
    started = time.perf_counter()

    settings = settings_record(base)
    cells = [(name, seed) for seed in seeds for name in study.methods]  # seed-major: early seeds finish first
    finished = _check_output(output_dir, study, cells, settings)
    model_folder = warm_start_folder(base)  # trained once if not cached, before any worker starts
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output_dir / "sweep.json", {**settings, "study": study.path, "methods": study.methods})

    before = _before(output_dir, base, model_folder, settings, evaluate_folder, demo_problems, log)

    todo = [cell for cell in cells if cell not in finished]
    for name, seed in todo:  # an interrupted cell reruns from scratch
        folder = cell_dir(output_dir, name, seed)
        if folder.exists():
            shutil.rmtree(folder)
    steps = f"{base.steps} step{'s' if base.steps > 1 else ''}"
    log(
        f"study {study.path or ''}: {len(study.methods)} methods x seeds {format_seeds(seeds)} = {len(cells)} cells "
        f"({len(finished)} already finished), task {base.task}, split {base.split}, {steps}, "
        f"{jobs} job{'s' if jobs > 1 else ''}"
    )
    jobs_list = [
        CellJob(
            config=replace(base, seed=seed, output_dir=str(cell_dir(output_dir, name, seed))),
            name=name,
            fields=study.methods[name],
            model_folder=str(model_folder),
            before=before,
            run_dir=str(cell_dir(output_dir, name, seed)),
        )
        for name, seed in todo
    ]

    def summarise() -> dict:
        return write_summary(output_dir, study, seeds, base, before, wall_seconds=time.perf_counter() - started)

    # the summary is rewritten as each cell finishes: a study of many hours has a current one to read
    # (and commit) while it runs, and keeps it if stopped
    failures = _run_jobs(
        jobs_list, jobs, total=len(cells), already=len(finished), log=log, threads=threads, on_cell=summarise
    )
    summary = summarise()
    summary["failed_cells"] = failures
    if failures:
        names = ", ".join(failures)
        log(f"{len(failures)} cell(s) failed (their folders stay without run.json; rerun to retry): {names}")
    return summary


def _check_output(output_dir: Path, study: Study, cells: list[tuple[str, int]], settings: dict) -> set:
    """The finished cells; a folder from a study with other settings or changed method fields is a StudyError."""
    recorded_path = output_dir / "sweep.json"
    if recorded_path.exists():
        recorded = json.loads(recorded_path.read_text())
        for key, value in settings.items():
            if _normal(recorded.get(key)) != _normal(value):
                raise StudyError(
                    f"--output-dir: {output_dir} holds a study run with other settings ({key}: "
                    f"{_short(recorded.get(key))} there, {_short(value)} now); use another folder"
                )
    finished = set()
    for name, seed in cells:
        run_json = cell_dir(output_dir, name, seed) / "run.json"
        if not run_json.exists():
            continue
        info = json.loads(run_json.read_text())
        if _normal(info.get("method")) != _normal(study.methods[name]):
            raise StudyError(
                f"methods.{name}: {run_json.parent} finished with other fields ({_short(info.get('method'))}); "
                "delete it or use another --output-dir"
            )
        finished.add((name, seed))
    return finished


def _before(output_dir, base, model_folder, settings, evaluate_folder, demo_problems, log) -> dict:
    """The warm start's held-out accuracy, evaluated once per study and kept in ``DIR/before.json``."""
    path = output_dir / "before.json"
    key = {k: settings[k] for k in ("task", "split", "eval", "warm_start")}
    if path.exists():
        saved = json.loads(path.read_text())
        if _normal(saved.get("settings")) == _normal(key):
            return saved["accuracy"]
    t0 = time.perf_counter()
    accuracy = evaluate_folder(base, Path(model_folder), demo_problems(base))
    write_json_atomic(path, {"settings": key, "accuracy": accuracy, "seconds": round(time.perf_counter() - t0, 1)})
    log(f"before RL (warm start, split {base.split}): {_levels(accuracy)} ({time.perf_counter() - t0:.0f} s)")
    return accuracy


def _run_jobs(
    jobs_list: list[CellJob],
    jobs: int,
    *,
    total: int,
    already: int,
    log,
    work: Callable[[CellJob], dict] | None = None,
    threads: int = 1,
    on_cell: Callable[[], object] | None = None,
) -> list[str]:
    """Run the cells, one progress line each as it finishes; returns the failed cells' names.

    ``work`` runs one cell (default ``run_cell_job``; a module-level function, for worker processes);
    ``threads``: torch threads of each worker process; ``on_cell``: called after each cell that finished
    (the partial summary); an error in it is logged in one line and does not stop the study.
    """
    work = work or run_cell_job
    started = time.perf_counter()
    done_now = 0
    failures: list[str] = []

    def report(job: CellJob, outcome: dict | None, error: str | None) -> None:
        nonlocal done_now
        done_now += 1
        done = already + done_now
        elapsed = time.perf_counter() - started
        remaining = total - done
        eta = elapsed / done_now * remaining
        where = f"{job.name} seed {job.config.seed}"
        if error is not None:
            failures.append(f"{job.name}/seed{job.config.seed}")
            log(f"[{done}/{total}] {where}: FAILED ({error}); elapsed {_clock(elapsed)}, ETA {_clock(eta)}")
            return
        after = outcome["after"]
        log(
            f"[{done}/{total}] {where}: all {after.get('sampled/all', float('nan')):.3f} ({_levels(after)}), "
            f"train {outcome['train_seconds']:.0f} s, cell {outcome['cell_seconds']:.0f} s; "
            f"elapsed {_clock(elapsed)}, ETA {_clock(eta)}"
        )
        if on_cell is not None:
            try:
                on_cell()
            except Exception as problem:  # the cells are safe on disk; the summary is rewritten at the end
                log(f"summary after {where} not written: {_one_line(problem)}")

    if not jobs_list:
        return failures
    if jobs == 1 or len(jobs_list) == 1:
        for job in jobs_list:
            try:
                outcome = work(job)
            except Exception as error:  # one failed cell does not stop the study
                report(job, None, _one_line(error))
            else:
                report(job, outcome, None)
        return failures

    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch threads or locks
    bystanders = set(multiprocessing.active_children())  # the caller's own processes: never ours to stop
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(jobs_list)), mp_context=context, initializer=init_worker, initargs=(threads,)
    )
    try:
        pending = {pool.submit(work, job): job for job in jobs_list}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                error = future.exception()
                report(job, None if error else future.result(), _one_line(error) if error else None)
    except BaseException:  # interrupted: queued cells are dropped, running ones are stopped without run.json
        pool.shutdown(wait=False, cancel_futures=True)
        stop_workers([child for child in multiprocessing.active_children() if child not in bystanders])
        raise
    pool.shutdown()
    return failures


def stop_workers(children: list, grace_seconds: float = 5.0) -> None:
    """Terminate the sweep's worker processes (an interrupted sweep must not leave cells running)."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace_seconds
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """Exit this worker when the sweep that started it is gone (killed with no chance to stop its workers)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def interrupt_on_sigterm():
    """SIGTERM (``kill``, a job scheduler) takes the path of Ctrl-C: workers stopped, finished cells kept."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def init_worker(threads: int = 1) -> None:
    """A worker process: offline, quiet, ``threads`` torch threads, gone with its parent."""
    exit_with_parent()
    from ispo.demo.run import setup_runtime

    setup_runtime(threads)
    _quiet_transformers()


def _quiet_transformers() -> None:
    """No per-cell "Loading weights" bars or notices: the sweep's output is one line per cell."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


_PROBLEMS: dict[tuple, list] = {}  # per process: the held-out problems of a (task, split, size)


def run_cell_job(job: CellJob) -> dict:
    """Run one cell (in a worker or in this process); returns what the progress line shows."""
    from ispo.demo.run import demo_problems, run_cell

    started = time.perf_counter()
    config = job.config
    key = (config.task, config.split, config.eval.problems_per_difficulty)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = demo_problems(config)
    # the trainer's one-off notices would interleave with the progress lines (several workers share the terminal)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        result = run_cell(
            config, job.name, job.fields, Path(job.model_folder), _PROBLEMS[key], job.before, Path(job.run_dir)
        )
    return {
        "after": result.after,
        "train_seconds": result.train_seconds,
        "cell_seconds": time.perf_counter() - started,
    }


def _levels(accuracy: dict) -> str:
    return " ".join(f"{level} {accuracy.get(f'sampled/{level}', float('nan')):.2f}" for level in DIFFICULTY_NAMES)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _one_line(error: BaseException) -> str:
    """``ValueError: <first line>`` (the type alone for an error without a message)."""
    kind, line = type(error).__name__, first_line(error)
    return kind if line == kind else f"{kind}: {line}"


def _normal(value):
    """JSON round trip: tuples become lists, so recorded and current settings compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def _short(value, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
