"""Seeded multi-step problems whose every step is a decision, with step-by-step solutions (task ``branching``).

A problem is a start value and a chain of rules, each applied to the running value ``v``:

- a parity rule ``e?/2:+k``: if ``v`` is even, halve it, otherwise add ``k``;
- a threshold rule ``>t?-a:+b``: if ``v > t``, subtract ``a``, otherwise add ``b``.

``Q: 14; e?/2:+3; >5?-4:+9`` is solved one step per line, the decision written as one character
right after the value (``e`` even / ``o`` odd, ``y`` / ``n`` for "is v > t"), then the branch taken,
ending the way real math rollouts end::

    14e/2=7
    7>5y-4=3
    \\boxed{3}

So a solution has two kinds of places where it can go wrong: the decision character (a forking
token: after it, the branch's arithmetic is copied from the prompt) and the arithmetic of the step.
Difficulty grows with the number of steps and the size of the values and operands
(``DIFFICULTIES``). The split is the arithmetic task's rule (``ispo.data.synthetic.split_of``, a
stable hash of the problem's text): 90% ``train``, the held-out 10% divided into ``dev`` (selection)
and ``test`` (confirmation), ``"heldout"`` naming the two together; the splits are disjoint whatever
the seeds and sizes asked for, and both tasks split the same way.

``solution_text(..., error_rate=p)`` writes *deliberately imperfect* solutions for the warm start:
each step is wrong with probability ``p``; a wrong step is, with probability ``decision_share``
(``DECISION_ERROR_SHARE``), a wrong decision (the branch not taken, computed correctly: halving an odd
value rounds down) and otherwise an arithmetic slip (the right branch, a result off by one or two or a
lost/extra carry). Later steps carry on from the wrong value, decisions included, as a careless
solver would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ispo.data.synthetic import Split, SplitName, draw_distinct_problems, interleave_difficulties, split_of

__all__ = [
    "CHARACTERS",
    "DECISION_ERROR_SHARE",
    "DIFFICULTIES",
    "ERROR_OFFSETS",
    "BranchingDifficultySpec",
    "ParityRule",
    "BranchingProblem",
    "ThresholdRule",
    "generate_mixture",
    "generate_problems",
    "sample_problem",
    "solution_text",
    "split_of",
    "to_records",
]

# Every character the prompts and solutions use; the demo's tokenizer is built over exactly these.
CHARACTERS = "0123456789+-/=\n :;?>Qeonyb\\xd{}"
# Offsets of an arithmetic slip: off by one or two, a dropped or extra carry (as in the arithmetic task).
ERROR_OFFSETS = (-10, -2, -1, 1, 2, 10)
# Share of the wrong steps that are wrong decisions (the rest are arithmetic slips).
DECISION_ERROR_SHARE = 0.5


@dataclass(frozen=True)
class ParityRule:
    """If the running value is even, halve it; otherwise add ``add``."""

    add: int

    @property
    def text(self) -> str:
        return f"e?/2:+{self.add}"

    def decide(self, value: int) -> bool:
        """True when the first branch (halve) applies."""
        return value % 2 == 0

    def line(self, value: int, first_branch: bool, result: int) -> str:
        decision, operation = ("e", "/2") if first_branch else ("o", f"+{self.add}")
        return f"{value}{decision}{operation}={result}"

    def apply(self, value: int, first_branch: bool) -> int:
        # halving an odd value (only after a wrong decision) rounds down, as a careless solver would
        return value // 2 if first_branch else value + self.add


@dataclass(frozen=True)
class ThresholdRule:
    """If the running value is above ``threshold``, subtract ``subtract``; otherwise add ``add``."""

    threshold: int
    subtract: int
    add: int

    @property
    def text(self) -> str:
        return f">{self.threshold}?-{self.subtract}:+{self.add}"

    def decide(self, value: int) -> bool:
        """True when the first branch (subtract) applies."""
        return value > self.threshold

    def line(self, value: int, first_branch: bool, result: int) -> str:
        decision, operation = ("y", f"-{self.subtract}") if first_branch else ("n", f"+{self.add}")
        return f"{value}>{self.threshold}{decision}{operation}={result}"

    def apply(self, value: int, first_branch: bool) -> int:
        return value - self.subtract if first_branch else value + self.add


Rule = ParityRule | ThresholdRule


@dataclass(frozen=True)
class BranchingDifficultySpec:
    """Ranges (inclusive) that define one difficulty level."""

    num_steps: tuple[int, int]
    start: tuple[int, int]
    operand: tuple[int, int]  # k, a and b of the rules
    threshold_gap: int  # a threshold lies 1..threshold_gap above or below the running value
    max_value: int  # true running values stay in [1, max_value]


DIFFICULTIES: dict[str, BranchingDifficultySpec] = {
    "easy": BranchingDifficultySpec(num_steps=(2, 2), start=(1, 19), operand=(1, 9), threshold_gap=9, max_value=30),
    "medium": BranchingDifficultySpec(num_steps=(4, 4), start=(10, 49), operand=(1, 9), threshold_gap=9, max_value=99),
    "hard": BranchingDifficultySpec(num_steps=(6, 6), start=(10, 99), operand=(5, 29), threshold_gap=5, max_value=99),
}


@dataclass(frozen=True)
class BranchingProblem:
    """A start value and the rules applied to it in order."""

    start: int
    rules: tuple[Rule, ...]
    difficulty: str

    @property
    def expression(self) -> str:
        """The problem's text (what the split hashes): ``14; e?/2:+3; >5?-4:+9``."""
        return "; ".join([str(self.start)] + [rule.text for rule in self.rules])

    @property
    def prompt(self) -> str:
        """The text the model is conditioned on (a plain prompt, no chat template)."""
        return f"Q: {self.expression}\n"

    @property
    def values(self) -> list[int]:
        """The true running values: the start, then the value after each step."""
        values = [self.start]
        for rule in self.rules:
            values.append(rule.apply(values[-1], rule.decide(values[-1])))
        return values

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def split(self) -> Split:
        return split_of(self.expression)


