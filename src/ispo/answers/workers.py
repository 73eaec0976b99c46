"""Grading in persistent worker processes with deadlines: the `Verifier` pool and `verify_batch`.

Math-Verify's own timeouts use `signal.alarm`, which only works on the main thread, and sympy can
spend minutes (or hang in C) on hostile input. So all parsing and comparison (`ispo.answers.grade`)
runs in persistent child worker processes: the child runs each pair under its own `setitimer`
deadline (it is the child's main thread) and the parent kills and restarts a child that overruns
`timeout` by `VerifyConfig.kill_grace` (a hang in C code, where no Python timer fires); that pair is
False. The functions here are safe from any thread; concurrent callers share a small pool of workers
(`Verifier(max_workers=...)`), and a large batch is split over them. Workers are started with
`subprocess` running `python -c` rather than `multiprocessing`, so the caller's `__main__` is never
re-imported (no `if __name__ == "__main__"` guard needed); they are killed at interpreter exit.
Input never makes these functions raise; the one error is a `RuntimeError` when a worker cannot
start at all (Math-Verify missing), an environment fault that would otherwise zero every reward.

Before a pair reaches a worker, the answer is extracted (`ispo.answers.extract`) and both texts are
screened (`ispo.answers.screen`): an unusable gold is None and a refused answer False, unparsed.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from ispo.answers.config import DEFAULT_CONFIG, VerifyConfig
from ispo.answers.extract import graded_answer
from ispo.answers.formats import AnswerFormat, check_answer_format
from ispo.answers.grade import grade, math_verify_api, parse_gold
from ispo.answers.screen import refusal

__all__ = ["Verifier", "verify_answer", "verify_batch", "worker_main"]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Worker side (runs in the child process)
# --------------------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by the worker's timer; a BaseException so Math-Verify's `except Exception` lets it pass."""


def _on_deadline(signum, frame):
    raise _Deadline


def _grade_with_deadline(gold: str, answer: str | None, timeout: float) -> bool | None:
    stage = "gold"
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3))
        parse_gold(gold)
        stage = "answer"
        return grade(gold, answer)
    except _Deadline:
        return None if stage == "gold" else False
    except Exception:  # noqa: BLE001 - a grading bug must cost one pair, not the worker
        logger.debug("grading failed", exc_info=True)
        return None if stage == "gold" else False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def worker_main(read_fd: int, write_fd: int) -> None:
    """Entry point of a worker process: grade batches from the parent until the pipe closes."""
    requests = Connection(read_fd, writable=False)
    results = Connection(write_fd, readable=False)
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_deadline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    math_verify_api()
    parse_gold("1")  # warm up antlr and sympy before declaring ready
    try:
        results.send("ready")
        while True:
            batch = requests.recv()
            for index, gold, answer, timeout in batch:
                results.send((index, _grade_with_deadline(gold, answer, timeout)))
    except (EOFError, OSError):
        return  # the parent closed the pipes or exited: nothing left to grade


# --------------------------------------------------------------------------------------------------
# Caller's side
# --------------------------------------------------------------------------------------------------

