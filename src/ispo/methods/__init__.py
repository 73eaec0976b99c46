"""ISPO and its baselines as registered methods: ``get_method(name)``, ``@register_method`` (docs/methods.md)."""

from ispo.methods.registry import (
    METHODS,
    Method,
    MethodOutput,
    Pass,
    RolloutBatch,
    RolloutSignals,
    get_method,
    method_names,
    register_method,
)

__all__ = [
    "METHODS",
    "Method",
    "MethodOutput",
    "Pass",
    "RolloutBatch",
    "RolloutSignals",
    "get_method",
    "method_names",
    "register_method",
]
