"""Per-sample JSONL records: appended per batch, and the resume index over them.

A record is keyed by ``(benchmark, problem_id, sample_index)``. Appends are flushed and fsynced
per batch, so a killed run loses at most the batch in flight. A kill in the middle of a write can
leave a partial last line; opening the store cuts it off (that record was never complete) before
anything is appended after it. Reading follows :mod:`ispo.jsonl`'s policy: any other damaged line
is an error naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ispo.jsonl import JsonlError, read_jsonl

logger = logging.getLogger(__name__)

RecordKey = tuple[str, str, int]


def record_key(record: dict) -> RecordKey:
    return (str(record["benchmark"]), str(record["problem_id"]), int(record["sample_index"]))


class RecordStore:
    """The finished samples of one output directory, loaded once and appended to."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[RecordKey, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        damaged = "the file is damaged: move it away or pass --overwrite"
        try:
            contents = read_jsonl(self.path)
        except JsonlError as error:
            raise ValueError(f"{error}; {damaged}") from None
        if contents.truncated_line is not None:  # a write was interrupted: drop the partial line
            logger.warning("%s", contents.notice())
            with self.path.open("r+b") as handle:
                handle.truncate(contents.complete_bytes)
        for line_number, record in zip(contents.line_numbers, contents.records, strict=True):
            try:
                key = record_key(record)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{self.path}:{line_number}: not a sample record ({error!r}); {damaged}") from None
            self.records.setdefault(key, record)

    def __contains__(self, key: RecordKey) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: Iterable[dict]) -> int:
        """Write the records not yet stored, then flush and fsync; returns how many were written."""
        fresh = []
        for record in records:
            key = record_key(record)
            if key not in self.records:
                self.records[key] = record
                fresh.append(record)
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a complete last record written without its newline (by hand) must not merge with the next
            separator = "\n" if _lacks_final_newline(self.path) else ""
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(separator + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh))
                handle.flush()
                os.fsync(handle.fileno())
        return len(fresh)


def _lacks_final_newline(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