_WORKER_COMMAND = (
    "import sys; from ispo.answers.workers import worker_main; worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class _WorkerSlot:
    """One worker process, started lazily and restarted after a kill. Used by one thread at a time."""

    def __init__(self, config: VerifyConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.results: Connection | None = None

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        env = dict(os.environ)
        # The child must import this very package even when it is not installed (a source checkout).
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_COMMAND, str(child_read), str(child_write)],
                pass_fds=(child_read, child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            )
        finally:
            os.close(child_read)
            os.close(child_write)
        self.requests = Connection(parent_write, readable=False)
        self.results = Connection(parent_read, writable=False)
        try:
            ready = self.results.poll(self.config.startup_timeout) and self.results.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            # An environment problem (Math-Verify missing), not a property of any input: every
            # reward would silently be False, so this is the one error that is raised.
            raise RuntimeError("ispo.answers: the answer-checking worker failed to start")

    def kill(self) -> None:
        if self.process is not None:
            try:
                self.process.kill()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for connection in (self.requests, self.results):
            if connection is not None:
                connection.close()
        self.process = self.requests = self.results = None

    def run(self, items: list[tuple], timeout: float) -> list[bool | None]:
        """Grade `items` (gold, answer) in order; each gets `timeout` seconds."""
        try:
            return self._run(items, timeout)
        except BaseException:
            # Interrupted mid-batch (KeyboardInterrupt): the worker may still be answering this
            # batch, and its late answers must never be read as the next batch's.
            self.kill()
            raise

    def _run(self, items: list[tuple], timeout: float) -> list[bool | None]:
        outcomes: list[bool | None] = [False] * len(items)
        todo = list(range(len(items)))
        broken_pipes = 0
        while todo:
            if self.process is None or self.process.poll() is not None:
                self.kill()
                self._start()
            try:
                self.requests.send([(i, *items[i], timeout) for i in todo])
            except OSError:
                # Died between the check and the send; a fresh worker gets the batch.
                self.kill()
                broken_pipes += 1
                if broken_pipes > 3:
                    raise RuntimeError("ispo.answers: the answer-checking worker keeps dying") from None
                continue
            done = 0
            for index in todo:
                try:
                    if not self.results.poll(timeout + self.config.kill_grace):
                        raise TimeoutError
                    got, outcome = self.results.recv()
                except (TimeoutError, EOFError, OSError):
                    # Hung in C code or crashed: this pair is False, the rest go to a fresh worker.
                    logger.warning("ispo.answers: worker timed out or died; restarting it")
                    self.kill()
                    done += 1
                    break
                if got != index:
                    raise RuntimeError(f"ispo.answers: worker answered pair {got}, expected {index}")
                outcomes[index] = outcome
                done += 1
            todo = todo[done:]
        return outcomes


class Verifier:
    """A pool of grading workers. The module functions use a shared default instance.

    Own one (and `close()` it, or use it as a context manager) to isolate a component, e.g. an
    evaluation harness that wants more parallel workers than the training reward.
    """

    def __init__(self, max_workers: int | None = None, config: VerifyConfig = DEFAULT_CONFIG):
        if max_workers is None:
            max_workers = min(2, os.cpu_count() or 1)
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.config = config
        self.max_workers = max_workers
        self._slots = [_WorkerSlot(config) for _ in range(max_workers)]
        self._busy = [False] * max_workers
        self._available = threading.Condition()
        self._pid = os.getpid()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill all workers. Safe to call twice; a later `verify_batch` starts them again."""
        if os.getpid() != self._pid:
            return  # inherited through fork: the workers belong to the parent process
        for slot in self._slots:
            slot.kill()

    def _run(self, items: list[tuple], timeout: float, preferred: int = 0) -> list[bool | None]:
        """Grade on slot `preferred` if it is free (its caches know these golds), else on any free one."""
        with self._available:
            while all(self._busy):
                self._available.wait()
            index = preferred if not self._busy[preferred] else self._busy.index(False)
            self._busy[index] = True
        try:
            return self._slots[index].run(items, timeout)
        finally:
            with self._available:
                self._busy[index] = False
                self._available.notify()

    def verify_batch(
        self,
        golds: Sequence[str],
        completions: Sequence[str],
        *,
        answer_format: AnswerFormat = "boxed",
        timeout: float = 5.0,
    ) -> list[bool | None]:
        """See the module-level `verify_batch`."""
        check_answer_format(answer_format)
        if len(golds) != len(completions):
            raise ValueError(f"got {len(golds)} golds but {len(completions)} completions")
        timeout = float(timeout)
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        outcomes: list[bool | None] = [None] * len(golds)
        work: list[tuple[int, tuple]] = []
        for i, (gold, completion) in enumerate(zip(golds, completions, strict=True)):
            if not isinstance(gold, str) or not gold.strip() or refusal(gold, self.config):
                continue  # None: the gold is unusable
            answer = graded_answer(completion, answer_format) if isinstance(completion, str) else None
            if answer is not None and refusal(answer, self.config):
                answer = None
            # A pair without an answer still visits the worker: whether the gold parses decides
            # between False and None, and that parse is cached there.
            work.append((i, (gold, answer)))
        if not work:
            return outcomes
        # Split a large batch over the workers (a small one is not worth a second process start).
        # A gold always goes to the same worker, whose caches then hold its parse and its graded
        # answers across calls: the G rollouts of a prompt, the samples of an evaluation.
        num_chunks = min(self.max_workers, max(1, len(work) // 64))
        chunks: list[list[tuple[int, tuple]]] = [[] for _ in range(num_chunks)]
        for entry in work:
            chunks[zlib.crc32(entry[1][0].encode("utf-8", "replace")) % num_chunks].append(entry)
        used = [k for k, chunk in enumerate(chunks) if chunk]
        if len(used) == 1:
            results = [self._run([item for _, item in chunks[used[0]]], timeout, used[0])]
        else:
            with ThreadPoolExecutor(len(used)) as executor:
                futures = [executor.submit(self._run, [item for _, item in chunks[k]], timeout, k) for k in used]
                results = [future.result() for future in futures]
        for chunk, chunk_results in zip((chunks[k] for k in used), results, strict=True):
            for (i, _), outcome in zip(chunk, chunk_results, strict=True):
                outcomes[i] = outcome
        return outcomes


_default_verifier: Verifier | None = None
_default_lock = threading.Lock()


def _default() -> Verifier:
    """The shared pool, created on first use (and afresh in a forked child)."""
    global _default_verifier
    with _default_lock:
        if _default_verifier is None or _default_verifier._pid != os.getpid():
            _default_verifier = Verifier()
            atexit.register(_default_verifier.close)
        return _default_verifier


def verify_batch(
    golds: Sequence[str],
    completions: Sequence[str],
    *,
    answer_format: AnswerFormat = "boxed",
    timeout: float = 5.0,
) -> list[bool | None]:
    """`verify_answer` over (gold, completion) pairs; what the training reward and evaluation call.

    One round trip to a warm worker for the whole batch (large batches are split over the pool),
    and each gold is parsed once however many rollouts share it. `timeout` is per pair, so a batch
    of n hostile pairs can take n * timeout; the cheap screens refuse most of them without parsing.
    Mismatched lengths raise ValueError.
    """
    return _default().verify_batch(golds, completions, answer_format=answer_format, timeout=timeout)


def verify_answer(
    gold: str,
    completion: str,
    *,
    answer_format: AnswerFormat = "boxed",
    timeout: float = 5.0,
) -> bool | None:
    """Whether the completion's final answer equals `gold` (gold first); None if the gold is unusable.

    Whatever the gold and completion text, never raises and returns within about `timeout` seconds
    (plus one worker start on first use). A completion with no answer, an empty, unparseable or
    absurd one (refused by `ispo.answers.screen`, or too slow) is False; None means the GOLD is
    unusable (empty, oversized, unbalanced, absurd, or unparseable in time). `ispo.answers.extract`
    says which answer is read and `ispo.answers.grade` what counts as a match (the multi-part
    policy). Safe from any thread. Argument errors (unknown `answer_format`, non-positive `timeout`)
    raise ValueError.
    """
    return verify_batch([gold], [completion], answer_format=answer_format, timeout=timeout)[0]
