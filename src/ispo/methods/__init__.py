"""ISPO and its baselines as registered methods: ``get_method(name)``, ``@register_method`` (docs/methods.md).

Importing this package registers the built-in methods: ``builtin`` and ``baselines`` register into
``registry`` on import, and ``registry`` imports neither (no import cycle).
"""

# importing the built-in methods registers them (the registry imports neither)
from ispo.methods.baselines import PacrOptions, ProgOptions, RlprOptions, SelfCertaintyOptions, ZvpOptions
from ispo.methods.builtin import IspoOptions
from ispo.methods.registry import (
    METHODS,
    Method,
    MethodOutput,
    NoOptions,
    Pass,
    RolloutBatch,
    RolloutSignals,
    config_field,
    get_method,
    method_names,
    options_from_config,
    register_method,
)

__all__ = [
    "METHODS",
    "IspoOptions",
    "Method",
    "MethodOutput",
    "NoOptions",
    "PacrOptions",
    "Pass",
    "ProgOptions",
    "RlprOptions",
    "RolloutBatch",
    "RolloutSignals",
    "SelfCertaintyOptions",
    "ZvpOptions",
    "config_field",
    "get_method",
    "method_names",
    "options_from_config",
    "register_method",
]
