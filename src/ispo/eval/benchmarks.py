"""The standard math benchmarks by name, from local JSONL files or the Hugging Face hub.

A benchmark is a list of :class:`Problem` ``(id, problem, answer)``. Three sources, tried in order
for each name given to ``--benchmarks``:

1. a path to a ``.jsonl`` file: any file with ``id``, ``problem`` and ``answer`` on every line;
2. ``--data-dir DIR``: ``DIR/<name>.jsonl`` (``gsm8k`` also finds ``gsm8k_test.jsonl``), the schema
   of ``shared/data/benchmarks``;
3. a known name without ``--data-dir``: the public hub dataset in :data:`BENCHMARKS`.

Hub datasets are mirrors maintained by third parties; their ids and columns were checked against
public usage, not against the hub itself (no network here), so ``docs/eval.md`` lists them with
that caveat. The local files are the reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ispo.jsonl import JsonlError, read_jsonl

logger = logging.getLogger(__name__)

AnswerTransform = Literal["none", "after_hash", "join_list"]


class BenchmarkError(ValueError):
    """A benchmark name, file or row that cannot be evaluated; the message says which and why."""


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    answer: str


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a named benchmark lives on the hub and which columns hold its fields.

    Rows are numbered ``<name>-<index>`` when ``id_field`` is None or not a column of the mirror.
    ``answer_transform`` turns the raw answer column into a final answer: ``after_hash`` keeps the
    text after GSM8K's ``####`` (commas dropped), ``join_list`` joins a list of answers with commas
    and strips ``$`` (OlympiadBench).
    """

    name: str
    display_name: str
    hub_id: str
    split: str
    problem_field: str
    answer_field: str
    id_field: str | None = None
    hub_config: str | None = None
    answer_transform: AnswerTransform = "none"
    local_aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.answer_transform not in ("none", "after_hash", "join_list"):
            raise ValueError(f"unknown answer_transform {self.answer_transform!r}")


# The paper's five first (its table's column order), then the common extras.
BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("aime24", "AIME24", "HuggingFaceH4/aime_2024", "train", "problem", "answer", "id"),
        BenchmarkSpec("aime25", "AIME25", "MathArena/aime_2025", "train", "problem", "answer", "problem_idx"),
        BenchmarkSpec("amc23", "AMC23", "math-ai/amc23", "test", "question", "answer", "id"),
        BenchmarkSpec("math500", "MATH-500", "HuggingFaceH4/MATH-500", "test", "problem", "answer", "unique_id"),
        BenchmarkSpec(
            "olympiadbench",
            "OlympiadBench",
            "Hothan/OlympiadBench",
            "train",
            "question",
            "final_answer",
            "id",
            hub_config="OE_TO_maths_en_COMP",
            answer_transform="join_list",
        ),
        BenchmarkSpec("minerva", "Minerva", "math-ai/minervamath", "test", "question", "answer"),
        BenchmarkSpec(
            "gsm8k",
            "GSM8K",
            "openai/gsm8k",
            "test",
            "question",
            "answer",
            hub_config="main",
            answer_transform="after_hash",
            local_aliases=("gsm8k_test",),
        ),
    )
}

PAPER_BENCHMARKS: tuple[str, ...] = ("aime24", "aime25", "amc23", "math500", "olympiadbench")


def display_name(name: str) -> str:
    spec = BENCHMARKS.get(name)
    return spec.display_name if spec else name


def load_benchmark(
    name: str, *, data_dir: str | Path | None = None, limit: int | None = None
) -> tuple[str, list[Problem]]:
    """Resolve one ``--benchmarks`` entry to ``(benchmark_name, problems)``; ``limit`` keeps the first K.

    Raises:
        BenchmarkError: unknown name, missing file, empty file, bad JSON, missing or empty fields,
            duplicate ids.
    """
    if limit is not None and limit < 1:
        raise BenchmarkError(f"limit must be >= 1, got {limit}")
    path = Path(name)
    if name.endswith(".jsonl") or path.is_file():
        if not path.is_file():
            raise BenchmarkError(f"benchmark file {path} does not exist")
        return path.stem, load_jsonl(path, limit=limit)
    if data_dir is not None:
        return name, load_jsonl(_local_file(name, Path(data_dir)), limit=limit)
    spec = BENCHMARKS.get(name)
    if spec is None:
        raise BenchmarkError(_unknown_name_message(name))
    return name, load_from_hub(spec, limit=limit)


