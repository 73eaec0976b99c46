"""ProGRPO: advantage re-weighting by prompt confidence minus answer confidence (docs/methods.md, 4).

Source: Li, Goncharova, Kuznetsov, Oseledets, "Back to Basics: Revisiting Exploration in Reinforcement
Learning for LLM Reasoning via Generative Probabilities", arXiv:2602.05281 (the Advantage Re-weighting
Mechanism, ARM). The re-weighting equation and the low-probability-token normalisation follow the
abstract and published summaries of the paper; the exact confidence definitions are marked [ours] and
are knobs (docs/methods.md, 4).
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_fraction, check_same_shape, check_tensor
from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages

ProgApplyTo = Literal["all", "correct"]
PROG_APPLY_TO: tuple[str, ...] = typing.get_args(ProgApplyTo)


def low_probability_confidence(
    token_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    low_prob_fraction: float = 0.2,
) -> torch.Tensor:
    """Confidence of a sequence from its least likely tokens.

        T_low(i) = the ceil(rho * n_i) valid tokens of row i with the lowest log p (n_i valid tokens)
        c_i      = exp( (1/|T_low(i)|) sum_{t in T_low(i)} log p_{i,t} )          in (0, 1]

    ProGRPO's "low-probability token length normalisation": most reasoning tokens are near-certain,
    and averaging over them dilutes the signal, so the mean runs over the ~20% least likely tokens.
    ``low_prob_fraction=1`` gives the plain geometric-mean probability (inverse perplexity). Exactly
    ceil(rho * n_i) tokens are used (ties broken by position) [ours]. A row with no valid token gets NaN.

    Shapes: token_logps, mask ``(N, L)`` -> ``(N,)``, float32 at least.
    """
    check_fraction("low_prob_fraction", low_prob_fraction, allow_zero=False)
    check_tensor("token_logps", token_logps, 2)
    check_same_shape("token_logps", token_logps, mask=mask)
    valid = as_bool_mask("mask", mask)
    check_finite("token_logps", token_logps, valid)
    logps = token_logps if token_logps.dtype == torch.float64 else token_logps.float()
    if bool((logps.masked_fill(~valid, 0.0) > 0).any()):
        raise ValueError("token_logps must be log-probabilities (<= 0) at valid positions")

    count = valid.sum(dim=1)
    keep = torch.ceil(count.to(torch.float64) * low_prob_fraction - 1e-9).clamp(min=1).to(torch.long)
    # Padded positions sort last (+inf), so the first keep_i entries of the ascending order are the
    # keep_i least likely valid tokens; a stable sort breaks ties by position.
    ordered = torch.sort(logps.masked_fill(~valid, math.inf), dim=1, stable=True).values
    rank = torch.arange(logps.shape[1], device=logps.device)[None, :]
    selected = rank < keep[:, None]
    mean_low = torch.where(selected, ordered, torch.zeros_like(ordered)).sum(dim=1) / keep.to(logps.dtype)
    confidence = mean_low.exp()
    return torch.where(count > 0, confidence, torch.full_like(confidence, math.nan))


def prog_advantages(
    rewards: torch.Tensor,
    answer_confidence: torch.Tensor,
    prompt_confidence: torch.Tensor,
    num_generations: int,
    *,
    alpha: float = 0.1,
    apply_to: ProgApplyTo = "all",
    skip_all_correct: bool = False,
    correct_threshold: float = 0.5,
    scale: RewardScale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """ARM: GRPO advantages shifted by prompt confidence minus answer confidence.

        A~_i = A_i                                   if no rollout of the group is correct
        A~_i = A_i + alpha * ( c(q) - c(o_i | q) )   otherwise

    A_i is GRPO's advantage (``group_advantages``); c(o_i | q) is the confidence of rollout i's
    completion (``low_probability_confidence`` over its token log-probs) and c(q) the prompt's confidence
    (the same over the prompt tokens' log-probs: "prompt perplexity"). An over-confident path
    (c(o|q) > c(q)) has its reinforcement reduced, an under-explored correct one boosted; c(q) acts as a
    per-prompt reference level. Both confidences come from the rollout policy, without gradient.

    Knobs where the public summaries disagree or are silent [ours]: ``apply_to="correct"`` shifts only
    correct rollouts ("equilibrate the confidence levels across all correct responses"), "all" (default)
    every rollout of an active group as the summarised equation reads; ``skip_all_correct=True`` also
    leaves all-correct groups unshifted (one summary says ARM is off for any zero-variance group);
    ``alpha`` default 0.1 [ours]. Correct means reward >= ``correct_threshold``; NaN rewards are neither
    and keep GRPO's 0. A row whose confidence is NaN (no valid token) is not shifted.

    Shapes: rewards, answer_confidence ``(B,)``; prompt_confidence ``(P,)`` (one per group) or ``(B,)``
    (one per rollout), with B = P * num_generations -> ``(B,)``.
    """
    if apply_to not in PROG_APPLY_TO:
        raise ValueError(f"apply_to must be one of {PROG_APPLY_TO}, got {apply_to!r}")
    if scale not in REWARD_SCALES:
        raise ValueError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    check_tensor("rewards", rewards, 1)
    check_tensor("answer_confidence", answer_confidence, 1)
    check_same_shape("rewards", rewards, answer_confidence=answer_confidence)
    check_tensor("prompt_confidence", prompt_confidence, 1)
    advantages = group_advantages(rewards, num_generations, scale=scale, eps=eps)
    if prompt_confidence.shape[0] * num_generations == rewards.shape[0]:
        per_row_prompt = prompt_confidence.repeat_interleave(num_generations)
    elif prompt_confidence.shape[0] == rewards.shape[0]:
        per_row_prompt = prompt_confidence  # one per rollout (the same prompt repeated across its group)
    else:
        raise ValueError(
            f"prompt_confidence has {prompt_confidence.shape[0]} rows; expected one per group "
            f"({rewards.shape[0] // max(num_generations, 1)}) or one per rollout ({rewards.shape[0]})"
        )
    for name, value in (("answer_confidence", answer_confidence), ("prompt_confidence", prompt_confidence)):
        present = value[~torch.isnan(value)]
        if bool(((present < 0) | (present > 1)).any()):
            raise ValueError(f"{name} must be in [0, 1] (NaN allowed for rows without tokens)")

    grouped = rewards.view(-1, num_generations)
    correct = grouped >= correct_threshold  # NaN compares False: unscorable rows are not correct
    active = correct.any(dim=1)
    if skip_all_correct:
        active &= ~correct.all(dim=1)
    shifted = active[:, None].expand_as(grouped) & ~torch.isnan(grouped)
    if apply_to == "correct":
        shifted = shifted & correct
    shift = alpha * (per_row_prompt.to(advantages.dtype) - answer_confidence.to(advantages.dtype)).view_as(grouped)
    shifted = shifted & ~torch.isnan(shift)
    return advantages + torch.where(shifted, shift, torch.zeros_like(shift)).reshape(-1).to(advantages.dtype)
