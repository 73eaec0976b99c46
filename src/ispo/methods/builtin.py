"""The built-in methods: GRPO and its TRL presets, and ISPO (docs/methods.md, docs/algorithm.md).

Each ``compute`` only calls ``ispo.core``; the equations are in the core functions' docstrings and in
docs/algorithm.md (ISPO) and docs/methods.md (the others).
"""

from __future__ import annotations

import torch

from ispo.core import (
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
from ispo.methods.registry import MethodOutput, Pass, RolloutBatch, RolloutSignals, register_method


def ifd_pass(config) -> Pass:
    """The pass behind the conditional IFD: the rollout's answer without the reasoning, or the gold answer."""
    return Pass.ANSWER_WITHOUT_REASONING if config.ifd_answer == "sampled" else Pass.GOLD_ANSWER


def ispo_signal_passes(config) -> set[Pass]:
    """Every pass of the ISPO signals (also what the diagnostics need when ``ispo_diagnostics`` is on)."""
    passes = {Pass.PI_OLD, ifd_pass(config)}
    if config.needs_drift:
        passes.add(Pass.REFERENCE)
    return passes


@register_method(
    "grpo", uses_outcome=False, token_statistics=False, summary="GRPO: the outcome reward, TRL's advantages unchanged"
)
def grpo(batch: RolloutBatch, config) -> MethodOutput:
    """GRPO: TRL's advantages stand, bit for bit."""
    return MethodOutput()


@register_method(
    "dr_grpo",
    uses_outcome=False,
    token_statistics=False,
    trl_settings={"loss_type": "dr_grpo", "scale_rewards": "none"},
    summary="Dr.GRPO (arXiv 2503.20783): no std scaling, no length normalisation (TRL's loss_type='dr_grpo')",
)
def dr_grpo(batch: RolloutBatch, config) -> MethodOutput:
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
def entropy_tokens(batch: RolloutBatch, config) -> MethodOutput:
    """High-entropy minority tokens: GRPO's reward, TRL masks the loss to the top-entropy tokens."""
    return MethodOutput()


def _ispo_passes(config) -> set[Pass]:
    passes: set[Pass] = set()
    if config.lambda_tok != 0:
        passes.add(Pass.PI_OLD)
        if config.needs_drift:
            passes.add(Pass.REFERENCE)
    if config.lambda_ifd != 0:
        passes.add(ifd_pass(config))
    return passes


def ifd_signal(batch: RolloutBatch, config) -> torch.Tensor | None:
    """(B,) conditional IFD (docs/algorithm.md, Eq. 2), or None when its pass did not run.

    ``ifd_answer="sampled"``: the rollout's own answer tokens with vs without the reasoning;
    ``"reference"``: the gold answer's tokens. A rollout without an answer has no answer tokens: IFD = 0.
    """
    if config.ifd_answer == "sampled":
        with_, without, mask = batch.answer_logps_with, batch.answer_logps_without, batch.answer_mask
    else:
        with_, without, mask = batch.gold_logps_with, batch.gold_logps_without, batch.gold_mask
    if with_ is None:
        return None
    return conditional_ifd(with_, without, mask & batch.has_answer.unsqueeze(1))


def ispo_critical_mask(batch: RolloutBatch, config) -> torch.Tensor:
    """(B, T) bool: the critical tokens C_i of each rollout (docs/algorithm.md, Eqs. 4-5), per rollout."""
    return critical_token_mask(
        batch.entropies,
        batch.valid,
        batch.old_logps,
        batch.base_logps,
        top_frac=config.entropy_top_frac,
        drift_threshold=config.drift_threshold,
        mode=config.critical,
    )


def ispo_rollout_signals(batch: RolloutBatch, config) -> RolloutSignals:
    """ISPO's per-rollout signals and the sums its diagnostics need, from ``batch``'s rows alone.

    ``batch`` holds one process's rows (its outcome, answer flags and per-token statistics); nothing
    here looks at another row, so the trainer gathers only the (B,) results. Fields whose statistics
    are absent stay None.
    """
    signals = RolloutSignals(ifd=ifd_signal(batch, config))
    if batch.entropies is None or batch.old_logps is None:
        return signals
    valid = batch.valid
    high_entropy = entropy_filter(batch.entropies, valid, config.entropy_top_frac)
    if batch.base_logps is None:
        drifted = valid
    else:
        drifted = drift_filter(batch.old_logps, batch.base_logps, valid, config.drift_threshold)
    critical = ispo_critical_mask(batch, config)
    entropies = batch.entropies.float()
    signals.token_reward = token_directional_reward(
        batch.old_logps.float(),
        entropies,
        critical,
        batch.correct,
        alpha=config.entropy_alpha,
        beta=config.hinge_beta,
        tau_h=config.hinge_tau,
        asymmetric=config.token_asymmetry,
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
    passes=_ispo_passes,
    token_statistics=lambda config: config.token_credit == "critical",
    summary="ISPO: outcome + conditional IFD + directional token reward (the paper's Eq. 8)",
)
def ispo(batch: RolloutBatch, config) -> MethodOutput:
    """ISPO's composite reward (docs/algorithm.md, Eq. 8) and its [ours] variants (§7).

    Reads the per-rollout signals (``batch.signals``); GRPO exactly (TRL's advantages stand) when both
    weights are 0.
    """
    if config.lambda_ifd == 0 and config.lambda_tok == 0:
        return MethodOutput()
    g = batch.num_generations
    zeros = batch.outcome.new_zeros(batch.outcome.shape)
    signals = batch.signals
    token_reward = signals.token_reward if config.lambda_tok != 0 else zeros
    ifd = signals.ifd if config.lambda_ifd != 0 else zeros
    per_token_credit = config.token_credit == "critical"
    composite = composite_reward(
        batch.outcome,
        ifd.to(batch.outcome.dtype),
        token_reward.to(batch.outcome.dtype),
        lambda_ifd=config.lambda_ifd,
        lambda_tok=0.0 if per_token_credit else config.lambda_tok,
        outcome_conditioned=config.ifd_answer == "sampled",
        intrinsic_mask=None
        if config.intrinsic_groups == "all"
        else intrinsic_group_mask(batch.outcome, g, config.intrinsic_groups),
    )
    rewards = composite + batch.auxiliary
    if config.intrinsic_scale == "group":
        advantages = group_advantages(rewards, g, scale=config.scale_rewards)  # TRL's scaling of the reward
    else:
        advantages = intrinsic_advantages(batch.outcome, rewards, g, scale=config.intrinsic_scale)
    if per_token_credit and config.lambda_tok != 0:
        advantages = critical_token_advantages(
            advantages,
            batch.old_logps.float(),
            batch.entropies.float(),
            ispo_critical_mask(batch, config),
            batch.correct,
            g,
            lambda_tok=config.lambda_tok,
            alpha=config.entropy_alpha,
            beta=config.hinge_beta,
            tau_h=config.hinge_tau,
            asymmetric=config.token_asymmetry,
            scorable=batch.scorable,
        )
    return MethodOutput(rewards=rewards, advantages=advantages)
