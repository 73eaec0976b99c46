"""Where a study's cells live on disk: read by the runner (writing them) and the summary (reading them)."""

from __future__ import annotations

from pathlib import Path


def cell_dir(output_dir: Path, name: str, seed: int) -> Path:
    """The folder of one (method, seed) cell of a study."""
    return output_dir / name / f"seed{seed}"
