"""Tests for `ispo.verify`: (gold, completion, expected) tables grown from realistic cases."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ispo.verify import (
    Verifier,
    VerifyConfig,
    extract_answer,
    find_answer_span,
    verify_answer,
    verify_batch,
)

# (gold, completion, expected). Golds are written the way the benchmark files write them.
CASES = [
    # fractions
    (r"\frac{3}{4}", r"so the answer is $\boxed{\frac{3}{4}}$.", True),
    (r"\frac{3}{4}", r"\boxed{\dfrac{3}{4}}", True),
    (r"\frac{3}{4}", r"\boxed{3/4}", True),
    (r"\frac{3}{4}", r"\boxed{0.75}", True),
    (r"\frac{3}{4}", r"\boxed{\frac{4}{3}}", False),
    (r"\frac{1}{3}", r"\boxed{0.33}", False),
    (r"\frac{14}{15}", r"\boxed{\tfrac{14}{15}}", True),
    (r"\frac{3}{4}", r"\boxed{\frac34}", True),
    (r"-\frac{30}{17}", r"\boxed{\frac{-30}{17}}", True),
    (r"-\frac{30}{17}", r"\boxed{\frac{30}{17}}", False),
    (r"\frac{-1}{1997}", r"\boxed{-\frac{1}{1997}}", True),
    # decimals and scientific notation (Minerva)
    ("41.8", r"\boxed{41.8}", True),
    ("41.8", r"\boxed{41.80}", True),
    ("41.8", r"\boxed{41.9}", False),
    ("0.5", r"\boxed{\frac{1}{2}}", True),
    ("3.83e35", r"\boxed{3.83 \times 10^{35}}", True),
    ("3.83e35", r"\boxed{3.83e35}", True),
    ("3.83e35", r"\boxed{3.83 \times 10^{34}}", False),
    ("4.5e33", r"\boxed{4.5 \cdot 10^{33}}", True),
    ("1e-5", r"\boxed{10^{-5}}", True),
    ("2.7778e-6", r"\boxed{2.7778\times10^{-6}}", True),
    ("-1./3", r"\boxed{-\frac{1}{3}}", True),
    # Math-Verify rounds floats to 6 decimal places; small golds must still match relatively
    ("3.89e-10", r"\boxed{3.89 \times 10^{-10}}", True),
    ("3.89e-10", r"\boxed{0.0}", False),
    ("1e-8", r"\boxed{0.00000002}", False),
    ("1.45e-5", r"\boxed{0.0000145}", True),
    ("0.003", r"\boxed{0.0030001}", True),
    ("np.arcsin(10/13)", r"\boxed{\arcsin\left(\frac{10}{13}\right)}", True),
    ("np.arcsin(10/13)", r"\boxed{\arccos\left(\frac{10}{13}\right)}", False),
    ("np.sqrt(2)*np.pi", r"\boxed{\pi\sqrt{2}}", True),
    ("4.4e7", r"\boxed{4.4 \times 10^7}", True),
    ("1.70e4", r"\boxed{17000}", True),
    ("3e8", r"\boxed{3 \times 10^{8} \text{ m/s}}", True),
    # percentages
    (r"10\%", r"\boxed{10\%}", True),
    (r"10\%", r"\boxed{10}", True),
    (r"10\%", r"\boxed{20\%}", False),
    ("62.5%", r"\boxed{62.5\%}", True),
    (r"8 \%", r"\boxed{8\%}", True),
    # intervals
    (r"(-\infty, 2]", r"\boxed{(-\infty, 2]}", True),
    (r"(-\infty, 2]", r"\boxed{(-\infty, 2)}", False),
    (r"[\frac{1}{2}, 8]", r"\boxed{\left[\frac12, 8\right]}", True),
    (r"(-\infty, 0) \cup\{1\}.", r"\boxed{(-\infty,0)\cup\{1\}}", True),
    (r"(-\sqrt{11},-2)\cup (\sqrt{11},9)", r"\boxed{(-\sqrt{11},-2)\cup(\sqrt{11},9)}", True),
    (r"(-\infty, 2]", r"\boxed{x \in (-\infty, 2]}", True),
    ("t(0,4]", r"\boxed{(0,4]}", True),
    ("t(0,4]", r"\boxed{t \in (0, 4]}", True),
    ("t(0,4]", r"\boxed{(0,4)}", False),
    # tuples and points
    (r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{(3, \frac{\pi}{2})}", True),
    (r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{\left(3, \pi\right)}", False),
    ("(2,4)", r"\boxed{(2, 4)}", True),
    ("(2,4)", r"\boxed{(4, 2)}", False),
    ("(1,1), (3,2)", r"\boxed{(3,2),(1,1)}", True),
    ("(1,1), (3,2)", r"\boxed{(1,1)}", False),
    # degrees and units
    (r"5\text{ cm}", r"\boxed{5}", True),
    (r"5\text{ cm}", r"\boxed{5 \text{ cm}}", True),
    (r"45^{\circ}", r"\boxed{45}", True),
    (r"45^{\circ}", r"\boxed{45^\circ}", True),
    (r"45^{\circ}", r"\boxed{135^\circ}", False),
    ("18", r"\boxed{\$18}", True),
    ("18", r"\boxed{18 \text{ dollars}}", True),
    ("1.6", r"\boxed{1.6 \mathrm{~cm}}", True),
    # \text{} answers
    (r"\text{Evelyn}", r"\boxed{\text{Evelyn}}", True),
    (r"\text{Evelyn}", r"\boxed{\text{Bob}}", False),
    (r"\text{(C)}", r"\boxed{C}", True),
    (r"\text{(C)}", r"\boxed{\text{(D)}}", False),
    (r"\text{odd}", r"\boxed{odd}", True),
    ("MR=SRMC", r"\boxed{MR=SRMC}", True),
    # thousands separators
    ("58,500", r"\boxed{58500}", True),
    ("58500", r"\boxed{58,500}", True),
    (r"10,\!080", r"\boxed{10080}", True),
    ("1000", r"\boxed{1,000}", True),
    ("1000", r"\boxed{1{,}000}", True),
    ("1000", r"\boxed{1,001}", False),
    # negatives
    ("-84", r"\boxed{-84}", True),
    ("-84", r"\boxed{84}", False),
    ("+2", r"\boxed{2}", True),
    # roots and pi
    (r"2 \sqrt{2}", r"\boxed{\sqrt{8}}", True),
    (r"\frac{\sqrt{2}}{3}", r"\boxed{\frac{\sqrt2}{3}}", True),
    (r"5 \sqrt[3]{4}", r"\boxed{5\cdot 4^{1/3}}", True),
    (r"\sqrt{3}", r"\boxed{\sqrt{2}}", False),
    (r"\frac{3 \pi}{4}", r"\boxed{\frac{3\pi}{4}}", True),
    (r"2+\pi", r"\boxed{\pi + 2}", True),
    (r"548 \pi", r"\boxed{548}", False),
    # symbolic answers and equations
    ("2n-2", r"\boxed{2(n-1)}", True),
    (r"\frac{n(n+1)}{2}", r"\boxed{\frac{n^2+n}{2}}", True),
    (r"n^{2}+1", r"\boxed{n^2+2}", False),
    ("k=1", r"\boxed{k=1}", True),
    ("k=1", r"\boxed{1}", True),
    (r"f(x)=2 x", r"\boxed{f(x) = 2x}", True),
    (r"1+\sqrt{3} i", r"\boxed{1+i\sqrt{3}}", True),
    # multi-part golds (OlympiadBench joins answers with commas): unordered, all parts needed
    ("69,84", r"\boxed{69, 84}", True),
    ("69,84", r"\boxed{84, 69}", True),
    ("69,84", r"\boxed{69}, \boxed{84}", True),
    ("69,84", r"$\boxed{69}$ and $\boxed{84}$.", True),
    ("69,84", r"\boxed{(69, 84)}", True),
    ("69,84", r"\boxed{\{69, 84\}}", True),
    ("69,84", r"\boxed{69}", False),
    ("69,84", r"\boxed{69, 84, 85}", False),
    ("69,84", r"first \boxed{69}, so the second is \boxed{84}", False),
    ("1,3,5", r"\boxed{1, 3, 5}", True),
    ("2,3,4", r"\boxed{2}, \boxed{3} \text{ and } \boxed{4}", True),
    ("-2,0,2", r"\boxed{\pm 2, 0}", True),
    ("1.68,0.45", r"\boxed{1.68, 0.45}", True),
    (r"f(x)=a x+b, where b is an arbitrary integer", r"\boxed{f(x) = ax + b}", True),
    (r"f(x)=a x+b, where b is an arbitrary integer", r"\boxed{0}", False),
    (r"\frac{32}{9},\frac{1}{2}", r"\boxed{\frac{1}{2}, \frac{32}{9}}", True),
    ("84", r"\boxed{69}, \boxed{84}", False),
    ("2", r"\boxed{2} or \boxed{3}", False),
    ("2,3", r"$x = \boxed{2}$ or $x = \boxed{3}$", False),
    ("2,3", r"\boxed{x=2 \text{ or } x=3}", True),
    # which box counts, missing and empty answers
    ("5", r"\boxed{6} wait, no: \boxed{5}", True),
    ("5", r"\boxed{5} wait, no: \boxed{6}", False),
    ("5", "The answer is 5.", False),
    ("5", r"\boxed{}", False),
    ("5", r"\boxed{5} and then \boxed{}", False),
    ("5", r"\boxed{5", False),
    ("5", "", False),
    ("5", r"\boxed 5.", True),
    ("5", r"\fbox{5}", True),
    (r"\frac{1}{2}", r"\boxed{\boxed{\frac{1}{2}}}", True),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", True),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\boxed{\begin{pmatrix} 1 \\ 3 \end{pmatrix}}", False),
    ("33", r"\boxed{033}", True),
    ("2", r"\boxed{x=2}", True),
    (r"x^2+7x+10", r"\boxed{(x+2)(x+5)}", True),
]

# answer_format="answer_tag"
TAG_CASES = [
    ("5", "<think>2+3</think><answer>5</answer>", True),
    ("5", "<answer>\n5\n</answer>", True),
    ("5", r"<answer>\boxed{5}</answer>", True),
    (r"\frac{1}{2}", r"<answer>$\frac{1}{2}$</answer>", True),
    (r"\frac{1}{2}", "<answer>1/2</answer>", True),
    ("5", "<answer>6</answer>", False),
    ("5", "<answer>6</answer> actually <answer>5</answer>", True),
    ("5", "<answer>5", False),
    ("5", "<answer></answer>", False),
    ("5", r"\boxed{5}", False),
]

# Golds that carry no signal: None, never a fake False.
UNPARSEABLE_GOLDS = ["", "   \n", "x" * 5_000, r"2^{2^{2^{2^{2}}}}", r"\frac{3}{", "}"]

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


@pytest.fixture(scope="module")
def warm():
    """Start the shared workers once, so no test's time bound includes a worker start."""
    golds = [str(n) for n in range(128)]
    assert verify_batch(golds, [rf"\boxed{{{gold}}}" for gold in golds]) == [True] * 128


