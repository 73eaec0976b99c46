"""Small helpers that several commands share (``ispo demo``, ``ispo sweep``, ``ispo eval``, ``ispo train``).

Owned by none of them, so none imports another for a helper: JSON files written atomically, the folder
of one (method, seed) cell of a study, and the one-line form of an error. A leaf module: standard
library only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomic(path: Path, value) -> None:
    """Write JSON to a temporary file next to ``path``, then rename it over ``path`` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def cell_dir(output_dir: Path, name: str, seed: int) -> Path:
    """The folder of one (method, seed) cell of a study: written by the sweep, read by its summary."""
    return output_dir / name / f"seed{seed}"


def first_line(error: BaseException) -> str:
    """The first line of an error's message (``transformers`` explains over several), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
