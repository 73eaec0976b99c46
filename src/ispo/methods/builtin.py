"""The built-in methods: GRPO and its TRL presets, and ISPO (docs/methods.md, docs/algorithm.md).

Each method only calls ``ispo.core``; the equations are in the core functions' docstrings and in
docs/algorithm.md (ISPO) and docs/methods.md (the others). ISPO reads ``IspoOptions``, the GRPO family
no option (``NoOptions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ispo.core import (
    CriticalMode,
    IntrinsicGroups,
    IntrinsicScale,
    RewardScale,
    combine_filters,
    composite_reward,
    conditional_ifd,
    critical_token_advantages,
    critical_token_mask,
    drift_filter,
    entropy_filter,
    group_advantages,
    intrinsic_advantages,
    intrinsic_group_mask,
    token_directional_reward,
)
from ispo.methods.registry import (
    MethodOutput,
    Pass,
    RolloutBatch,
    RolloutSignals,
    options_from_config,
    register_method,
)

# critical mode -> whether it needs the drift filter (hence a frozen base model)
CRITICAL_NEEDS_DRIFT: dict[str, bool] = {"intersection": True, "entropy": False, "drift": True, "union": True}


@dataclass(frozen=True)
class IspoOptions:
    """ISPO's options: ``ISPOConfig``'s ISPO fields (unprefixed; help, defaults and checks there) and TRL's
    ``scale_rewards``. Built by ``ispo_options(config)``; tests build them by hand."""

    lambda_ifd: float
    lambda_tok: float
    entropy_top_frac: float
    drift_threshold: float
    hinge_tau: float
    entropy_alpha: float
    hinge_beta: float
    critical: CriticalMode
    ifd_answer: str  # ISPOConfig's IfdAnswer: "sampled" or "reference"
    token_credit: str  # ISPOConfig's TokenCredit: "sequence" or "critical"
    intrinsic_scale: IntrinsicScale
    intrinsic_groups: IntrinsicGroups
    token_asymmetry: bool
    scale_rewards: RewardScale  # TRL's: how the composite reward is scaled in groups

    @property
    def needs_drift(self) -> bool:
        return CRITICAL_NEEDS_DRIFT[self.critical]


def ispo_options(config: Any) -> IspoOptions:
    """ISPO's options from an ``ISPOConfig`` (whatever its method: the diagnostics read them too)."""
    return options_from_config(IspoOptions, None, config)


def ifd_pass(options: IspoOptions) -> Pass:
    """The pass behind the conditional IFD: the rollout's answer without the reasoning, or the gold answer."""
    return Pass.ANSWER_WITHOUT_REASONING if options.ifd_answer == "sampled" else Pass.GOLD_ANSWER


def signal_passes(options: IspoOptions) -> set[Pass]:
    """Every pass of the ISPO signals (also what the diagnostics need when ``ispo_diagnostics`` is on)."""
    passes = {Pass.PI_OLD, ifd_pass(options)}
    if options.needs_drift:
        passes.add(Pass.REFERENCE)
    return passes


def ispo_signal_passes(config: Any) -> set[Pass]:
    """``signal_passes`` of an ``ISPOConfig``."""
    return signal_passes(ispo_options(config))


@register_method(
    "grpo", uses_outcome=False, token_statistics=False, summary="GRPO: the outcome reward, TRL's advantages unchanged"
)
def grpo(batch: RolloutBatch, options) -> MethodOutput:
    """GRPO: TRL's advantages stand, bit for bit."""
    return MethodOutput()


@register_method(
    "dr_grpo",
    uses_outcome=False,
    token_statistics=False,
    trl_settings={"loss_type": "dr_grpo", "scale_rewards": "none"},
    summary="Dr.GRPO (arXiv 2503.20783): no std scaling, no length normalisation (TRL's loss_type='dr_grpo')",
)
def dr_grpo(batch: RolloutBatch, options) -> MethodOutput:
    """Dr.GRPO: GRPO's reward; the differences are TRL settings (``trl_settings``)."""
    return MethodOutput()


@register_method(
    "entropy_tokens",
    uses_outcome=False,
    token_statistics=False,
    trl_settings={"top_entropy_quantile": 0.2},
    summary="80/20 rule (arXiv 2506.01939): policy gradient on the top-20% entropy tokens only "
    "(TRL's top_entropy_quantile)",
)
def entropy_tokens(batch: RolloutBatch, options) -> MethodOutput:
    """High-entropy minority tokens: GRPO's reward, TRL masks the loss to the top-entropy tokens."""
    return MethodOutput()


def _ispo_passes(options: IspoOptions) -> set[Pass]:
    passes: set[Pass] = set()
    if options.lambda_tok != 0:
        passes.add(Pass.PI_OLD)
        if options.needs_drift:
            passes.add(Pass.REFERENCE)
    if options.lambda_ifd != 0:
        passes.add(ifd_pass(options))
    return passes


def ifd_signal(batch: RolloutBatch, options: IspoOptions) -> torch.Tensor | None:
    """(B,) conditional IFD (docs/algorithm.md, Eq. 2), or None when its pass did not run.

    ``ifd_answer="sampled"``: the rollout's own answer tokens with vs without the reasoning;
    ``"reference"``: the gold answer's tokens. A rollout without an answer has no answer tokens: IFD = 0.
    """
    if options.ifd_answer == "sampled":
        with_, without, mask = batch.answer_logps_with, batch.answer_logps_without, batch.answer_mask
    else:
        with_, without, mask = batch.gold_logps_with, batch.gold_logps_without, batch.gold_mask
    if with_ is None:
        return None
    return conditional_ifd(with_, without, mask & batch.has_answer.unsqueeze(1))


