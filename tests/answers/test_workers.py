"""`ispo.answers.workers`: grading in persistent worker processes, bounded in time, safe from threads."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_grade import CASES

from ispo.answers import Verifier, VerifyConfig, verify_answer, verify_batch
from ispo.answers import workers as workers_module

# Absurd answers: each must come back False within the per-pair timeout (plus the kill grace).
HOSTILE = {
    "exponent tower": r"\boxed{2^{2^{2^{2^{2}}}}}",
    "numeric tower": r"\boxed{9^{9^{9}}}",
    "python tower": r"\boxed{9**9**9}",
    "large factorial": r"\boxed{10000!}",
    "huge exponent": r"\boxed{2^{123456789}}",
    "deep parentheses": r"\boxed{" + "(" * 500 + "1" + ")" * 500 + "}",
    "deep braces": r"\boxed{" + "{" * 500 + "1" + "}" * 500 + "}",
    "long answer": r"\boxed{" + "1+" * 5_000 + "1}",
    "unclosed boxes": r"\boxed{" * 100_000,
    "braced tower": r"\boxed{{10}^{{10}^{8}}}",  # passes the screens: the worker deadline stops it
    "factorial of power": r"\boxed{(10^{9})!}",
    "nested fractions": r"\boxed{" + r"\frac{1}{" * 30 + "2" + "}" * 30 + "}",
    "big sum": r"\boxed{\sum_{k=1}^{9999} k^{k}}",
    "control characters": "\x00\\boxed{\x00\x1b[2J}",
    "lone backslashes": "\\boxed{\\}",
}

HOSTILE_TIMEOUT = 2.0
HOSTILE_MARGIN = VerifyConfig().kill_grace + 1.5


def test_worker_command_names_this_module():
    """The child process imports the entry point by module path: it must be this module's."""
    assert f"from {workers_module.__name__} import {workers_module.worker_main.__name__}" in (
        workers_module._WORKER_COMMAND
    )


def test_non_string_inputs_do_not_raise(warm):
    assert verify_batch([None, "5"], [r"\boxed{5}", None]) == [None, False]  # type: ignore[list-item]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="2 golds but 1 completions"):
        verify_batch(["1", "2"], [r"\boxed{1}"])
    with pytest.raises(ValueError, match="answer_format"):
        verify_answer("1", r"\boxed{1}", answer_format="latex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        verify_answer("1", r"\boxed{1}", timeout=0)
    with pytest.raises(ValueError, match="max_workers"):
        Verifier(max_workers=0)


@pytest.mark.parametrize("completion", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_answer_is_false_and_bounded(completion, warm):
    start = time.monotonic()
    assert verify_answer("5", completion, timeout=HOSTILE_TIMEOUT) is False
    assert time.monotonic() - start < HOSTILE_TIMEOUT + HOSTILE_MARGIN


def test_hostile_pairs_do_not_disturb_their_batch(warm):
    golds = ["5", "7", "5", "7"]
    completions = [HOSTILE["braced tower"], r"\boxed{7}", HOSTILE["nested fractions"], r"\boxed{7}"]
    assert verify_batch(golds, completions, timeout=HOSTILE_TIMEOUT) == [False, True, False, True]


def test_long_completion_is_graded_by_its_tail(warm):
    completion = "blah " * 400_000 + r"\boxed{3}" + " The end." * 100
    start = time.monotonic()
    assert verify_answer("3", completion) is True
    assert time.monotonic() - start < 2.0


def test_threads_share_the_workers(warm):
    """Grading off the main thread must work (Math-Verify's own alarm-based timeouts do not)."""
    rows = CASES * 2
    with ThreadPoolExecutor(max_workers=8) as executor:
        got = list(executor.map(lambda row: verify_answer(row[0], row[1]), rows))
        batches = list(executor.map(lambda _: verify_batch(*zip(*[row[:2] for row in CASES], strict=True)), range(4)))
    assert got == [row[2] for row in rows]
    assert all(batch == [row[2] for row in CASES] for batch in batches)


def test_hung_worker_is_killed_and_replaced():
    """A worker stuck where its own timer cannot fire (C code) is killed by the parent."""
    with Verifier(max_workers=1) as verifier:
        assert verifier.verify_batch(["2"], [r"\boxed{2}"]) == [True]
        process = verifier._slots[0].process
        os.kill(process.pid, signal.SIGSTOP)  # stands in for a hang inside a C extension
        start = time.monotonic()
        outcomes = verifier.verify_batch(["2", "3"], [r"\boxed{2}", r"\boxed{3}"], timeout=1.0)
        assert outcomes == [False, True]
        assert time.monotonic() - start < 1.0 + verifier.config.kill_grace + 15.0  # + one worker start
        assert process.poll() is not None  # the stopped worker is gone
        assert verifier._slots[0].process.pid != process.pid


def test_dead_worker_is_restarted():
    with Verifier(max_workers=1) as verifier:
        assert verifier.verify_batch(["2"], [r"\boxed{2}"]) == [True]
        verifier._slots[0].process.kill()
        verifier._slots[0].process.wait()
        assert verifier.verify_batch(["2"], [r"\boxed{2}"]) == [True]


def test_close_stops_workers_and_reuse_restarts():
    verifier = Verifier(max_workers=2)
    golds = [str(n) for n in range(200)]  # golds are spread over both workers
    assert verifier.verify_batch(golds, [rf"\boxed{{{gold}}}" for gold in golds]) == [True] * 200
    processes = [slot.process for slot in verifier._slots if slot.process is not None]
    assert len(processes) == 2
    verifier.close()
    assert all(process.poll() is not None for process in processes)
    assert verifier.verify_batch(["1"], [r"\boxed{1}"]) == [True]
    verifier.close()
