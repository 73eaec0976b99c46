"""Every benchmark gold, boxed, must verify against itself (needs the benchmark files; skipped without them)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ispo.answers import verify_batch


def _data_dir() -> Path:
    """`ISPO_DATA_DIR`, else the `shared/data` folder beside the repository checkout."""
    if "ISPO_DATA_DIR" in os.environ:
        return Path(os.environ["ISPO_DATA_DIR"])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


_BENCHMARKS = sorted((_data_dir() / "benchmarks").glob("*.jsonl"))


@pytest.mark.data
@pytest.mark.parametrize("path", _BENCHMARKS or [None], ids=[p.stem for p in _BENCHMARKS] or ["absent"])
def test_benchmark_golds_round_trip(path, warm):
    if path is None:
        pytest.skip(f"no benchmark data under {_data_dir()}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    golds = [row["answer"] for row in rows]
    completions = [f"Let me work it out.\n... so the answer is $\\boxed{{{gold}}}$." for gold in golds]
    start = time.monotonic()
    results = verify_batch(golds, completions)
    elapsed = time.monotonic() - start
    misses = [(row["id"], row["answer"], got) for row, got in zip(rows, results, strict=True) if got is not True]
    verified = len(rows) - len(misses)
    print(f"{path.stem}: {verified}/{len(rows)} = {verified / len(rows):.2%} in {elapsed:.1f}s; misses: {misses}")
    assert not misses, misses
