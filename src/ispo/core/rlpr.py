"""RLPR: the policy's probability of the reference answer as the reward (docs/methods.md, 2).

Source: Yu et al., "RLPR: Extrapolating RLVR to General Domains without Verifiers", arXiv:2506.18254
(the probability reward, its debiasing by the answer's probability without reasoning, and the std filter).
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.advantages import nanstd

AnswerAggregate = Literal["mean_prob", "geometric_mean_prob", "mean_log_prob", "sum_log_prob", "sequence_prob"]
ANSWER_AGGREGATES: tuple[str, ...] = typing.get_args(AnswerAggregate)


def answer_token_score(
    answer_logps: torch.Tensor,
    answer_mask: torch.Tensor,
    *,
    aggregate: AnswerAggregate = "mean_prob",
) -> torch.Tensor:
    """Reduce the per-token log-probs of a (reference) answer span to one score per row.

        "mean_prob":            (1/|y|) sum_k p_k                 RLPR's reward (the default)
        "geometric_mean_prob":  exp((1/|y|) sum_k log p_k)        RLPR ablation
        "mean_log_prob":        (1/|y|) sum_k log p_k             RLPR ablation (naive likelihood)
        "sum_log_prob":         sum_k log p_k = log pi(y | ctx)    PACR's step confidence
        "sequence_prob":        exp(sum_k log p_k) = pi(y | ctx)   RLPR ablation

    with p_k = pi(y_k | context, y_<k). A row with no answer token scores 0.

    Shapes: answer_logps, answer_mask ``(N, A)`` -> ``(N,)``; float, computed in float32 at least.
    """
    if aggregate not in ANSWER_AGGREGATES:
        raise ValueError(f"aggregate must be one of {ANSWER_AGGREGATES}, got {aggregate!r}")
    check_tensor("answer_logps", answer_logps, 2)
    check_same_shape("answer_logps", answer_logps, answer_mask=answer_mask)
    mask = as_bool_mask("answer_mask", answer_mask)
    check_finite("answer_logps", answer_logps, mask)
    if bool((answer_logps.masked_fill(~mask, 0.0) > 0).any()):
        raise ValueError("answer_logps must be log-probabilities (<= 0) at answer positions")

    logps = answer_logps if answer_logps.dtype == torch.float64 else answer_logps.float()
    logps = logps.masked_fill(~mask, 0.0)
    count = mask.sum(dim=1)
    has_tokens = count > 0
    denominator = count.clamp(min=1).to(logps.dtype)
    if aggregate == "mean_prob":
        score = torch.where(mask, logps.exp(), torch.zeros_like(logps)).sum(dim=1) / denominator
    elif aggregate == "geometric_mean_prob":
        score = (logps.sum(dim=1) / denominator).exp()
    elif aggregate == "mean_log_prob":
        score = logps.sum(dim=1) / denominator
    elif aggregate == "sum_log_prob":
        score = logps.sum(dim=1)
    else:
        score = logps.sum(dim=1).exp()
    return torch.where(has_tokens, score, torch.zeros_like(score))


def rlpr_reward(
    score_with_reasoning: torch.Tensor,
    score_without_reasoning: torch.Tensor | None,
    *,
    clip: tuple[float, float] | None = (0.0, 1.0),
    format_reward: torch.Tensor | None = None,
    format_weight: float = 0.0,
) -> torch.Tensor:
    """Debiased probability reward, optionally mixed with a format reward.

        r_i = clip(s_i - s'_i, 0, 1)                       (s' = None: r_i = clip(s_i, 0, 1))
        R_i = (1 - w_f) * r_i + w_f * F_i                   (only when format_reward is given)

    s_i = ``answer_token_score`` of the reference answer y* after rollout i's reasoning
    (prompt + reasoning z_i + answer marker + y*); s'_i = the same score of y* directly after the prompt,
    without reasoning, which removes the answer's prior likelihood. The paper clips to [0, 1]; for
    "mean_prob" scores, which lie in [0, 1], that only zeroes negative differences. Pass ``clip=None``
    for the raw difference (e.g. with log-prob aggregates).

    The format weight defaults to 0 [ours] because this project's answers are checked by the outcome
    verifier, not by tags.

    s' depends only on (prompt, reference): the trainer may compute it once per prompt or recompute it
    with the current policy (a knob of the trainer, not of this function).

    Shapes: all ``(B,)`` -> ``(B,)``.
    """
    check_tensor("score_with_reasoning", score_with_reasoning, 1)
    check_finite("score_with_reasoning", score_with_reasoning)
    reward = score_with_reasoning
    if score_without_reasoning is not None:
        check_same_shape("score_with_reasoning", score_with_reasoning, score_without_reasoning=score_without_reasoning)
        check_finite("score_without_reasoning", score_without_reasoning)
        reward = score_with_reasoning - score_without_reasoning
    if clip is not None:
        low, high = clip
        if not low <= high:
            raise ValueError(f"clip must be (low, high) with low <= high, got {clip}")
        reward = reward.clamp(low, high)
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    if format_reward is None:
        if format_weight != 0.0:
            raise ValueError("format_reward is required when format_weight is not 0")
        return reward.clone() if reward is score_with_reasoning else reward
    check_same_shape("score_with_reasoning", score_with_reasoning, format_reward=format_reward)
    check_finite("format_reward", format_reward)
    return (1.0 - format_weight) * reward + format_weight * format_reward


def group_reward_std(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Unbiased standard deviation of each group's rewards (NaN rewards left out; NaN if < 2 remain).

    Shapes: rewards ``(B,)`` with B = P * num_generations -> ``(P,)``.
    """
    check_tensor("rewards", rewards, 1)
    if num_generations < 2:
        raise ValueError(f"num_generations must be >= 2 for a group std, got {num_generations}")
    check_groups("rewards", rewards.numel(), num_generations)
    if bool(torch.isinf(rewards).any()):
        raise ValueError("rewards has an infinite value")
    return nanstd(rewards.view(-1, num_generations), dim=1)