def critical_mask(batch: RolloutBatch, options: IspoOptions) -> torch.Tensor:
    """(B, T) bool: the critical tokens C_i of each rollout (docs/algorithm.md, Eqs. 4-5), per rollout."""
    return critical_token_mask(
        batch.entropies,
        batch.valid,
        batch.old_logps,
        batch.base_logps,
        top_frac=options.entropy_top_frac,
        drift_threshold=options.drift_threshold,
        mode=options.critical,
    )


def ispo_rollout_signals(batch: RolloutBatch, config: Any) -> RolloutSignals:
    """``rollout_signals`` under an ``ISPOConfig``'s ISPO options."""
    return rollout_signals(batch, ispo_options(config))


def rollout_signals(batch: RolloutBatch, options: IspoOptions) -> RolloutSignals:
    """ISPO's per-rollout signals and the sums its diagnostics need, from ``batch``'s rows alone.

    ``batch`` holds one process's rows (its outcome, answer flags and per-token statistics); nothing
    here looks at another row, so the trainer gathers only the (B,) results. Fields whose statistics
    are absent stay None.
    """
    signals = RolloutSignals(ifd=ifd_signal(batch, options))
    if batch.entropies is None or batch.old_logps is None:
        return signals
    valid = batch.valid
    high_entropy = entropy_filter(batch.entropies, valid, options.entropy_top_frac)
    if batch.base_logps is None:
        drifted = valid
    else:
        drifted = drift_filter(batch.old_logps, batch.base_logps, valid, options.drift_threshold)
    critical = combine_filters(high_entropy, drifted, options.critical)  # each filter computed once
    entropies = batch.entropies.float()
    signals.token_reward = token_directional_reward(
        batch.old_logps.float(),
        entropies,
        critical,
        batch.correct,
        alpha=options.entropy_alpha,
        beta=options.hinge_beta,
        tau_h=options.hinge_tau,
        asymmetric=options.token_asymmetry,
    )
    zero = torch.zeros((), dtype=entropies.dtype, device=entropies.device)
    signals.num_valid = valid.sum(dim=1).to(entropies.dtype)
    signals.num_entropy = high_entropy.sum(dim=1).to(entropies.dtype)
    signals.num_drift = drifted.sum(dim=1).to(entropies.dtype)
    signals.num_critical = critical.sum(dim=1).to(entropies.dtype)
    signals.critical_entropy_sum = torch.where(critical, entropies, zero).sum(dim=1)
    signals.critical_prob_sum = torch.where(critical, batch.old_logps.float().exp(), zero).sum(dim=1)
    signals.entropy_sum = torch.where(valid, entropies, zero).sum(dim=1)
    if batch.base_logps is not None:
        drift = batch.old_logps.float() - batch.base_logps.float()
        signals.drift_sum = torch.where(valid, drift, zero).sum(dim=1)
    return signals


@register_method(
    "ispo",
    options=IspoOptions,
    passes=_ispo_passes,
    token_statistics=lambda options: options.token_credit == "critical",
    summary="ISPO: outcome + conditional IFD + directional token reward (the paper's Eq. 8)",
)
def ispo(batch: RolloutBatch, options: IspoOptions) -> MethodOutput:
    """ISPO's composite reward (docs/algorithm.md, Eq. 8) and its [ours] variants (§7).

    Reads the per-rollout signals (``batch.signals``); GRPO exactly (TRL's advantages stand) when both
    weights are 0.
    """
    if options.lambda_ifd == 0 and options.lambda_tok == 0:
        return MethodOutput()
    g = batch.num_generations
    zeros = batch.outcome.new_zeros(batch.outcome.shape)
    signals = batch.signals
    token_reward = signals.token_reward if options.lambda_tok != 0 else zeros
    ifd = signals.ifd if options.lambda_ifd != 0 else zeros
    per_token_credit = options.token_credit == "critical"
    composite = composite_reward(
        batch.outcome,
        ifd.to(batch.outcome.dtype),
        token_reward.to(batch.outcome.dtype),
        lambda_ifd=options.lambda_ifd,
        lambda_tok=0.0 if per_token_credit else options.lambda_tok,
        outcome_conditioned=options.ifd_answer == "sampled",
        intrinsic_mask=None
        if options.intrinsic_groups == "all"
        else intrinsic_group_mask(batch.outcome, g, options.intrinsic_groups),
    )
    rewards = composite + batch.auxiliary
    if options.intrinsic_scale == "group":
        advantages = group_advantages(rewards, g, scale=options.scale_rewards)  # TRL's scaling of the reward
    else:
        advantages = intrinsic_advantages(batch.outcome, rewards, g, scale=options.intrinsic_scale)
    if per_token_credit and options.lambda_tok != 0:
        advantages = critical_token_advantages(
            advantages,
            batch.old_logps.float(),
            batch.entropies.float(),
            critical_mask(batch, options),
            batch.correct,
            g,
            lambda_tok=options.lambda_tok,
            alpha=options.entropy_alpha,
            beta=options.hinge_beta,
            tau_h=options.hinge_tau,
            asymmetric=options.token_asymmetry,
            scorable=batch.scorable,
        )
    return MethodOutput(rewards=rewards, advantages=advantages)