def _sample_rule(rng: random.Random, value: int, spec: BranchingDifficultySpec) -> Rule:
    """One rule for the running value ``value``; the branch it takes keeps the value in ``[1, max_value]``.

    Operands of the branch taken are drawn uniformly from the part of the level's range that stays in
    bounds (never clamped onto the bound, which would make some answers far likelier than others).
    """
    low, high = spec.operand
    room_above = spec.max_value - value
    can_add, can_subtract = room_above >= low, value - low >= 1
    if rng.random() < 0.5 and (value % 2 == 0 or can_add):
        return ParityRule(add=rng.randint(low, high if value % 2 == 0 else min(high, room_above)))
    # the value lies above or below the threshold with equal chance, so the decision cannot be guessed
    above = rng.random() < 0.5
    if not (can_add and can_subtract):
        above = can_subtract
    gap = rng.randint(1, spec.threshold_gap)
    threshold = max(value - gap, 0) if above else min(value + gap, spec.max_value)
    subtract = rng.randint(low, min(high, value - 1) if above else high)
    add = rng.randint(low, high if above else min(high, room_above))
    return ThresholdRule(threshold=threshold, subtract=subtract, add=add)


def sample_problem(rng: random.Random, difficulty: str) -> BranchingProblem:
    """Draw one problem of ``difficulty``; true running values stay in ``[1, max_value]``."""
    spec = DIFFICULTIES[difficulty]
    start = value = rng.randint(*spec.start)
    rules = []
    for _ in range(rng.randint(*spec.num_steps)):
        rule = _sample_rule(rng, value, spec)
        value = rule.apply(value, rule.decide(value))
        rules.append(rule)
    return BranchingProblem(start=start, rules=tuple(rules), difficulty=difficulty)


def generate_problems(n: int, difficulty: str, *, split: SplitName = "train", seed: int = 0) -> list[BranchingProblem]:
    """``n`` distinct problems of one difficulty from one split (or "heldout": dev and test), determined by ``seed``."""
    return draw_distinct_problems(sample_problem, DIFFICULTIES, "ispo-branching", n, difficulty, split=split, seed=seed)


def generate_mixture(
    n_per_difficulty: int | dict[str, int], *, split: SplitName = "train", seed: int = 0
) -> list[BranchingProblem]:
    """Problems of every difficulty, interleaved (easy, medium, hard, easy, ...), deterministic."""
    return interleave_difficulties(generate_problems, DIFFICULTIES, n_per_difficulty, split=split, seed=seed)


def solution_text(
    problem: BranchingProblem,
    *,
    error_rate: float = 0.0,
    rng: random.Random | None = None,
    decision_share: float = DECISION_ERROR_SHARE,
) -> str:
    """The step-by-step solution; with ``error_rate > 0`` each step is wrong with that probability.

    A wrong step is a wrong decision with probability ``decision_share``, else an arithmetic slip.
    Its value is carried into the next step (whose decision is then taken on the wrong value), so the
    boxed answer is the (wrong) running value, as in a real careless solution. Needs ``rng`` when
    ``error_rate > 0``.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    if not 0.0 <= decision_share <= 1.0:
        raise ValueError(f"decision_share must be in [0, 1], got {decision_share}")
    if error_rate > 0 and rng is None:
        raise ValueError("error_rate > 0 needs an rng")
    value = problem.start
    lines = []
    for rule in problem.rules:
        first_branch = rule.decide(value)
        slip = 0
        if error_rate > 0 and rng.random() < error_rate:
            if rng.random() < decision_share:
                first_branch = not first_branch
            else:
                slip = rng.choice(ERROR_OFFSETS)
        result = rule.apply(value, first_branch) + slip
        lines.append(rule.line(value, first_branch, result))
        value = result
    lines.append(f"\\boxed{{{value}}}")
    return "\n".join(lines)


def to_records(problems: list[BranchingProblem]) -> list[dict]:
    """Rows for a TRL dataset: ``prompt`` (plain text), ``answer`` (gold, as text) and ``difficulty``."""
    return [{"prompt": p.prompt, "answer": str(p.answer), "difficulty": p.difficulty} for p in problems]
