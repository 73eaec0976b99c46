"""Arithmetic word problems in natural language, for a real chat model (``--task word_problems``).

A problem is a short story of 1 to 3 additions and subtractions of small whole numbers::

    Ben has 7 marbles. Ben buys 5 more marbles. Then Ben gives 3 marbles to Sara.
    How many marbles does Ben have now?

The prompt is a chat (a list of ``{"role", "content"}`` messages, TRL's conversational format, rendered
by the model's own chat template): a system message with the instruction, then one worked example (a
fixed two-step problem, solved one sentence per line and ending in ``The answer is \\boxed{8}.``), then the
problem. The example is what teaches a small instruct model the answer format the strict grader reads
(``\\boxed{}``, ``ispo.answers``); the reward is not loosened. docs/study.md ("Real-model testbed
(SmolLM2-135M-Instruct): calibration") records how the prompt and the levels were chosen.

Levels (``DIFFICULTIES``): easy = 1 step, medium = 2 steps, hard = 3 steps; every true intermediate
value stays in ``[0, 20]``. The split discipline is the synthetic tasks': a stable
hash of the problem's text (``ispo.data.synthetic.split_of``) puts 90% in ``train`` and divides the
held-out 10% into ``dev`` and ``test``; the problems are generated here, from no benchmark or test set.

A chat task has no ``CHARACTERS`` and no ``solution_text``: it is for a pretrained model with its own
tokenizer and needs no warm start (``CHAT = True``; ``ispo.data.tasks``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ispo.data.synthetic import (
    DifficultySpec,
    SplitName,
    draw_distinct_problems,
    interleave_difficulties,
    split_of,
)

CHAT = True  # prompts are chat messages for a pretrained model's template; no warm start

SYSTEM_PROMPT = (
    "You are a careful math tutor. Solve the problem step by step, one short line per step, "
    "and end with the final answer in the form: The answer is \\boxed{N}."
)
# the one-shot worked example (a name and an item the generator never uses, so it is no problem of any split)
EXAMPLE_QUESTION = (
    "Lena has 6 pencils. Lena buys 5 more pencils. Then Lena gives 3 pencils to Omar. "
    "How many pencils does Lena have now?"
)
# one line per sentence of the story, restating it and its equation: the pattern the model copies best
EXAMPLE_SOLUTION = (
    "Lena has 6 pencils.\nLena buys 5 more pencils, so 6 + 5 = 11.\nLena gives 3 pencils to Omar, so 11 - 3 = 8.\n"
    "The answer is \\boxed{8}."
)

NAMES = (
    "Tom", "Anna", "Ben", "Sara", "Max", "Emma", "Leo", "Mia", "Sam", "Lily",
    "Jack", "Nora", "Dan", "Zoe", "Alex", "Ella", "Noah", "Ruby", "Finn", "Kate",
)  # fmt: skip
ITEMS = ("apples", "marbles", "stickers", "books", "cookies", "cards", "shells", "coins", "balloons", "stamps")
# {n} the acting name, {k} the amount, {item}, {other} another name. Only the verbs of the worked example
# ("buys/gets ... more" adds, "gives" subtracts): with "sells", "loses" or "finds" the model confused the
# operations far more often (docs/study.md)
ADD_STEPS = ("{n} buys {k} more {item}.", "{n} gets {k} more {item}.")
SUB_STEPS = ("{n} gives {k} {item} to {other}.", "{n} gives away {k} {item}.")


# small numbers (values up to 20): the model's arithmetic, not only its reading, fails on larger ones
DIFFICULTIES: dict[str, DifficultySpec] = {
    "easy": DifficultySpec(num_steps=(1, 1), start=(2, 12), operand=(2, 6), max_value=20),
    "medium": DifficultySpec(num_steps=(2, 2), start=(2, 12), operand=(2, 6), max_value=20),
    "hard": DifficultySpec(num_steps=(3, 3), start=(2, 12), operand=(2, 6), max_value=20),
}


@dataclass(frozen=True)
class WordProblem:
    """One story: ``name`` starts with ``start`` ``item`` and ``operands`` are its signed steps."""

    name: str
    item: str
    start: int
    operands: tuple[int, ...]
    sentences: tuple[str, ...]  # one per step, already filled in
    difficulty: str

    @property
    def question(self) -> str:
        """The problem in words (its identity: the split and distinctness are decided on it)."""
        story = " ".join(
            [f"{self.name} has {self.start} {self.item}.", self.sentences[0]]
            + [f"Then {sentence}" for sentence in self.sentences[1:]]
        )
        return f"{story} How many {self.item} does {self.name} have now?"

    @property
    def expression(self) -> str:
        """The key ``draw_distinct_problems`` and the demo's evaluation seeds use: the question's text."""
        return self.question

    @property
    def prompt(self) -> list[dict[str, str]]:
        """The chat the model is conditioned on (rendered by its own chat template)."""
        return chat_messages(self.question)

    @property
    def answer(self) -> int:
        return self.start + sum(self.operands)

    @property
    def split(self):
        return split_of(self.question)


def chat_messages(question: str, *, one_shot: bool = True) -> list[dict[str, str]]:
    """System instruction, the worked example (``one_shot``), then ``question``."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    if one_shot:
        messages += [
            {"role": "user", "content": EXAMPLE_QUESTION},
            {"role": "assistant", "content": EXAMPLE_SOLUTION},
        ]
    return messages + [{"role": "user", "content": question}]


