"""The tasks of the demo and the study, by name (``--task``).

A task is a module with the same interface as ``ispo.data.synthetic`` (the arithmetic task):
``CHARACTERS`` (every character its prompts and solutions use), ``DIFFICULTIES`` (easy, medium, hard),
``generate_problems(n, difficulty, *, split, seed)`` returning problems with ``prompt``, ``answer``,
``difficulty`` and ``split``, ``solution_text(problem, *, error_rate, rng)`` (deliberately imperfect
step-by-step solutions for the warm start) and ``to_records(problems)``.

A *chat task* (``CHAT = True`` in its module, e.g. ``word_problems``) is for a pretrained chat model
(``--model``): its ``prompt`` is a list of chat messages rendered by the model's own template, and it has
no ``CHARACTERS`` or ``solution_text`` (no warm start); the other functions are the same.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# arithmetic: chains of additions and subtractions; branching: chains of decisions (parity / threshold rules);
# word_problems: arithmetic stories of 1-4 steps in natural language, a chat task for a real model
TASKS: dict[str, str] = {
    "arithmetic": "ispo.data.synthetic",
    "branching": "ispo.data.branching",
    "word_problems": "ispo.data.word_problems",
}


def get_task(name: str) -> ModuleType:
    """The module of task ``name``; a one-line ``ValueError`` listing the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])


def is_chat_task(name: str) -> bool:
    """Whether task ``name`` is a chat task (prompts are chat messages for a pretrained model)."""
    return bool(getattr(get_task(name), "CHAT", False))
