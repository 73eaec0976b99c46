"""ISPO: Intrinsic Signal Policy Optimization, a drop-in for TRL's GRPO with dense intrinsic signals."""

__version__ = "0.1.0"

# The trainer pulls in TRL and transformers; import it only when asked for, so that `ispo.core`,
# `ispo.answers` and `ispo report` stay light.
_LAZY = {"ISPOConfig": "ispo.trainer", "ISPOTrainer": "ispo.trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ispo' has no attribute {name!r}")


__all__ = ["ISPOConfig", "ISPOTrainer", "__version__"]