@pytest.mark.parametrize(("gold", "completion", "expected"), CASES)
def test_verify_answer_table(gold, completion, expected, warm):
    assert verify_answer(gold, completion) is expected


def test_verify_batch_matches_table(warm):
    golds, completions, expected = zip(*CASES)
    assert verify_batch(golds, completions) == list(expected)


@pytest.mark.parametrize(("gold", "completion", "expected"), TAG_CASES)
def test_answer_tag_table(gold, completion, expected, warm):
    assert verify_answer(gold, completion, answer_format="answer_tag") is expected


@pytest.mark.parametrize("gold", UNPARSEABLE_GOLDS, ids=["empty", "blank", "long", "tower", "unclosed", "stray"])
def test_unparseable_gold_is_none(gold, warm):
    assert verify_answer(gold, r"\boxed{5}") is None
    assert verify_answer(gold, "no answer here") is None


def test_non_string_inputs_do_not_raise(warm):
    assert verify_batch([None, "5"], [r"\boxed{5}", None]) == [None, False]  # type: ignore[list-item]


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        verify_batch(["1", "2"], [r"\boxed{1}"])
    with pytest.raises(ValueError):
        verify_answer("1", r"\boxed{1}", answer_format="latex")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        verify_answer("1", r"\boxed{1}", timeout=0)


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
        batches = list(executor.map(lambda _: verify_batch(*zip(*[row[:2] for row in CASES])), range(4)))
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


