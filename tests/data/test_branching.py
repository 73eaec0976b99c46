"""The synthetic branching task: determinism, disjoint splits, correct answers, both kinds of errors."""

from __future__ import annotations

import random
import re

import pytest

from ispo.answers import verify_answer
from ispo.data import branching, synthetic
from ispo.data.branching import DIFFICULTIES, ParityRule, ThresholdRule, generate_problems, solution_text

PARITY_LINE = re.compile(r"^(-?\d+)([eo])(/2|\+\d+)=(-?\d+)$")
THRESHOLD_LINE = re.compile(r"^(-?\d+)>(\d+)([yn])([+-]\d+)=(-?\d+)$")


def parse_solution(problem, text):
    """(list of (value, first branch chosen, result), boxed value), checking each line against its rule."""
    *lines, last = text.split("\n")
    assert len(lines) == len(problem.rules)
    steps = []
    for rule, line in zip(problem.rules, lines, strict=True):
        if isinstance(rule, ParityRule):
            match = PARITY_LINE.match(line)
            assert match, line
            value, decision, operation, result = match.groups()
            assert operation == ("/2" if decision == "e" else f"+{rule.add}"), line
            first_branch = decision == "e"
        else:
            match = THRESHOLD_LINE.match(line)
            assert match, line
            value, threshold, decision, operation, result = match.groups()
            assert int(threshold) == rule.threshold
            assert operation == (f"-{rule.subtract}" if decision == "y" else f"+{rule.add}"), line
            first_branch = decision == "y"
        steps.append((int(value), first_branch, int(result)))
    boxed = re.fullmatch(r"\\boxed\{(-?\d+)\}", last)
    assert boxed, last
    return steps, int(boxed.group(1))


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_deterministic_and_seed_dependent(difficulty):
    a = generate_problems(50, difficulty, seed=3)
    assert a == generate_problems(50, difficulty, seed=3)
    assert a != generate_problems(50, difficulty, seed=4)
    assert len({p.expression for p in a}) == 50
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert [solution_text(p, error_rate=0.3, rng=rng_a) for p in a] == [
        solution_text(p, error_rate=0.3, rng=rng_b) for p in a
    ]


def test_splits_are_disjoint_whatever_the_seeds():
    for difficulty in DIFFICULTIES:
        train = {p.expression for seed in (0, 1) for p in generate_problems(1000, difficulty, split="train", seed=seed)}
        dev = {p.expression for seed in (0, 7) for p in generate_problems(100, difficulty, split="dev", seed=seed)}
        test = {p.expression for seed in (0, 7) for p in generate_problems(100, difficulty, split="test", seed=seed)}
        heldout = {p.expression for p in generate_problems(150, difficulty, split="heldout", seed=7)}
        assert not train & dev and not train & test and not dev & test and not train & heldout
        assert all(branching.split_of(e) == "train" for e in train)
        assert all(branching.split_of(e) == "dev" for e in dev)
        assert all(branching.split_of(e) == "test" for e in test)
        assert {branching.split_of(e) for e in heldout} == {"dev", "test"}  # held-out = dev and test together


def test_split_is_the_arithmetic_tasks_rule_on_the_problem_text():
    """One rule for both tasks: a stable hash of the text, ~90% train, held-out halved into dev and test."""
    problems = [branching.sample_problem(random.Random(i), "medium") for i in range(20_000)]
    counts = {"train": 0, "dev": 0, "test": 0}
    for problem in problems:
        assert problem.split == synthetic.split_of(problem.expression)
        counts[problem.split] += 1
    heldout = counts["dev"] + counts["test"]
    assert 0.08 < heldout / len(problems) < 0.12
    assert 0.42 < counts["dev"] / heldout < 0.58


