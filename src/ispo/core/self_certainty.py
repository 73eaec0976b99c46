"""Self-certainty (Intuitor): KL from the uniform distribution to the next-token distribution (docs/methods.md, 1).

Source: Zhao, Kang, Feng, Levine, Song, "Learning to Reason without External Rewards", arXiv:2505.19590.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_same_shape, check_tensor
from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages

SelfCertaintyMode = Literal["replace", "add"]
SELF_CERTAINTY_MODES: tuple[str, ...] = typing.get_args(SelfCertaintyMode)
SelfCertaintyCombine = Literal["advantages", "rewards"]
SELF_CERTAINTY_COMBINES: tuple[str, ...] = typing.get_args(SelfCertaintyCombine)


def token_self_certainty(logits: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Per-position self-certainty KL(U || p) from full-vocabulary logits.

        z = logits / temperature,  p = softmax(z)
        KL(U || p) = sum_j (1/|V|) log((1/|V|) / p_j) = -log|V| - (1/|V|) sum_j log p_j
                   = logsumexp(z) - mean_j z_j - log|V|

    The paper's definition (arXiv:2505.19590, eq. for Self-certainty(o|q)). ``logsumexp(z) - mean(z)``
    alone would be this value plus the constant log|V|, which group standardisation removes; keeping the
    constant out makes the value a true KL: >= 0, and 0 exactly for a uniform distribution. Pass the
    temperature the loss uses, so that the statistic describes the distribution being trained.

    A logit of -inf (a masked vocabulary entry) makes the KL +inf, as the definition says (p_j = 0); mask
    such entries out of the vocabulary before calling, or use ``self_certainty_from_mean_log_prob`` with
    the statistics over the entries you keep.

    Shapes: logits ``(..., V)`` -> ``(...)``, float32 (computed in float32 whatever the input dtype).
    The trainer can call it on chunks of positions to bound memory.
    """
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() < 1 or logits.shape[-1] < 2:
        raise ValueError(f"logits must have a vocabulary dimension of size >= 2, got shape {tuple(logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = logits.float() / temperature
    # Shifting by the max changes neither term's difference and keeps both small, so a uniform row
    # gives log|V| - 0 - log|V| without cancellation error.
    scaled = scaled - scaled.amax(dim=-1, keepdim=True).detach()
    kl = torch.logsumexp(scaled, dim=-1) - scaled.mean(dim=-1) - math.log(logits.shape[-1])
    # KL >= 0 exactly; float rounding of the two large terms can leave ~1e-7 below zero.
    return kl.clamp(min=0.0)


def self_certainty_from_mean_log_prob(mean_log_prob: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Self-certainty from the per-position mean log-probability over the vocabulary.

        KL(U || p) = -log|V| - m,   m = (1/|V|) sum_j log p_j

    For trainers that reduce the logits to m themselves (chunked, or fused with the entropy pass). m is at
    most -log|V| (Jensen), so the result is >= 0 up to rounding, which is clamped away.

    Shapes: mean_log_prob any -> same.
    """
    if not isinstance(mean_log_prob, torch.Tensor):
        raise ValueError(f"mean_log_prob must be a torch.Tensor, got {type(mean_log_prob).__name__}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    return (-math.log(vocab_size) - mean_log_prob).clamp(min=0.0)


def sequence_self_certainty(token_certainty: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Self-certainty(o | q) = (1/|o|) sum_t KL(U || pi(. | q, o_<t)), the mean over completion tokens.

    Position t is the distribution that predicted completion token t (the same alignment as the
    per-token log-probs). A row with no completion token gets 0.

    Shapes: token_certainty, completion_mask ``(B, T)`` -> ``(B,)``.
    """
    check_tensor("token_certainty", token_certainty, 2)
    check_same_shape("token_certainty", token_certainty, completion_mask=completion_mask)
    mask = as_bool_mask("completion_mask", completion_mask)
    check_finite("token_certainty", token_certainty, mask)
    total = torch.where(mask, token_certainty, torch.zeros_like(token_certainty)).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1)


def self_certainty_advantages(
    self_certainty: torch.Tensor,
    num_generations: int,
    *,
    mode: SelfCertaintyMode = "replace",
    outcome: torch.Tensor | None = None,
    weight: float = 1.0,
    combine: SelfCertaintyCombine = "advantages",
    scale: RewardScale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """Intuitor's advantages from sequence self-certainty, alone or beside the outcome.

        mode="replace":                      A_i = z_g(SC)_i
        mode="add", combine="advantages":   A_i = z_g(R_o)_i + weight * z_g(SC)_i
        mode="add", combine="rewards":      A_i = z_g(R_o + weight * z_g(SC))_i

    z_g is ``group_advantages`` (group mean, std per ``scale``, ``eps``). "replace" is Intuitor (no
    verifier). "add" with combine="advantages" and weight 1 is Intuitor with a verifier beside it (the
    two terms standardised separately, then added); combine="rewards" [ours] adds the group-standardised
    self-certainty to the reward before GRPO's normalisation instead. The self-certainty term is always
    standardised per group, whatever the outcome's ``scale``. NaN outcomes (unscorable rollouts) follow
    ``group_advantages``: left out of the statistics, outcome part 0.

    Shapes: self_certainty, outcome ``(B,)`` with B = P * num_generations -> ``(B,)``.
    """
    if mode not in SELF_CERTAINTY_MODES:
        raise ValueError(f"mode must be one of {SELF_CERTAINTY_MODES}, got {mode!r}")
    if combine not in SELF_CERTAINTY_COMBINES:
        raise ValueError(f"combine must be one of {SELF_CERTAINTY_COMBINES}, got {combine!r}")
    if scale not in REWARD_SCALES:
        raise ValueError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    check_tensor("self_certainty", self_certainty, 1)
    check_finite("self_certainty", self_certainty)
    if mode == "replace":
        if outcome is not None:
            raise ValueError("outcome must be None when mode='replace' (self-certainty is the only reward)")
        return group_advantages(self_certainty, num_generations, scale=scale, eps=eps)

    if outcome is None:
        raise ValueError("outcome is required when mode='add'")
    check_tensor("outcome", outcome, 1)
    check_same_shape("self_certainty", self_certainty, outcome=outcome)
    if not math.isfinite(weight):
        raise ValueError(f"weight must be finite, got {weight}")
    standardised = group_advantages(self_certainty, num_generations, scale="group", eps=eps)
    if combine == "advantages":
        return group_advantages(outcome, num_generations, scale=scale, eps=eps) + weight * standardised
    return group_advantages(outcome + weight * standardised, num_generations, scale=scale, eps=eps)
