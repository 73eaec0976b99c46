"""ISPO's nearest relatives as registered methods (docs/methods.md); the maths is in ``ispo.core``.

Each method's own config fields carry its prefix (``rlpr_aggregate``); ``ISPOConfig`` refuses them under
another method. A method reads them as its options, without the prefix (``RlprOptions.aggregate``), plus
the TRL fields it reads (``scale_rewards``); the defaults and help stay in ``ISPOConfig``. Stateful pieces
(RLPR's EMA threshold) live in ``batch.state``, one dict per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ispo.core import (
    RewardScale,
    answer_token_score,
    group_advantages,
    group_reward_std,
    low_probability_confidence,
    pacr_dense_advantages,
    pacr_sparse_reward,
    pacr_step_confidence,
    prog_advantages,
    rlpr_reward,
    rlpr_std_filter,
    self_certainty_advantages,
    sequence_self_certainty,
    update_std_threshold,
    zvp_advantages,
)
from ispo.core.prog import ProgApplyTo
from ispo.core.rlpr import AnswerAggregate
from ispo.core.self_certainty import SelfCertaintyCombine, SelfCertaintyMode
from ispo.methods.registry import MethodOutput, Pass, RolloutBatch, config_field, register_method


@dataclass(frozen=True)
class SelfCertaintyOptions:
    """self_certainty's options: ``ISPOConfig.self_certainty_*`` without the prefix, and TRL's ``scale_rewards``."""

    mode: SelfCertaintyMode
    weight: float
    combine: SelfCertaintyCombine
    scale_rewards: RewardScale = config_field("scale_rewards")


@register_method(
    "self_certainty",
    options=SelfCertaintyOptions,
    passes={Pass.SELF_CERTAINTY},
    prefix="self_certainty_",
    summary="Intuitor (arXiv 2505.19590): self-certainty KL(U || pi), alone or added to the outcome",
)
def self_certainty(batch: RolloutBatch, options: SelfCertaintyOptions) -> MethodOutput:
    """Group-standardised sequence self-certainty; "replace" trains without the verifier."""
    certainty = sequence_self_certainty(batch.token_self_certainty, batch.valid)
    mode = options.mode
    advantages = self_certainty_advantages(
        certainty,
        batch.num_generations,
        mode=mode,
        outcome=batch.reward if mode == "add" else None,
        weight=options.weight,
        combine=options.combine,
        scale=options.scale_rewards,
    )
    if mode == "replace":  # no verifier: every rollout is scored by its self-certainty
        return MethodOutput(rewards=certainty, advantages=advantages, metrics={"self_certainty/mean": _mean(certainty)})
    # "add": an unscorable outcome leaves the rollout out, as under GRPO; the trained signal is a sum of two
    # standardised terms, so the logged reward is the outcome's and the self-certainty is logged on its own
    advantages = torch.where(batch.scorable, advantages, torch.zeros_like(advantages))
    return MethodOutput(advantages=advantages, metrics={"self_certainty/mean": _mean(certainty)})


@dataclass(frozen=True)
class RlprOptions:
    """rlpr's options: ``ISPOConfig.rlpr_*`` without the prefix, and TRL's ``scale_rewards``."""

    aggregate: AnswerAggregate
    debias: bool
    std_filter: bool
    filter_beta: float
    filter_ema: float
    scale_rewards: RewardScale = config_field("scale_rewards")


@register_method(
    "rlpr",
    options=RlprOptions,
    passes={Pass.GOLD_ANSWER},
    prefix="rlpr_",
    summary="RLPR (arXiv 2506.18254): probability of the gold answer after the reasoning, debiased, clipped to [0, 1]",
)
def rlpr(batch: RolloutBatch, options: RlprOptions) -> MethodOutput:
    """The reference-probability reward, optionally with RLPR's adaptive std filter on prompts."""
    score_with = answer_token_score(batch.gold_logps_with, batch.gold_mask, aggregate=options.aggregate)
    score_without = None
    if options.debias:
        score_without = answer_token_score(batch.gold_logps_without, batch.gold_mask, aggregate=options.aggregate)
    rewards = rlpr_reward(score_with, score_without) + batch.auxiliary
    has_gold = batch.gold_mask.any(dim=1)
    rewards = torch.where(has_gold, rewards, torch.full_like(rewards, float("nan")))  # no gold tokens: unscorable
    advantages = group_advantages(rewards, batch.num_generations, scale=options.scale_rewards)
    metrics = {"rlpr/reward_mean": _mean(rewards)}
    if options.std_filter:
        # RLPR's filter uses the threshold of the steps before this one; the first step keeps every prompt [ours]
        previous = batch.state.get("rlpr_std_ema")
        if previous is not None:
            threshold = options.filter_beta * previous
            keep = rlpr_std_filter(rewards, batch.num_generations, threshold).repeat_interleave(batch.num_generations)
            # [ours] filtered prompts get advantage 0 (the batch is not refilled with newly sampled prompts)
            advantages = torch.where(keep, advantages, torch.zeros_like(advantages))
            metrics["rlpr/kept_prompts"] = float(keep.float().mean())
            metrics["rlpr/std_threshold"] = float(threshold)
        stds = group_reward_std(rewards, batch.num_generations)
        batch.state["rlpr_std_ema"], _ = update_std_threshold(
            stds, previous, ema_ratio=options.filter_ema, beta=options.filter_beta
        )
    return MethodOutput(rewards=rewards, advantages=advantages, metrics=metrics)


