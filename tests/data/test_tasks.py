"""The task registry: every task module offers the interface the demo and the study use."""

from __future__ import annotations

import random

import pytest

from ispo.data.tasks import TASKS, get_task, is_chat_task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_the_interface(name):
    task = get_task(name)
    assert set(task.DIFFICULTIES) == {"easy", "medium", "hard"}
    problems = task.generate_problems(3, "easy", split="train", seed=0)
    assert len(problems) == 3 and all(p.split == "train" and p.difficulty == "easy" for p in problems)
    assert task.to_records(problems)[0]["answer"] == str(problems[0].answer)
    if is_chat_task(name):  # chat messages for a pretrained model's template; no characters, no warm start
        assert problems[0].prompt[-1] == {"role": "user", "content": problems[0].question}
        assert not hasattr(task, "solution_text")
        return
    solution = task.solution_text(problems[0], error_rate=0.0, rng=random.Random(0))
    assert solution.endswith(f"\\boxed{{{problems[0].answer}}}")
    assert set(problems[0].prompt + solution) <= set(task.CHARACTERS)
    assert task.to_records(problems)[0]["answer"] == str(problems[0].answer)


def test_unknown_task_is_one_line():
    with pytest.raises(ValueError, match="unknown task .nope.; tasks: arithmetic, branching, word_problems$"):
        get_task("nope")


def test_chat_tasks():
    assert [name for name in sorted(TASKS) if is_chat_task(name)] == ["word_problems"]
