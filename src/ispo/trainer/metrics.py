"""``metrics.jsonl``: one JSON object per logging step, so runs can be plotted without a tracking service."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from ispo.jsonl import read_jsonl


class MetricsWriter:
    """Appends ``{"step", "wall_time", "elapsed_s", **metrics}`` lines to ``path``.

    On the first write of a process, lines from an earlier run at or after the current step are
    dropped: a run resumed from a checkpoint keeps its history up to the checkpoint and no duplicates.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._started = time.time()
        self._first_write = True

    def write(self, step: int, logs: dict) -> None:
        if "train_runtime" in logs:
            return  # the end-of-training summary is no step; it is in trainer_state.json
        record = {"step": int(step), "wall_time": time.time(), "elapsed_s": time.time() - self._started}
        for key, value in logs.items():
            record[key] = _jsonable(value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._first_write:
            self._first_write = False
            self._drop_from(step)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _drop_from(self, step: int) -> None:
        if not self.path.exists():
            return
        # A log, not data: a damaged line (from a crash) is dropped rather than stopping the run.
        kept = [r for r in read_jsonl(self.path, skip_malformed=True).records if r.get("step", -1) < step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