def _local_file(name: str, data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise BenchmarkError(f"--data-dir {data_dir} is not a directory")
    spec = BENCHMARKS.get(name)
    candidates = [name, *(spec.local_aliases if spec else ())]
    for candidate in candidates:
        path = data_dir / f"{candidate}.jsonl"
        if path.is_file():
            return path
    tried = ", ".join(f"{c}.jsonl" for c in candidates)
    hint = "" if spec else f"; {_unknown_name_message(name)}"
    raise BenchmarkError(f"benchmark {name!r}: no {tried} in {data_dir}{hint}")


def _unknown_name_message(name: str) -> str:
    return (
        f"unknown benchmark {name!r}: known names are {', '.join(BENCHMARKS)}; "
        "a path to a .jsonl file with id/problem/answer on every line also works"
    )


def load_jsonl(path: str | Path, *, limit: int | None = None) -> list[Problem]:
    """Read ``{id, problem, answer}`` rows (extra fields are ignored); errors name the file and line.

    Damaged lines follow :mod:`ispo.jsonl`'s policy; an incomplete last line is skipped with a warning.
    """
    path = Path(path)
    try:
        contents = read_jsonl(path, limit=limit)
    except JsonlError as error:
        raise BenchmarkError(str(error)) from None
    if contents.notice():
        logger.warning("%s", contents.notice())
    problems: list[Problem] = []
    seen: set[str] = set()
    for line_number, row in zip(contents.line_numbers, contents.records, strict=True):
        where = f"{path}:{line_number}"
        missing = [field for field in ("id", "problem", "answer") if field not in row]
        if missing:
            raise BenchmarkError(
                f"{where}: missing field(s) {', '.join(missing)}; every line needs id, problem and answer "
                f"(found: {', '.join(sorted(row)) or 'none'})"
            )
        problem = _make_problem(row["id"], row["problem"], row["answer"], where)
        if problem.id in seen:
            raise BenchmarkError(f"{where}: duplicate id {problem.id!r}")
        seen.add(problem.id)
        problems.append(problem)
    if not problems:
        raise BenchmarkError(f"{path}: no problems (the file is empty)")
    return problems


def load_from_hub(spec: BenchmarkSpec, *, limit: int | None = None) -> list[Problem]:
    """Download a named benchmark with ``datasets`` and map its columns to :class:`Problem`."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(spec.hub_id, spec.hub_config, split=spec.split)
    except Exception as error:  # network, auth or a moved dataset: say what was tried
        raise BenchmarkError(
            f"benchmark {spec.name!r}: could not load {spec.hub_id}"
            f"{f' ({spec.hub_config})' if spec.hub_config else ''} split {spec.split!r} from the hub "
            f"({type(error).__name__}: {error}); offline, pass --data-dir with {spec.name}.jsonl"
        ) from error
    columns = set(dataset.column_names)
    missing = [field for field in (spec.problem_field, spec.answer_field) if field not in columns]
    if missing:
        raise BenchmarkError(
            f"benchmark {spec.name!r}: {spec.hub_id} has no column(s) {', '.join(missing)} "
            f"(columns: {', '.join(sorted(columns))}); the mirror may have changed, use --data-dir"
        )
    id_field = spec.id_field if spec.id_field in columns else None
    problems = []
    for index, row in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        problem_id = row[id_field] if id_field else f"{spec.name}-{index}"
        answer = transform_answer(row[spec.answer_field], spec.answer_transform)
        problems.append(_make_problem(problem_id, row[spec.problem_field], answer, f"{spec.hub_id} row {index}"))
    if not problems:
        raise BenchmarkError(f"benchmark {spec.name!r}: {spec.hub_id} split {spec.split!r} is empty")
    return problems


def transform_answer(raw: object, transform: AnswerTransform) -> str:
    if transform == "after_hash":
        text = str(raw)
        if "####" not in text:
            raise BenchmarkError(f"GSM8K-style answer has no '####': {text[:80]!r}")
        return text.rsplit("####", 1)[1].strip().replace(",", "")
    if transform == "join_list":
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        return ",".join(str(item).strip().strip("$").strip() for item in items)
    return str(raw)


def _make_problem(problem_id: object, problem: object, answer: object, where: str) -> Problem:
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(int(answer)) if float(answer).is_integer() else str(answer)
    elif isinstance(answer, (list, tuple)):
        answer = transform_answer(answer, "join_list")
    for field, value in (("id", problem_id), ("problem", problem), ("answer", answer)):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise BenchmarkError(f"{where}: field {field!r} is empty")
    if not isinstance(problem, str) or not isinstance(answer, str):
        raise BenchmarkError(f"{where}: problem and answer must be strings")
    return Problem(id=str(problem_id), problem=problem, answer=answer)
