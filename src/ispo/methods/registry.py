"""The method registry: a name -> its options, the forward passes it needs, how its signals become rewards.

A method is a function ``(batch, options) -> MethodOutput`` registered with ``@register_method``. It
reads the typed record ``RolloutBatch`` (global rows, gathered across processes) and its own options
(a frozen dataclass of its prefixed ``ISPOConfig`` fields, built by ``options_from_config``), and returns
rewards and/or advantages computed by ``ispo.core`` functions: no maths lives here or in the trainer.
``ISPOTrainer`` runs only the passes a method declares (plus the diagnostics' passes when
``ispo_diagnostics`` is on), so GRPO pays for nothing it does not use.

This module imports none of the methods: they register when the package ``ispo.methods`` is imported
(its ``__init__`` imports ``builtin`` and ``baselines``).

Adding a method (docs/methods.md has the full example)::

    from dataclasses import dataclass
    from ispo.methods import MethodOutput, Pass, register_method

    @dataclass(frozen=True)
    class MyOptions:
        weight: float  # ISPOConfig.my_method_weight (the default is written there, once)

    @register_method("my_method", options=MyOptions, passes={Pass.PI_OLD}, prefix="my_method_")
    def my_method(batch, options):
        bonus = options.weight * ...  # a pure function of batch.old_logps, batch.valid, ...
        return MethodOutput(rewards=batch.outcome + batch.auxiliary + bonus)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

import torch


class Pass(str, enum.Enum):
    """The statistics a method can ask for; each is one kind of forward pass (or none, when reused)."""

    PI_OLD = "pi_old"  # per-token log-probs and entropies of the sampled tokens under pi_old
    REFERENCE = "reference"  # per-token log-probs under the frozen base pi_theta0 (the drift filter)
    ANSWER_WITHOUT_REASONING = "answer_without_reasoning"  # the rollout's answer after prompt + marker only
    GOLD_ANSWER = "gold_answer"  # the gold answer's tokens after prompt + reasoning + marker, and without reasoning
    PROMPT_ONLY = "prompt_only"  # per-token log-probs of the prompt itself
    SELF_CERTAINTY = "token_self_certainty"  # per completion token, KL(U || pi) over the whole vocabulary
    GOLD_PER_STEP = "gold_per_step"  # the gold answer after each newline-delimited prefix of the reasoning


@dataclass
class RolloutSignals:
    """ISPO's signals, one scalar per rollout (docs/algorithm.md, Eqs. 2, 4-7 and the diagnostics).

    Computed on each process from its own rows (a rollout's critical tokens depend on that rollout
    alone), then gathered: only these (N,) tensors cross processes, never a per-token tensor. ``None``
    where the pass behind a field did not run.
    """

    ifd: torch.Tensor | None = None  # (N,) Conditional IFD, nats per answer token; 0 without an answer
    token_reward: torch.Tensor | None = None  # (N,) R_token (Eqs. 6-7); 0 where C is empty
    num_valid: torch.Tensor | None = None  # (N,) completion tokens
    num_entropy: torch.Tensor | None = None  # (N,) |E_i|
    num_drift: torch.Tensor | None = None  # (N,) |D_i| (all valid tokens when no frozen base is available)
    num_critical: torch.Tensor | None = None  # (N,) |C_i|
    critical_entropy_sum: torch.Tensor | None = None  # (N,) sum of H over C_i (nats)
    critical_prob_sum: torch.Tensor | None = None  # (N,) sum of pi_old(y_t) over C_i
    entropy_sum: torch.Tensor | None = None  # (N,) sum of H over the completion
    drift_sum: torch.Tensor | None = None  # (N,) sum of log pi_old - log pi_base over the completion


@dataclass
class RolloutBatch:
    """One generation batch as the method sees it: global rows (N = P * G), in TRL's order.

    Filled stage by stage by ``ISPOTrainer``: outcome first, then ISPO's per-rollout ``signals``, then
    the per-token statistics of the passes that ran (``None`` when a pass did not run, or when the
    method reads no per-token statistic: ``Method.token_statistics``), gathered across processes. A
    method's tests build one by hand (tests/methods/).
    """

    num_generations: int
    outcome: torch.Tensor  # (N,) R_o in {0, 1}; NaN = unscorable
    auxiliary: torch.Tensor  # (N,) weighted sum of the auxiliary reward functions (0 when there are none)
    reward: torch.Tensor  # (N,) TRL's reward: the weighted sum of every function, NaN where all are None
    has_answer: torch.Tensor  # (N,) bool: an answer span was found
    valid: torch.Tensor | None  # (N, T) bool: real completion tokens (None when no per-token statistic is gathered)
    signals: RolloutSignals = field(default_factory=RolloutSignals)  # ISPO's per-rollout signals
    old_logps: torch.Tensor | None = None  # (N, T) log p of sampled tokens under pi_old
    entropies: torch.Tensor | None = None  # (N, T) entropy of pi_old(. | prefix), nats
    base_logps: torch.Tensor | None = None  # (N, T) log p of sampled tokens under the frozen base pi_theta0
    answer_logps_with: torch.Tensor | None = None  # (N, A) the rollout's answer tokens, reasoning in context
    answer_logps_without: torch.Tensor | None = None  # (N, A) the same tokens after prompt + marker only
    answer_mask: torch.Tensor | None = None  # (N, A) bool; all false for a rollout without an answer
    gold_logps_with: torch.Tensor | None = None  # (N, A) gold answer tokens after the reasoning
    gold_logps_without: torch.Tensor | None = None  # (N, A) gold answer tokens without the reasoning
    gold_mask: torch.Tensor | None = None  # (N, A) bool
    prompt_logps: torch.Tensor | None = None  # (N, Tp) log-probs of the prompt tokens (first one excluded)
    prompt_logp_mask: torch.Tensor | None = None  # (N, Tp) bool
    token_self_certainty: torch.Tensor | None = None  # (N, T) KL(U || pi(. | prefix)) per completion token
    step_gold_logps: torch.Tensor | None = None  # (N, K+1, A) gold answer after k reasoning steps, k = 0..K
    step_gold_mask: torch.Tensor | None = None  # (N, K+1, A) bool
    step_ids: torch.Tensor | None = None  # (N, T) long: the reasoning step of each completion token, -1 outside
    state: dict[str, Any] = field(default_factory=dict)  # the method's state across steps (one dict per run)

    @property
    def scorable(self) -> torch.Tensor:
        return ~torch.isnan(self.outcome)

    @property
    def correct(self) -> torch.Tensor:
        """(N,) bool: R_o = 1 (docs/algorithm.md §2: correct means R_o >= 0.5)."""
        return self.scorable & (self.outcome >= 0.5)


@dataclass
class MethodOutput:
    """What a method returns; ``None`` fields fall back to the layer below.

    - ``rewards`` (N,): the reward the method trains on (logged as ``reward/composite``); when
      ``advantages`` is None the trainer turns it into TRL's group advantages (``scale_rewards``).
    - ``advantages`` (N,) or (N, T): used as they are (per-token advantages go to TRL's loss as is).
    - both None: TRL's own advantages stand (plain GRPO, bit for bit).
    - ``metrics``: extra scalars to log.
    """

    rewards: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)


MethodFn = Callable[[RolloutBatch, Any], MethodOutput]  # (batch, options) -> MethodOutput


@dataclass(frozen=True)
class NoOptions:
    """The options of a method without settings of its own (GRPO and its TRL presets)."""


def config_field(name: str) -> Any:
    """An options field read from ``ISPOConfig.<name>`` as written, not under the method's prefix.

    For the TRL fields a method reads (``scale_rewards: RewardScale = config_field("scale_rewards")``).
    """
    return field(metadata={"config_field": name})


def option_config_names(options: type, prefix: str | None) -> dict[str, str]:
    """``{option: ISPOConfig field}`` for an options class: ``prefix + option`` unless ``config_field`` names one."""
    return {f.name: f.metadata.get("config_field", (prefix or "") + f.name) for f in fields(options)}


def options_from_config(options: type, prefix: str | None, config: Any) -> Any:
    """An instance of the options class ``options`` holding ``config``'s values of its fields.

    The one rule by which every method's options are built: no method restates a field or its default
    (defaults are written once, in ``ISPOConfig``).
    """
    values = {}
    for option, name in option_config_names(options, prefix).items():
        try:
            values[option] = getattr(config, name)
        except AttributeError:
            raise AttributeError(
                f"{options.__name__}.{option} reads the config field {name!r}, which {type(config).__name__} lacks"
            ) from None
    return options(**values)


def _fixed(value: Any) -> Callable[[Any], Any]:
    return lambda options: value


@dataclass(frozen=True)
class Method:
    """A registered method: its name, its options, the passes it needs, its config-field prefix.

    ``function(batch, options)`` is what was registered; the ``ISPOConfig``-taking methods below
    (``options``, ``compute``, ``passes``, ``token_statistics``) build the options from the config and
    call it, so the trainer hands over the config and a method sees only its own options.
    """

    name: str
    function: MethodFn  # the registered (batch, options) -> MethodOutput
    options_class: type = NoOptions  # a frozen dataclass of the method's own fields
    prefix: str | None = None  # config fields starting with this belong to the method
    trl_settings: dict[str, Any] = field(default_factory=dict)  # GRPOConfig fields the method implies
    uses_outcome: bool = True  # reads R_o as a 0/1 outcome (GRPO's family trains on TRL's reward as it is)
    summary: str = ""
    passes_for: Callable[[Any], Iterable[Pass]] = _fixed(frozenset())  # options -> the passes it needs
    # options -> whether ``function`` reads the per-token (N, T) statistics (gathered across processes)
    token_statistics_for: Callable[[Any], bool] = _fixed(True)

    def options(self, config: Any) -> Any:
        """The method's options (an instance of ``options_class``) from an ``ISPOConfig``."""
        return options_from_config(self.options_class, self.prefix, config)

    def compute(self, batch: RolloutBatch, config: Any) -> MethodOutput:
        """The method on ``batch`` under ``config``'s values of its options."""
        return self.function(batch, self.options(config))

    def passes(self, config: Any) -> frozenset[Pass]:
        return frozenset(Pass(p) for p in self.passes_for(self.options(config)))

    def token_statistics(self, config: Any) -> bool:
        return bool(self.token_statistics_for(self.options(config)))


METHODS: dict[str, Method] = {}


def register_method(
    name: str,
    *,
    options: type = NoOptions,
    passes: Iterable[Pass] | Callable[[Any], Iterable[Pass]] = (),
    prefix: str | None = None,
    trl_settings: dict[str, Any] | None = None,
    uses_outcome: bool = True,
    summary: str = "",
    token_statistics: bool | Callable[[Any], bool] = True,
) -> Callable[[MethodFn], MethodFn]:
    """Decorator: register ``function(batch, options) -> MethodOutput`` under ``name``.

    ``options`` is a frozen dataclass of the method's own settings, without defaults: field ``x`` holds
    ``ISPOConfig.<prefix>x`` (or the field ``config_field`` names), built by ``options_from_config``.
    ``passes`` is a set of ``Pass`` values, or a function of the options returning one (when the passes
    depend on a knob). ``prefix`` names the method's own config fields (``ISPOConfig`` refuses them under
    another method). ``trl_settings`` are ``GRPOConfig`` fields the method implies (Dr.GRPO's loss type):
    ``ISPOConfig`` fills them where the user left the default and refuses a conflicting value.
    ``uses_outcome=False`` (GRPO's family) skips the 0/1 check on R_o: such methods train on TRL's reward.
    ``token_statistics`` (a bool, or a function of the options) says whether the method reads the
    per-token statistics of ``RolloutBatch``; when it does not, only per-rollout scalars cross processes.
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"method name must be a non-empty identifier, got {name!r}")
    if not (is_dataclass(options) and isinstance(options, type) and options.__dataclass_params__.frozen):
        raise TypeError(f"method {name!r}: options must be a frozen dataclass, got {options!r}")
    restated = [f.name for f in fields(options) if f.default is not MISSING or f.default_factory is not MISSING]
    if restated:
        raise TypeError(
            f"method {name!r}: options field(s) {', '.join(restated)} have a default; defaults are written once, "
            "in ISPOConfig"
        )

    def decorator(function: MethodFn) -> MethodFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = Method(
            name=name,
            function=function,
            options_class=options,
            prefix=prefix,
            trl_settings=dict(trl_settings or {}),
            uses_outcome=uses_outcome,
            summary=summary or (function.__doc__ or "").strip().split("\n")[0],
            passes_for=passes if callable(passes) else _fixed(frozenset(Pass(p) for p in passes)),
            token_statistics_for=token_statistics if callable(token_statistics) else _fixed(token_statistics),
        )
        return function

    return decorator


def get_method(name: str) -> Method:
    """The registered method ``name``; a one-line ``ValueError`` listing the known ones otherwise.

    The built-in methods register when ``ispo.methods`` is imported (its ``__init__`` imports them).
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def method_names() -> list[str]:
    return sorted(METHODS)
