"""Per-sample JSONL records: appended per batch, and the resume index over them.

A record is keyed by ``(benchmark, problem_id, sample_index)``. Appends are flushed and fsynced
per batch, so a killed run loses at most the batch in flight. A kill in the middle of a write can
leave a partial last line; opening the store cuts it off (that record was never complete) before
anything is appended after it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

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
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a write was interrupted: drop the partial line
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        for line_number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record_key(record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"{self.path}:{line_number}: not a sample record ({error}); "
                    "the file is damaged, move it away or pass --overwrite"
                ) from None
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
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh))
                handle.flush()
                os.fsync(handle.fileno())
        return len(fresh)
