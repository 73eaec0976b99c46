"""The built-in methods: GRPO and its TRL presets, and ISPO (docs/methods.md, docs/algorithm.md).

Each ``compute`` only calls ``ispo.core``; the equations and sources are in the core functions'
docstrings and in docs/methods.md.
"""

from __future__ import annotations

import torch

from ispo.core import (
    auto_kappa,
    composite_reward,
    conditional_ifd,
    critical_token_advantages,
    critical_token_mask,
    group_advantages,
    ifd_saturation,
    intrinsic_advantages,
    intrinsic_group_mask,
    normalized_entropy,
    token_directional_reward,
)
from ispo.methods.registry import MethodOutput, Pass, RolloutBatch, register_method


def ifd_pass(config) -> Pass:
    """The pass behind the conditional IFD: the rollout's answer without the reasoning, or the gold answer."""
    return Pass.ANSWER_WITHOUT_REASONING if config.ifd_answer == "sampled" else Pass.GOLD_ANSWER


def ispo_signal_passes(config) -> set[Pass]:
    """Every pass of the ISPO signals (also what the diagnostics need when ``ispo_diagnostics`` is on)."""
    passes = {Pass.PI_OLD, ifd_pass(config)}
    if config.needs_drift:
        passes.add(Pass.REFERENCE)
    return passes


@register_method("grpo", uses_outcome=False, summary="GRPO: the outcome reward, TRL's advantages unchanged")
def grpo(batch: RolloutBatch, config) -> MethodOutput:
    """GRPO: TRL's advantages stand, bit for bit."""
    return MethodOutput()


@register_method(
    "dr_grpo",
    uses_outcome=False,
    trl_settings={"loss_type": "dr_grpo", "scale_rewards": "none"},
    summary="Dr.GRPO (arXiv 2503.20783): no std scaling, no length normalisation (TRL's loss_type='dr_grpo')",
)
def dr_grpo(batch: RolloutBatch, config) -> MethodOutput:
    """Dr.GRPO: GRPO's reward; the differences are TRL settings (``trl_settings``)."""
    return MethodOutput()


@register_method(
    "entropy_tokens",
    uses_outcome=False,
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


def ifd_signal(batch: RolloutBatch, config):
    """(N,) conditional IFD S_i (docs/algorithm.md §1), or None when its pass did not run.

    ``ifd_answer="sampled"``: the rollout's own answer tokens with vs without the reasoning;
    ``"reference"``: the gold answer's tokens. A rollout without an answer has no answer tokens: S = 0.
    """
    if config.ifd_answer == "sampled":
        with_, without, mask = batch.answer_logps_with, batch.answer_logps_without, batch.answer_mask
    else:
        with_, without, mask = batch.gold_logps_with, batch.gold_logps_without, batch.gold_mask
    if with_ is None:
        return None
    return conditional_ifd(with_, without, mask & batch.has_answer.unsqueeze(1))


def ispo_token_signal(batch: RolloutBatch, config):
    """``(critical (N, T) bool, token_reward (N,))`` of docs/algorithm.md §2 from the pi_old statistics."""
    critical = critical_token_mask(
        batch.entropies,
        batch.valid,
        batch.drift,
        rho_h=config.rho_h,
        rho_d=config.rho_d,
        delta_min=config.delta_min,
        mode=config.critical,
    )
    norm_entropy = normalized_entropy(batch.entropies, batch.vocab_size)
    token_reward = token_directional_reward(
        batch.old_logps,
        norm_entropy,
        critical,
        batch.correct,
        tau=config.tau,
        eta=config.eta,
        asymmetric=config.token_asymmetry,
    )
    return critical, token_reward


@register_method("ispo", passes=_ispo_passes, summary="ISPO: outcome + conditional IFD + directional token reward")
def ispo(batch: RolloutBatch, config) -> MethodOutput:
    """ISPO's composite reward (docs/algorithm.md §3) and its study variants (§3b).

    GRPO exactly (TRL's advantages stand) when both weights are 0.
    """
    if config.lambda_ifd == 0 and config.lambda_tok == 0:
        return MethodOutput()
    g = batch.num_generations
    zeros = batch.outcome.new_zeros(batch.outcome.shape)
    metrics: dict[str, float] = {}
    critical, token_reward = None, zeros
    if config.lambda_tok != 0:
        critical, token_reward = ispo_token_signal(batch, config)
    ifd, kappa = zeros, config.kappa
    if config.lambda_ifd != 0:
        ifd = ifd_signal(batch, config)
        if kappa == "auto":
            kappa = auto_kappa(ifd, batch.has_answer)
            metrics["ifd/kappa"] = float(kappa)
        metrics["ifd/saturated"] = float(ifd_saturation(torch.tanh(ifd / kappa), batch.has_answer))
    per_token_credit = config.token_credit == "critical"
    composite = composite_reward(
        batch.outcome,
        ifd,
        token_reward,
        lambda_ifd=config.lambda_ifd,
        lambda_tok=0.0 if per_token_credit else config.lambda_tok,
        kappa=kappa,
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
    if per_token_credit and critical is not None:
        advantages = critical_token_advantages(
            advantages,
            batch.old_logps,
            normalized_entropy(batch.entropies, batch.vocab_size),
            critical,
            batch.correct,
            g,
            lambda_tok=config.lambda_tok,
            tau=config.tau,
            eta=config.eta,
            asymmetric=config.token_asymmetry,
            scorable=batch.scorable,
        )
    return MethodOutput(
        rewards=rewards,
        advantages=advantages,
        token_reward=token_reward if config.lambda_tok != 0 else None,
        critical=critical,
        metrics=metrics,
    )
