"""Named settings of ``ISPOConfig`` fields: the methods as users pick them in ``ispo demo``, ``ispo sweep``
and study files (``preset: NAME``).

A preset is a plain mapping of ``ISPOConfig`` fields; fields given next to it override it. Every
registered method is also a preset of itself (``{"method": name}``).
"""

from __future__ import annotations

from typing import Any

from ispo.methods.registry import method_names

# ISPO as the paper defines it is ISPOConfig's defaults (docs/algorithm.md): `ispo` and `ispo_paper` are
# one definition. The paper's ablations (Table 2) are ISPO with one part changed.
PAPER_ABLATIONS: dict[str, dict[str, Any]] = {
    "ispo_ifd_only": {"method": "ispo", "lambda_tok": 0.0},  # Table 2 "+IFD" (lambda_2 = 0)
    "ispo_token_only": {"method": "ispo", "lambda_ifd": 0.0},  # Table 2 "+token" (lambda_1 = 0)
    "ispo_entropy_only": {"method": "ispo", "critical": "entropy"},  # Table 2 "E only"
    "ispo_drift_only": {"method": "ispo", "critical": "drift"},  # Table 2 "D only"
    "ispo_union": {"method": "ispo", "critical": "union"},  # Table 2 "E ∪ D"
    "ispo_symmetric": {"method": "ispo", "token_asymmetry": False},  # Table 2 "Symmetric" (formula [ours])
    "ispo_no_hinge": {"method": "ispo", "hinge_beta": 0.0},  # Table 2 "beta = 0"
}

PRESETS: dict[str, dict[str, Any]] = {
    "grpo": {"method": "grpo"},
    "dr_grpo": {"method": "dr_grpo"},
    "ispo": {"method": "ispo"},  # the paper's ISPO: ISPOConfig's defaults
    "ispo_paper": {"method": "ispo"},  # the same method, by the name earlier studies used
    **PAPER_ABLATIONS,
}

# display names used by `ispo demo --methods` and study files (case-insensitive) -> preset
ALIASES: dict[str, str] = {
    "grpo": "grpo",
    "dr.grpo": "dr_grpo",
    "ispo": "ispo",
    "ispo-paper": "ispo_paper",
    "+ifd": "ispo_ifd_only",
    "+token": "ispo_token_only",
    "e only": "ispo_entropy_only",
    "d only": "ispo_drift_only",
    "e ∪ d": "ispo_union",
    "symmetric": "ispo_symmetric",
    "beta = 0": "ispo_no_hinge",
}


def preset_names() -> list[str]:
    return sorted(set(PRESETS) | set(method_names()))


def resolve_preset(name: str) -> dict[str, Any]:
    """The fields of preset ``name`` (a preset, an alias such as "Dr.GRPO", or any registered method)."""
    key = ALIASES.get(name.lower(), name)
    if key in PRESETS:
        return dict(PRESETS[key])
    if key in method_names():
        return {"method": key}
    if key.lower() in ("recommended", "ispo-recommended"):
        raise ValueError(
            f"preset {name!r} was removed: it was selected for an earlier reading of the paper; ISPO is now the "
            "paper's method (docs/algorithm.md), and no variant has yet been confirmed on evidence (docs/study.md)"
        )
    raise ValueError(f"unknown preset or method {name!r}; known: {', '.join(preset_names())}")
