"""The synthetic tasks of the demo and the study, by name (``--task``).

A task is a module with the same interface as ``ispo.data.synthetic`` (the arithmetic task):
``CHARACTERS`` (every character its prompts and solutions use), ``DIFFICULTIES`` (easy, medium, hard),
``generate_problems(n, difficulty, *, split, seed)`` returning problems with ``prompt``, ``answer``,
``difficulty`` and ``split``, ``solution_text(problem, *, error_rate, rng)`` (deliberately imperfect
step-by-step solutions for the warm start) and ``to_records(problems)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# arithmetic: chains of additions and subtractions; branching: chains of decisions (parity / threshold rules)
TASKS: dict[str, str] = {"arithmetic": "ispo.data.synthetic", "branching": "ispo.data.branching"}


def get_task(name: str) -> ModuleType:
    """The module of task ``name``; a one-line ``ValueError`` listing the known tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name])