def sample_problem(rng: random.Random, difficulty: str) -> WordProblem:
    """Draw one story of ``difficulty``; true intermediate values stay in ``[0, max_value]``."""
    spec = DIFFICULTIES[difficulty]
    name, other = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    value = start = rng.randint(*spec.start)
    operands, sentences = [], []
    for _ in range(rng.randint(*spec.num_steps)):
        magnitude = rng.randint(*spec.operand)
        can_add = value + magnitude <= spec.max_value
        can_sub = value - magnitude >= 0
        if can_add and can_sub:
            sign = rng.choice((1, -1))
        elif can_add or can_sub:
            sign = 1 if can_add else -1
        else:  # no room on either side: shrink the amount
            magnitude, sign = max(1, min(magnitude, spec.max_value - value)), 1
        template = rng.choice(ADD_STEPS if sign > 0 else SUB_STEPS)
        sentences.append(template.format(n=name, k=magnitude, item=item, other=other))
        operands.append(sign * magnitude)
        value += sign * magnitude
    return WordProblem(name, item, start, tuple(operands), tuple(sentences), difficulty)


def generate_problems(n: int, difficulty: str, *, split: SplitName = "train", seed: int = 0) -> list[WordProblem]:
    """``n`` distinct problems of one level from one split (or "heldout": dev and test), determined by ``seed``."""
    return draw_distinct_problems(
        sample_problem, DIFFICULTIES, "ispo-word-problems", n, difficulty, split=split, seed=seed
    )


def generate_mixture(
    n_per_difficulty: int | dict[str, int], *, split: SplitName = "train", seed: int = 0
) -> list[WordProblem]:
    """Problems of every level, interleaved (easy, medium, hard, easy, ...), deterministic."""
    return interleave_difficulties(generate_problems, DIFFICULTIES, n_per_difficulty, split=split, seed=seed)


def solution(problem: WordProblem) -> str:
    """A correct worked solution in the example's format (for tests and inspection; never trained on)."""
    lines = [f"{problem.name} starts with {problem.start} {problem.item}."]
    value = problem.start
    for op in problem.operands:
        lines.append(f"{value} {'+' if op > 0 else '-'} {abs(op)} = {value + op}.")
        value += op
    return "\n".join(lines + [f"The answer is \\boxed{{{value}}}."])


def to_records(problems: list[WordProblem]) -> list[dict]:
    """Rows for a TRL dataset: ``prompt`` (chat messages), ``answer`` (gold, as text) and ``difficulty``."""
    return [{"prompt": p.prompt, "answer": str(p.answer), "difficulty": p.difficulty} for p in problems]
