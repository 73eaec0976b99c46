"""Seeded multi-step arithmetic problems with step-by-step solutions, for the offline demo.

A problem is a chain of additions and subtractions, ``Q: 17+5-3+8``; its solution works it out one
step per line and ends the way real math rollouts end::

    17+5=22
    22-3=19
    19+8=27
    \\boxed{27}

Difficulty grows with the number of steps and the size of the operands (``DIFFICULTIES``). The
split is a pure function of the problem's text (a stable hash, ``split_of``): 90% ``train``, and the
held-out 10% divided once, by another bit of the same hash, into ``dev`` (selection: choosing methods
and settings) and ``test`` (confirmation only), about half each. The three are disjoint whatever the
seeds and sizes asked for; ``"heldout"`` names ``dev`` and ``test`` together.

``solution_text(..., error_rate=p)`` writes *deliberately imperfect* solutions for the warm start:
each step's result is wrong with probability ``p`` (off by one or two, or a dropped/extra carry), and
later steps carry on from the wrong value, as a careless solver would. A model fitted to such
solutions is right on a step with probability about ``1 - p``, so its accuracy falls with the number
of steps: easy prompts are often solved, hard ones almost never, which is what makes GRPO's
Zero-Advantage Collapse visible on a laptop.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal, get_args

# the held-out splits: dev for selecting methods and settings, test for confirmation only (docs/study.md)
HeldoutSplit = Literal["dev", "test"]
HELDOUT_SPLITS: tuple[str, ...] = get_args(HeldoutSplit)
Split = Literal["train", HeldoutSplit]
# what generate_problems accepts: a split, or "heldout" = dev and test together
SplitName = Literal[Split, "heldout"]
SPLIT_NAMES: tuple[str, ...] = get_args(SplitName)
# the difficulty levels of every task (each task's DIFFICULTIES has these keys, in this order)
DifficultyName = Literal["easy", "medium", "hard"]
DIFFICULTY_NAMES: tuple[str, ...] = get_args(DifficultyName)

# Every character the prompts and solutions use; the demo's tokenizer is built over exactly these.
CHARACTERS = "0123456789+-=\n :Q\\boxed{}"
HELDOUT_FRACTION = 0.1
# Offsets a careless solver adds to a step's result: off by one or two, a dropped or extra carry.
ERROR_OFFSETS = (-10, -2, -1, 1, 2, 10)


@dataclass(frozen=True)
class DifficultySpec:
    """Ranges (inclusive) that define one difficulty level."""

    num_steps: tuple[int, int]
    start: tuple[int, int]
    operand: tuple[int, int]
    max_value: int  # true intermediate values stay in [0, max_value]


DIFFICULTIES: dict[str, DifficultySpec] = {
    "easy": DifficultySpec(num_steps=(2, 2), start=(1, 19), operand=(1, 9), max_value=30),
    "medium": DifficultySpec(num_steps=(4, 4), start=(10, 49), operand=(1, 9), max_value=99),
    "hard": DifficultySpec(num_steps=(8, 8), start=(10, 99), operand=(5, 29), max_value=99),
}


@dataclass(frozen=True)
class ArithmeticProblem:
    """One chain ``start op1 op2 ...``; ``operands`` are signed (``-3`` means subtract 3)."""

    start: int
    operands: tuple[int, ...]
    difficulty: str

    @property
    def expression(self) -> str:
        return str(self.start) + "".join(f"{op:+d}" for op in self.operands)

    @property
    def prompt(self) -> str:
        """The text the model is conditioned on (a plain prompt, no chat template)."""
        return f"Q: {self.expression}\n"

    @property
    def answer(self) -> int:
        return self.start + sum(self.operands)

    @property
    def split(self) -> Split:
        return split_of(self.expression)


def split_of(expression: str) -> Split:
    """Which split a problem belongs to: a stable hash of its text, independent of any seed.

    The first 8 bytes of sha256(expression), read as a fraction of 2**64, put 10% in held-out (the rule
    the cached warm starts were trained under, so train membership must never change); the lowest bit
    of byte 8, independent of those, divides held-out into ``dev`` (0) and ``test`` (1).
    """
    digest = hashlib.sha256(expression.encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= HELDOUT_FRACTION:
        return "train"
    return "test" if digest[8] & 1 else "dev"


def in_split(split: str, name: str) -> bool:
    """Whether a problem of split ``split`` belongs to ``name`` (a split, or "heldout" = dev and test)."""
    return split == name or (name == "heldout" and split in HELDOUT_SPLITS)


def sample_problem(rng: random.Random, difficulty: str) -> ArithmeticProblem:
    """Draw one problem of ``difficulty``; true intermediate values stay in ``[0, max_value]``."""
    spec = DIFFICULTIES[difficulty]
    value = rng.randint(*spec.start)
    start = value
    operands = []
    for _ in range(rng.randint(*spec.num_steps)):
        magnitude = rng.randint(*spec.operand)
        can_add = value + magnitude <= spec.max_value
        can_sub = value - magnitude >= 0
        if can_add and can_sub:
            sign = rng.choice((1, -1))
        elif can_add or can_sub:
            sign = 1 if can_add else -1
        else:  # operand larger than the room on both sides: shrink it
            magnitude = min(magnitude, spec.max_value - value)
            sign = 1
        operands.append(sign * magnitude)
        value += sign * magnitude
    return ArithmeticProblem(start=start, operands=tuple(operands), difficulty=difficulty)


def generate_problems(n: int, difficulty: str, *, split: SplitName = "train", seed: int = 0) -> list[ArithmeticProblem]:
    """``n`` distinct problems of one difficulty from one split (or "heldout": dev and test), determined by ``seed``."""
    return draw_distinct_problems(sample_problem, DIFFICULTIES, "ispo-synthetic", n, difficulty, split=split, seed=seed)


def generate_mixture(
    n_per_difficulty: int | dict[str, int], *, split: SplitName = "train", seed: int = 0
) -> list[ArithmeticProblem]:
    """Problems of every difficulty, interleaved (easy, medium, hard, easy, ...), deterministic."""
    return interleave_difficulties(generate_problems, DIFFICULTIES, n_per_difficulty, split=split, seed=seed)


def draw_distinct_problems(sample, difficulties, namespace: str, n: int, difficulty: str, *, split: str, seed: int):
    """``n`` distinct problems drawn with ``sample(rng, difficulty)`` until ``n`` fall in ``split``.

    Shared by every task: the random stream is named ``namespace/seed/difficulty/split``, so a task's
    problems depend on nothing else.
    """
    if difficulty not in difficulties:
        raise ValueError(f"difficulty must be one of {sorted(difficulties)}, got {difficulty!r}")
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    rng = random.Random(f"{namespace}/{seed}/{difficulty}/{split}")
    problems = []
    seen: set[str] = set()
    misses = 0  # draws in a row that brought nothing new: the split is (nearly) exhausted
    while len(problems) < n:
        problem = sample(rng, difficulty)
        if not in_split(problem.split, split) or problem.expression in seen:
            misses += 1
            if misses > 20_000:
                raise ValueError(
                    f"could not find {n} distinct {difficulty} problems in the {split} split (found {len(problems)})"
                )
            continue
        misses = 0
        seen.add(problem.expression)
        problems.append(problem)
    return problems


def interleave_difficulties(generate, difficulties, n_per_difficulty: int | dict[str, int], *, split: str, seed: int):
    """``generate(n, level, split=, seed=)`` for every level, interleaved (easy, medium, hard, easy, ...)."""
    counts = (
        dict(n_per_difficulty)
        if isinstance(n_per_difficulty, dict)
        else {name: n_per_difficulty for name in difficulties}
    )
    per_level = [generate(counts[name], name, split=split, seed=seed) for name in counts]
    mixed = []
    for i in range(max(counts.values(), default=0)):
        mixed.extend(level[i] for level in per_level if i < len(level))
    return mixed


def solution_text(problem: ArithmeticProblem, *, error_rate: float = 0.0, rng: random.Random | None = None) -> str:
    """The step-by-step solution; with ``error_rate > 0`` each step's result is wrong with that probability.

    A wrong step's value is carried into the next step, so the boxed answer is the (wrong) running
    value, as in a real careless solution. Needs ``rng`` when ``error_rate > 0``.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    if error_rate > 0 and rng is None:
        raise ValueError("error_rate > 0 needs an rng")
    value = problem.start
    lines = []
    for op in problem.operands:
        result = value + op
        if error_rate > 0 and rng.random() < error_rate:
            result += rng.choice(ERROR_OFFSETS)
        lines.append(f"{value}{op:+d}={result}")
        value = result
    lines.append(f"\\boxed{{{value}}}")
    return "\n".join(lines)


def to_records(problems: list[ArithmeticProblem]) -> list[dict]:
    """Rows for a TRL dataset: ``prompt`` (plain text), ``answer`` (gold, as text) and ``difficulty``."""
    return [{"prompt": p.prompt, "answer": str(p.answer), "difficulty": p.difficulty} for p in problems]
