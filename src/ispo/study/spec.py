"""Study files and seed ranges: read and checked before anything runs.

A study file (YAML) names a baseline and the methods, each a mapping of ``ISPOConfig`` fields on top
of an optional ``preset: NAME`` (``ispo.methods.presets``)::

    baseline: GRPO
    task: arithmetic          # optional; --task overrides it
    methods:
      GRPO: {preset: grpo}
      ISPO-paper: {preset: ispo_paper}
      IFD-only: {preset: ispo_paper, lambda_tok: 0}

Every method's ``ISPOConfig`` is built once here under the demo's shared budget, so an unknown field or
preset and an invalid value are found before any training; a field's text value is converted by its type
(``delta_min: 1e-3``, which YAML reads as text, is the number 0.001). Every problem is a
:class:`StudyError` whose one-line message starts with the key at fault (``methods.IFD-only.lamda_tok``,
``baseline``, ``--seeds``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUDY_KEYS: tuple[str, ...] = ("baseline", "task", "methods", "description")
# a method name is a folder name of the output: no separators, no leading dot
METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


class StudyError(ValueError):
    """Bad study input; the message is one line and starts with the key at fault."""


@dataclass
class Study:
    """A checked study: the baseline, each method's ``ISPOConfig`` fields (preset resolved), the task if named."""

    baseline: str
    methods: dict[str, dict[str, Any]]  # name -> resolved ISPOConfig fields, in the file's order
    given: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> the mapping as written (values typed)
    task: str | None = None
    description: str | None = None
    path: str | None = None


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"``, ``"0-2,7"`` and ``"3"`` too. Seeds are integers >= 0, each once.

    Raises:
        StudyError: ``--seeds: ...`` for bad syntax, an empty range (``4-0``) or a repeated seed.
    """
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise StudyError(f"--seeds: expected a range such as 0-4 or a list such as 0,1,2, got {text!r}")
    seeds: list[int] = []
    for item in items:
        match = SEED_ITEM.match(item)
        if not match:
            raise StudyError(f"--seeds: expected a range such as 0-4 or a list such as 0,1,2, got {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise StudyError(f"--seeds: empty range {item} (write the smaller seed first: {last}-{first})")
        seeds.extend(range(first, last + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise StudyError(f"--seeds: seed {repeated[0]} given more than once in {text!r}")
    return seeds


def format_seeds(seeds: list[int]) -> str:
    """The shortest spelling of ``seeds``: ``0-4``, ``0,2,5``, ``0-2,7``."""
    parts: list[str] = []
    ordered = sorted(seeds)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        parts.append(str(first) if first == last else f"{first}-{last}" if last > first + 1 else f"{first},{last}")
        start = end + 1
    return ",".join(parts)


def load_study(path: str | Path, *, check=None) -> Study:
    """Read and check a study file.

    Args:
        check: ``check(name, fields)`` builds the method's ``ISPOConfig`` and raises ``ValueError`` for a bad
            value (the sweep passes the demo's; None skips that check).

    Raises:
        StudyError: one line naming the key at fault.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"--study: no such file {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StudyError(f"--study: {path} is not valid YAML{where}") from None
    return parse_study(raw, check=check, path=str(path))


def parse_study(raw: Any, *, check=None, path: str | None = None) -> Study:
    """Check a study's parsed YAML (see :func:`load_study`)."""
    if not isinstance(raw, dict):
        raise StudyError("study: expected a mapping with baseline and methods")
    for key in raw:
        if key not in STUDY_KEYS:
            raise StudyError(f"{key}: unknown study key (known: {', '.join(STUDY_KEYS)})")
    methods_raw = raw.get("methods")
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise StudyError("methods: expected a mapping of method name -> ISPOConfig fields (at least one)")
    baseline = raw.get("baseline")
    if baseline is None:
        raise StudyError("baseline: missing (name one of the methods)")
    if not isinstance(baseline, str) or baseline not in methods_raw:
        names = ", ".join(str(name) for name in methods_raw)
        raise StudyError(f"baseline: {baseline!r} is not among the methods ({names})")
    task = raw.get("task")
    if task is not None:
        from ispo.data.tasks import get_task

        try:
            get_task(str(task))
        except ValueError as error:
            raise StudyError(f"task: {error}") from None
        task = str(task)
    description = raw.get("description")
    methods: dict[str, dict[str, Any]] = {}
    given: dict[str, dict[str, Any]] = {}
    for name, spec in methods_raw.items():
        if not isinstance(name, str) or not METHOD_NAME.match(name):
            raise StudyError(f"methods.{name}: a method name is a folder name: letters, digits and . _ + - (not first)")
        if spec is None:
            spec = {}
        if isinstance(spec, str):  # a bare preset name
            spec = {"preset": spec}
        if not isinstance(spec, dict):
            raise StudyError(f"methods.{name}: expected a mapping of ISPOConfig fields (optionally preset: NAME)")
        given[name], methods[name] = _resolve_method(name, spec, check)
    return Study(baseline=baseline, methods=methods, given=given, task=task, description=description, path=path)


def _resolve_method(name: str, spec: dict, check) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the mapping as given, text values converted; the resolved ISPOConfig fields), by the demo's resolver."""
    from ispo.demo.run import method_fields

    try:
        fields = method_fields(spec)  # names checked, text values typed, the preset resolved
    except ValueError as error:  # its message starts with the key at fault
        raise StudyError(f"methods.{name}.{error}") from None
    given = {str(key): value if key == "preset" else fields[str(key)] for key, value in spec.items()}
    if check is not None:
        try:
            check(name, fields)
        except ValueError as error:
            raise StudyError(f"methods.{name}: {error}") from None
    return given, fields