def rlpr_std_filter(rewards: torch.Tensor, num_generations: int, threshold: float) -> torch.Tensor:
    """RLPR's standard-deviation filter: keep a prompt when its group reward std is >= threshold.

        keep_p = std(R_{p,1..G}) >= beta_t

    Prompts whose rewards barely differ (too easy or too hard) carry little signal and high relative
    noise. A group whose std is undefined (fewer than two finite rewards) is dropped. What happens to
    the dropped prompts (advantage 0, or a refilled batch) is the trainer's concern.

    Shapes: rewards ``(B,)`` -> ``(P,)`` bool.
    """
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
    std = group_reward_std(rewards, num_generations)
    return torch.nan_to_num(std, nan=-1.0) >= threshold


def update_std_threshold(
    group_stds: torch.Tensor,
    previous_ema: float | None,
    *,
    ema_ratio: float = 0.99,
    beta: float = 0.5,
) -> tuple[float, float]:
    """The EMA-adaptive threshold of RLPR's std filter.

        m_t     = mean over prompts of std_p        (NaN / inf stds left out)
        ema_t   = m_t                                if there is no previous EMA
                = ema_ratio * ema_{t-1} + (1 - ema_ratio) * m_t   otherwise
        beta_t  = beta * ema_t

    Returns ``(ema_t, beta_t)``. Update once per step with that step's stds and apply the threshold to
    the *next* step's prompts (so call ``rlpr_std_filter`` with the previous threshold, then this); any
    warm-up of the EMA before filtering is a trainer concern. Defaults: ema_ratio 0.99, beta 0.5 (RLPR's
    values for Qwen models; docs/methods.md lists the others). A step with no finite std leaves the EMA
    unchanged.

    Shapes: group_stds ``(P,)``; scalars out.
    """
    check_tensor("group_stds", group_stds, 1)
    if not 0.0 <= ema_ratio < 1.0:
        raise ValueError(f"ema_ratio must be in [0, 1), got {ema_ratio}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if previous_ema is not None and not (math.isfinite(previous_ema) and previous_ema >= 0):
        raise ValueError(f"previous_ema must be None or a finite number >= 0, got {previous_ema}")
    finite = group_stds[torch.isfinite(group_stds)]
    if finite.numel() == 0:
        if previous_ema is None:
            raise ValueError("group_stds has no finite value and there is no previous_ema to keep")
        ema = previous_ema
    else:
        if bool((finite < 0).any()):
            raise ValueError("group_stds has a negative value")
        step_mean = float(finite.double().mean())
        ema = step_mean if previous_ema is None else ema_ratio * previous_ema + (1.0 - ema_ratio) * step_mean
    return ema, beta * ema
