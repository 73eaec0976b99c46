"""The synthetic arithmetic task: determinism, disjoint splits, correct answers and solutions."""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from ispo.data import synthetic
from ispo.data.synthetic import DIFFICULTIES, generate_mixture, generate_problems, solution_text

STEP = re.compile(r"^(-?\d+)([+-]\d+)=(-?\d+)$")


def parse_solution(text):
    """(steps as (left, operand, right), boxed value) of a solution."""
    *lines, last = text.split("\n")
    steps = []
    for line in lines:
        match = STEP.match(line)
        assert match, line
        steps.append(tuple(int(g) for g in match.groups()))
    boxed = re.fullmatch(r"\\boxed\{(-?\d+)\}", last)
    assert boxed, last
    return steps, int(boxed.group(1))


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_deterministic_and_seed_dependent(difficulty):
    a = generate_problems(50, difficulty, seed=3)
    assert a == generate_problems(50, difficulty, seed=3)
    assert a != generate_problems(50, difficulty, seed=4)
    assert len({p.expression for p in a}) == 50


def old_split_of(expression):
    """The train / held-out rule the cached warm starts were trained under, written out independently."""
    fraction = int(hashlib.sha256(expression.encode()).hexdigest()[:16], 16) / 2**64
    return "heldout" if fraction < 0.1 else "train"


def test_splits_are_disjoint_whatever_the_seeds():
    for difficulty in DIFFICULTIES:
        train = {p.expression for seed in (0, 1) for p in generate_problems(1000, difficulty, split="train", seed=seed)}
        dev = {p.expression for seed in (0, 7) for p in generate_problems(100, difficulty, split="dev", seed=seed)}
        test = {p.expression for seed in (0, 7) for p in generate_problems(100, difficulty, split="test", seed=seed)}
        heldout = {p.expression for p in generate_problems(150, difficulty, split="heldout", seed=7)}
        assert not train & dev and not train & test and not dev & test and not train & heldout
        assert all(synthetic.split_of(e) == "dev" for e in dev)
        assert all(synthetic.split_of(e) == "test" for e in test)
        assert {synthetic.split_of(e) for e in heldout} == {"dev", "test"}  # held-out = dev and test together
        assert all(old_split_of(e) == "train" for e in train)
        assert all(old_split_of(e) == "heldout" for e in dev | test | heldout)


def test_train_membership_is_the_old_rule_and_heldout_divides_about_evenly():
    """Every expression keeps its train / held-out side (the warm start's data); held-out splits ~50/50."""
    rng = random.Random(0)
    expressions = [synthetic.sample_problem(rng, rng.choice(list(DIFFICULTIES))).expression for _ in range(20_000)]
    expressions += [str(i) for i in range(20_000)]  # any text, not only problems
    counts = {"train": 0, "dev": 0, "test": 0}
    for expression in expressions:
        split = synthetic.split_of(expression)
        counts[split] += 1
        assert (split == "train") == (old_split_of(expression) == "train"), expression
    heldout = counts["dev"] + counts["test"]
    assert 0.08 < heldout / len(expressions) < 0.12
    assert 0.45 < counts["dev"] / heldout < 0.55


def test_heldout_keeps_the_problems_it_always_gave():
    """``split="heldout"`` draws the same problems as before the dev/test division (the old rule, same stream)."""
    rng = random.Random("ispo-synthetic/0/medium/heldout")
    expected = []
    while len(expected) < 5:
        problem = synthetic.sample_problem(rng, "medium")
        if old_split_of(problem.expression) == "heldout" and problem not in expected:
            expected.append(problem)
    assert generate_problems(5, "medium", split="heldout", seed=0) == expected


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_correct_solutions_compute_the_answer(difficulty):
    spec = DIFFICULTIES[difficulty]
    for problem in generate_problems(200, difficulty, seed=0):
        assert spec.num_steps[0] <= len(problem.operands) <= spec.num_steps[1]
        assert problem.answer == eval(problem.expression)  # the prompt's expression, evaluated by Python
        assert problem.prompt == f"Q: {problem.expression}\n"
        steps, boxed = parse_solution(solution_text(problem))
        assert boxed == problem.answer
        value = problem.start
        for (left, operand, right), expected_operand in zip(steps, problem.operands):
            assert (left, operand) == (value, expected_operand)
            assert right == left + operand
            assert 0 <= right <= spec.max_value
            value = right


def test_difficulty_grows():
    def mean(xs):
        return sum(xs) / len(xs)

    steps = {d: mean([len(p.operands) for p in generate_problems(200, d)]) for d in DIFFICULTIES}
    operands = {d: mean([abs(o) for p in generate_problems(200, d) for o in p.operands]) for d in DIFFICULTIES}
    assert steps["easy"] < steps["medium"] < steps["hard"]
    assert operands["easy"] <= operands["medium"] < operands["hard"]


def test_imperfect_solutions_err_at_the_rate_and_propagate():
    rng = random.Random(0)
    problems = generate_problems(500, "hard", seed=0)
    wrong_steps = total_steps = wrong_answers = 0
    for problem in problems:
        steps, boxed = parse_solution(solution_text(problem, error_rate=0.2, rng=rng))
        value = problem.start
        for (left, operand, right), expected_operand in zip(steps, problem.operands):
            assert left == value and operand == expected_operand  # later steps carry the wrong value on
            wrong_steps += right != left + operand
            total_steps += 1
            value = right
        assert boxed == value
        wrong_answers += boxed != problem.answer
    assert 0.17 < wrong_steps / total_steps < 0.23
    assert wrong_answers > 0.7 * len(problems)  # 7-8 steps at 20% each: most hard answers are wrong
    with pytest.raises(ValueError):
        solution_text(problems[0], error_rate=0.2)  # no rng


def test_mixture_interleaves_levels_and_records():
    mixed = generate_mixture(4, split="heldout")
    assert [p.difficulty for p in mixed[:3]] == ["easy", "medium", "hard"]
    assert len(mixed) == 12
    rows = synthetic.to_records(mixed)
    assert set(rows[0]) == {"prompt", "answer", "difficulty"}
    assert rows[0]["answer"] == str(mixed[0].answer)


def test_characters_cover_the_task():
    problem = generate_problems(1, "hard")[0]
    text = problem.prompt + solution_text(problem, error_rate=0.5, rng=random.Random(1))
    assert set(text) <= set(synthetic.CHARACTERS)


def test_bad_arguments():
    with pytest.raises(ValueError, match="difficulty"):
        generate_problems(1, "impossible")
    with pytest.raises(ValueError, match="split must be one of train, dev, test, heldout, got 'validation'"):
        generate_problems(1, "easy", split="validation")
    with pytest.raises(ValueError, match="distinct"):
        generate_problems(5000, "easy", split="heldout")


def test_solutions_grade_with_ispo_answers():
    verify = pytest.importorskip("ispo.answers")
    problems = generate_problems(5, "medium")
    golds = [str(p.answer) for p in problems]
    assert all(verify.verify_batch(golds, [solution_text(p) for p in problems]))
    assert not any(verify.verify_batch(golds, [f"\\boxed{{{p.answer + 1}}}" for p in problems]))