@dataclass(frozen=True)
class ZvpOptions:
    """zvp's options: ``ISPOConfig.zvp_*`` without the prefix, and TRL's ``scale_rewards``."""

    alpha: float
    scale_rewards: RewardScale = config_field("scale_rewards")


@register_method(
    "zvp",
    options=ZvpOptions,
    passes={Pass.PI_OLD},
    prefix="zvp_",
    summary="RL-ZVP (arXiv 2509.21880): entropy-shaped token advantages in zero-variance groups",
)
def zvp(batch: RolloutBatch, options: ZvpOptions) -> MethodOutput:
    """GRPO on mixed groups; +alpha H on all-correct groups, -alpha (max H - H) on all-wrong ones."""
    advantages = zvp_advantages(
        batch.reward,
        batch.entropies,
        batch.valid,
        batch.num_generations,
        alpha=options.alpha,
        scale=options.scale_rewards,
    )
    return MethodOutput(rewards=batch.reward, advantages=advantages)


@dataclass(frozen=True)
class ProgOptions:
    """prog's options: ``ISPOConfig.prog_*`` without the prefix, and TRL's ``scale_rewards``."""

    alpha: float
    low_prob_fraction: float
    prompt_fraction: float
    apply_to: ProgApplyTo
    scale_rewards: RewardScale = config_field("scale_rewards")


@register_method(
    "prog",
    options=ProgOptions,
    passes={Pass.PI_OLD, Pass.PROMPT_ONLY},
    prefix="prog_",
    summary="ProGRPO (arXiv 2602.05281): advantage + alpha (prompt confidence - answer confidence)",
)
def prog(batch: RolloutBatch, options: ProgOptions) -> MethodOutput:
    """ProGRPO's advantage re-weighting from low-probability-token confidences."""
    answer_confidence = low_probability_confidence(
        batch.old_logps, batch.valid, low_prob_fraction=options.low_prob_fraction
    )
    prompt_confidence = low_probability_confidence(
        batch.prompt_logps, batch.prompt_logp_mask, low_prob_fraction=options.prompt_fraction
    )
    advantages = prog_advantages(
        batch.reward,
        answer_confidence,
        prompt_confidence,
        batch.num_generations,
        alpha=options.alpha,
        apply_to=options.apply_to,
        scale=options.scale_rewards,
    )
    return MethodOutput(
        rewards=batch.reward,
        advantages=advantages,
        metrics={
            "prog/answer_confidence": _mean(answer_confidence),
            "prog/prompt_confidence": _mean(prompt_confidence),
        },
    )


@dataclass(frozen=True)
class PacrOptions:
    """pacr's options: ``ISPOConfig.pacr_*`` without the prefix, and TRL's ``scale_rewards``."""

    variant: str  # ISPOConfig.pacr_variant: "dense" or "sparse"
    gamma: float
    lambda_process: float
    sparse_weight: float
    max_steps: int  # read by the pass that splits the reasoning into steps
    scale_rewards: RewardScale = config_field("scale_rewards")


@register_method(
    "pacr",
    options=PacrOptions,
    passes={Pass.GOLD_PER_STEP},
    prefix="pacr_",
    summary="PACR (arXiv 2510.22255): rise of the gold answer's log-probability over reasoning steps",
)
def pacr(batch: RolloutBatch, options: PacrOptions) -> MethodOutput:
    """Dense: per-token process advantages added to the outcome's; sparse: a bonus on the outcome reward."""
    confidence, mask = pacr_step_confidence(batch.step_gold_logps, batch.step_gold_mask)
    if options.variant == "sparse":
        rewards = pacr_sparse_reward(batch.outcome, confidence, mask, weight=options.sparse_weight)
        rewards = rewards + batch.auxiliary
        return MethodOutput(rewards=rewards)
    advantages = pacr_dense_advantages(
        batch.reward,
        confidence,
        mask,
        batch.step_ids,
        batch.valid,
        batch.num_generations,
        gamma=options.gamma,
        lambda_process=options.lambda_process,
        scale=options.scale_rewards,
    )
    # an unscorable outcome leaves the rollout out (its process term included), as under GRPO
    advantages = torch.where(batch.scorable.unsqueeze(1), advantages, torch.zeros_like(advantages))
    return MethodOutput(rewards=batch.reward, advantages=advantages)


def _mean(values: torch.Tensor) -> float:
    return float(torch.nanmean(values.float()))
