"""The chat task word_problems: determinism, disjoint splits, levels, correct answers, the chat prompt."""

from __future__ import annotations

import re

import pytest

from ispo.answers import verify_answer
from ispo.data import word_problems
from ispo.data.word_problems import DIFFICULTIES, generate_problems


def test_deterministic_and_seeded():
    first = generate_problems(20, "medium", split="train", seed=3)
    assert first == generate_problems(20, "medium", split="train", seed=3)
    assert first != generate_problems(20, "medium", split="train", seed=4)
    assert len({p.question for p in first}) == 20  # distinct


def test_splits_are_disjoint_and_stable():
    texts = {
        split: {p.question for level in DIFFICULTIES for p in generate_problems(60, level, split=split, seed=0)}
        for split in ("train", "dev", "test")
    }
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    heldout = generate_problems(40, "easy", split="heldout", seed=0)
    assert {p.split for p in heldout} == {"dev", "test"}
    # the split is a function of the text alone: another seed never moves a problem
    for problem in generate_problems(50, "hard", split="train", seed=9):
        assert problem.split == "train"


@pytest.mark.parametrize("level", list(DIFFICULTIES))
def test_levels_steps_values_and_answers(level):
    spec = DIFFICULTIES[level]
    for problem in generate_problems(100, level, split="train", seed=1):
        assert problem.difficulty == level
        assert spec.num_steps[0] <= len(problem.operands) <= spec.num_steps[1]
        assert len(problem.sentences) == len(problem.operands)
        value = problem.start
        for op in problem.operands:
            value += op
            assert 0 <= value <= spec.max_value
        assert problem.answer == value
        # every step's amount is written in its sentence, and the question ends the story
        for sentence, op in zip(problem.sentences, problem.operands, strict=True):
            assert re.search(rf"\b{abs(op)}\b", sentence)
        assert problem.question.endswith(f"How many {problem.item} does {problem.name} have now?")
        assert verify_answer(str(problem.answer), word_problems.solution(problem)) is True


def test_levels_grow_in_steps():
    steps = {
        level: {len(p.operands) for p in generate_problems(50, level, split="train", seed=0)} for level in DIFFICULTIES
    }
    assert steps == {"easy": {1}, "medium": {2}, "hard": {3}}


def test_chat_prompt_is_instruction_worked_example_then_the_problem():
    problem = generate_problems(1, "easy", split="dev", seed=0)[0]
    messages = problem.prompt
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "\\boxed{" in messages[0]["content"] and messages[2]["content"].endswith("\\boxed{8}.")
    assert messages[-1]["content"] == problem.question
    # the worked example is no problem of any split (its name is never drawn) and its answer is right
    assert "Lena" not in word_problems.NAMES
    assert verify_answer("8", word_problems.EXAMPLE_SOLUTION) is True
    assert word_problems.chat_messages("Q?", one_shot=False) == [messages[0], {"role": "user", "content": "Q?"}]
    record = word_problems.to_records([problem])[0]
    assert record == {"prompt": messages, "answer": str(problem.answer), "difficulty": "easy"}


def test_bad_level_or_split_is_one_line():
    with pytest.raises(ValueError, match="difficulty must be one of"):
        generate_problems(1, "extreme")
    with pytest.raises(ValueError, match="split must be one of"):
        generate_problems(1, "easy", split="validation")