# --------------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------------

# (completion, answer_format, expected extract_answer)
EXTRACT_CASES = [
    (r"so \boxed{5}.", "boxed", "5"),
    (r"\boxed{\frac{1}{2}}", "boxed", r"\frac{1}{2}"),
    (r"\boxed{\left\{1,2\right\}}", "boxed", r"\left\{1,2\right\}"),
    (r"\boxed{\{1, 2\}}", "boxed", r"\{1, 2\}"),
    (r"first \boxed{1} then \boxed{2}", "boxed", "2"),
    (r"\boxed{ 7 }", "boxed", "7"),
    (r"\boxed {7}", "boxed", "7"),
    (r"\fbox{7}", "boxed", "7"),
    (r"\boxed 7.", "boxed", "7"),
    (r"$\boxed 3.5$", "boxed", "3.5"),
    (r"\boxed{2} and a truncated \boxed{\frac{1}{", "boxed", "2"),
    (r"\boxed{}", "boxed", None),
    (r"\boxed{3} \boxed{ }", "boxed", None),
    ("no answer", "boxed", None),
    ("", "boxed", None),
    (r"\boxed{\text{a}\\{b}}", "boxed", r"\text{a}\\{b}"),
    ("<answer>42</answer>", "answer_tag", "42"),
    ("<answer>\n 42 \n</answer>", "answer_tag", "42"),
    ("<answer>1</answer><answer>2</answer>", "answer_tag", "2"),
    ("<answer>1</answer><answer>2", "answer_tag", "1"),
    ("<answer> </answer>", "answer_tag", None),
    (r"\boxed{3}", "answer_tag", None),
]


