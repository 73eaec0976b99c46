"""Fixtures of the eval tests: the shared benchmark files (skipped when absent) and a tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_benchmarks_dir() -> Path:
    """``shared/data/benchmarks`` beside the repo root; ``ISPO_DATA_DIR`` (the data root) overrides."""
    root = Path(os.environ.get("ISPO_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")
    return root / "benchmarks"


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    path = shared_benchmarks_dir()
    if not (path / "math500.jsonl").is_file():
        pytest.skip(f"benchmark data not found at {path} (set ISPO_DATA_DIR)")
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


@pytest.fixture(scope="session")
def tokenizer():
    from ispo.models.tiny import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    from ispo.models.tiny import build_tiny_model

    return build_tiny_model(tokenizer)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from ispo.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "checkpoint")