@pytest.mark.parametrize("difficulty", list(DIFFICULTIES))
def test_correct_solutions_compute_the_answer(difficulty):
    spec = DIFFICULTIES[difficulty]
    for problem in generate_problems(300, difficulty, seed=0):
        assert spec.num_steps[0] <= len(problem.rules) <= spec.num_steps[1]
        assert problem.prompt == f"Q: {problem.expression}\n"
        steps, boxed = parse_solution(problem, solution_text(problem))
        assert boxed == problem.answer
        value = problem.start
        for rule, (left, first_branch, result) in zip(problem.rules, steps, strict=True):
            assert left == value
            # the rule's meaning, written out independently of the module
            if isinstance(rule, ParityRule):
                assert first_branch == (value % 2 == 0)
                assert result == (value // 2 if value % 2 == 0 else value + rule.add)
            else:
                assert first_branch == (value > rule.threshold)
                assert result == (value - rule.subtract if value > rule.threshold else value + rule.add)
            assert 1 <= result <= spec.max_value
            value = result


def test_both_rules_and_both_branches_occur_evenly():
    for difficulty in DIFFICULTIES:
        problems = generate_problems(500, difficulty, seed=0)
        pairs = [(rule, value) for p in problems for rule, value in zip(p.rules, p.values, strict=False)]
        parity = [(r, v) for r, v in pairs if isinstance(r, ParityRule)]
        threshold = [(r, v) for r, v in pairs if isinstance(r, ThresholdRule)]
        assert 0.4 < len(parity) / len(pairs) < 0.6, difficulty
        for group in (parity, threshold):
            share = sum(r.decide(v) for r, v in group) / len(group)
            assert 0.35 < share < 0.65, (difficulty, share)


def test_difficulty_grows():
    def mean(xs):
        return sum(xs) / len(xs)

    steps = {d: mean([len(p.rules) for p in generate_problems(200, d)]) for d in DIFFICULTIES}
    values = {d: mean([v for p in generate_problems(200, d) for v in p.values]) for d in DIFFICULTIES}
    assert steps["easy"] < steps["medium"] < steps["hard"]
    assert values["easy"] < values["medium"] < values["hard"]


def test_solutions_fit_the_demo_completion_budget():
    """The demo samples at most 96 completion tokens (one per character): a right solution must fit."""
    rng = random.Random(0)
    for problem in generate_problems(500, "hard", seed=0):
        assert len(solution_text(problem)) <= 90
        assert len(solution_text(problem, error_rate=0.2, rng=rng)) <= 96


def test_imperfect_solutions_err_at_the_rate_with_both_kinds_and_propagate():
    rng = random.Random(0)
    problems = generate_problems(1000, "hard", seed=0)
    decision_errors = slips = total_steps = wrong_answers = 0
    for problem in problems:
        steps, boxed = parse_solution(problem, solution_text(problem, error_rate=0.2, rng=rng))
        value = problem.start
        for rule, (left, first_branch, result) in zip(problem.rules, steps, strict=True):
            assert left == value  # later steps carry the wrong value on, and decide on it
            right_decision = rule.decide(value)
            if first_branch != right_decision:
                decision_errors += 1
                assert result == rule.apply(value, first_branch)  # the branch not taken, computed right
            elif result != rule.apply(value, first_branch):
                slips += 1
                assert result - rule.apply(value, first_branch) in branching.ERROR_OFFSETS
            total_steps += 1
            value = result
        assert boxed == value
        wrong_answers += boxed != problem.answer
    # 6000 steps, expected 600 of each kind (sd ~23)
    assert 0.085 < decision_errors / total_steps < 0.115
    assert 0.085 < slips / total_steps < 0.115
    assert wrong_answers > 0.6 * len(problems)  # 6 steps at 20% each: most hard answers are wrong
    with pytest.raises(ValueError, match="rng"):
        solution_text(problems[0], error_rate=0.2)
    with pytest.raises(ValueError, match="error_rate"):
        solution_text(problems[0], error_rate=1.5, rng=rng)


def test_decision_share_chooses_the_kind_of_error():
    problems = generate_problems(200, "medium", seed=1)
    for share, want_decisions in ((1.0, True), (0.0, False)):
        rng = random.Random(2)
        for problem in problems:
            steps, _ = parse_solution(problem, solution_text(problem, error_rate=1.0, rng=rng, decision_share=share))
            for rule, (left, first_branch, result) in zip(problem.rules, steps, strict=True):
                assert (first_branch != rule.decide(left)) == want_decisions
                assert (result == rule.apply(left, first_branch)) == want_decisions


def test_mixture_interleaves_levels_and_records():
    mixed = branching.generate_mixture(4, split="heldout")
    assert [p.difficulty for p in mixed[:3]] == ["easy", "medium", "hard"]
    assert len(mixed) == 12
    rows = branching.to_records(mixed)
    assert set(rows[0]) == {"prompt", "answer", "difficulty"}
    assert rows[0]["answer"] == str(mixed[0].answer)


def test_characters_cover_the_task_and_nothing_more():
    rng = random.Random(1)
    used = set()
    for difficulty in DIFFICULTIES:
        for problem in generate_problems(100, difficulty):
            used |= set(problem.prompt + solution_text(problem, error_rate=0.5, rng=rng))
    assert used <= set(branching.CHARACTERS)
    assert set(branching.CHARACTERS) == used  # no stray characters in the tokenizer's vocabulary


def test_bad_arguments():
    with pytest.raises(ValueError, match="difficulty"):
        generate_problems(1, "impossible")
    with pytest.raises(ValueError, match="split must be one of train, dev, test, heldout, got 'validation'"):
        generate_problems(1, "easy", split="validation")
    with pytest.raises(ValueError, match="decision_share"):
        solution_text(generate_problems(1, "easy")[0], decision_share=2.0)


def test_answers_grade_with_ispo_answers():
    rng = random.Random(0)
    for difficulty in DIFFICULTIES:
        for problem in generate_problems(5, difficulty, split="heldout"):
            assert verify_answer(str(problem.answer), solution_text(problem)) is True
            assert verify_answer(str(problem.answer + 1), solution_text(problem)) is False
            wrong = solution_text(problem, error_rate=1.0, rng=rng)
            assert verify_answer(str(problem.answer), wrong) is (wrong.endswith(f"{{{problem.answer}}}"))