@pytest.mark.parametrize(("completion", "answer_format", "expected"), EXTRACT_CASES)
def test_extract_answer(completion, answer_format, expected):
    assert extract_answer(completion, answer_format) == expected


@pytest.mark.parametrize(("completion", "answer_format", "expected"), EXTRACT_CASES)
def test_find_answer_span_agrees_with_extract(completion, answer_format, expected):
    span = find_answer_span(completion, answer_format)
    if expected is None:
        assert span is None
        return
    marker_start, answer_start, answer_end = span
    assert completion[answer_start:answer_end] == expected
    marker = completion[marker_start:answer_start].strip()
    assert marker in {r"\boxed{", r"\boxed {", r"\fbox{", r"\boxed", "<answer>"}


# (completion, answer_format, (marker, answer))
SPAN_CASES = [
    (r"x \boxed{\frac{1}{2}} y", "boxed", (r"\boxed{", r"\frac{1}{2}")),
    (r"\boxed{1} \boxed{22}", "boxed", (r"\boxed{", "22")),
    ("t <answer>\n9</answer>", "answer_tag", ("<answer>\n", "9")),
]


@pytest.mark.parametrize(("completion", "answer_format", "expected"), SPAN_CASES)
def test_find_answer_span_offsets(completion, answer_format, expected):
    marker_start, answer_start, answer_end = find_answer_span(completion, answer_format)
    assert (completion[marker_start:answer_start], completion[answer_start:answer_end]) == expected
    assert completion.rfind(expected[0]) == marker_start


def test_find_answer_span_offsets_in_long_completion():
    completion = "a" * 200_000 + r"\boxed{12}" + "b" * 10
    marker_start, answer_start, answer_end = find_answer_span(completion)
    assert (marker_start, answer_start, answer_end) == (200_000, 200_007, 200_009)


# --------------------------------------------------------------------------------------------------
# benchmark round trip: every gold, boxed, must verify against itself
# --------------------------------------------------------------------------------------------------


def _data_dir() -> Path:
    """`ISPO_DATA_DIR`, else the `shared/data` folder beside the repository checkout."""
    if "ISPO_DATA_DIR" in os.environ:
        return Path(os.environ["ISPO_DATA_DIR"])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


_BENCHMARKS = sorted((_data_dir() / "benchmarks").glob("*.jsonl"))


@pytest.mark.data
@pytest.mark.parametrize("path", _BENCHMARKS or [None], ids=[p.stem for p in _BENCHMARKS] or ["absent"])
def test_benchmark_golds_round_trip(path, warm):
    if path is None:
        pytest.skip(f"no benchmark data under {_data_dir()}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    golds = [row["answer"] for row in rows]
    completions = [f"Let me work it out.\n... so the answer is $\\boxed{{{gold}}}$." for gold in golds]
    start = time.monotonic()
    results = verify_batch(golds, completions)
    elapsed = time.monotonic() - start
    misses = [(row["id"], row["answer"], got) for row, got in zip(rows, results) if got is not True]
    rate = 1 - len(misses) / len(rows)
    verified = len(rows) - len(misses)
    print(f"{path.stem}: {verified}/{len(rows)} = {rate:.2%} in {elapsed:.1f}s; misses: {misses}")
    assert rate >= 0.99, misses
