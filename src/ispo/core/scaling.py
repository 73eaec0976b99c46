"""Variants under study: how the composite reward is normalised inside groups (docs/algorithm.md, variants [ours]).

``intrinsic_advantages`` turns the composite reward R of Eq. 8 (outcome R_o plus the intrinsic terms)
into one advantage per rollout. ``scale="group"`` is the paper's / TRL's choice and the default; the
other scales ([ours], off by default) change how much weight the intrinsic terms get in groups whose
outcomes are all equal (where GRPO's advantage is 0 and the group std is only the intrinsic terms'
spread).
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import check_groups, check_tensor
from ispo.core.advantages import group_advantages, nanstd

IntrinsicScale = Literal["group", "none", "outcome_floor", "decoupled"]
INTRINSIC_SCALES: tuple[str, ...] = typing.get_args(IntrinsicScale)

DECOUPLED_BETA = 0.2
DECOUPLED_CLIP = 3.0

# In exact arithmetic a mixed 0/1 group has std >= 1/sqrt(G); the computed std can land a few float32
# ulps below (measured: at most 4e-7 relative up to G = 2048), which would make the floor act on a
# mixed group and break bit-for-bit GRPO at weights 0. A std this far (relative) below sigma_G is kept
# as it is: far below the effect of eps (1e-4 absolute on a std of ~0.3).
_FLOOR_SLACK = 1e-5


def outcome_std_floor(num_generations: int) -> float:
    """sigma_G: the unbiased std of a 0/1 group of G rollouts with exactly one success.

    mean = 1/G, sum of squared deviations = (1 - 1/G)^2 + (G - 1)/G^2 = (G - 1)/G, so the unbiased
    variance is 1/G and sigma_G = 1/sqrt(G) exactly. It is also the smallest std of any mixed 0/1
    group of at most G scorable rollouts: with k successes among n, the variance is
    k(n - k)/(n(n - 1)) >= 1/n >= 1/G (docs/algorithm.md, variants [ours]).
    """
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    return 1.0 / math.sqrt(num_generations)


def min_outcome_advantage_gap(num_generations: int, *, eps: float = 1e-4) -> float:
    """The smallest gap between a correct and an incorrect GRPO advantage inside a mixed 0/1 group.

    With k correct among n scorable rollouts, TRL's group-scaled advantages are (1 - k/n)/(s + eps)
    and -(k/n)/(s + eps), s = sqrt(k(n - k)/(n(n - 1))): the gap is 1/(s + eps). Unscorable (NaN)
    rollouts shrink n anywhere from G down to 2, and s is largest at n = 2, k = 1 (s = 1/sqrt(2)), so
    for every G >= 2 the gap is 1/(1/sqrt(2) + eps) ~= 1.4141. A group without unscorable rollouts has
    the larger gap 1/(s_G + eps), s_G = sqrt(floor(G/2) ceil(G/2) / (G(G - 1))), but the guarantee of
    ``intrinsic_advantages(scale="decoupled")`` must hold whatever the NaN pattern.

    Returns ``inf`` for G = 1 (no group can be mixed). docs/algorithm.md, variants [ours].
    """
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    largest_std = 0.0
    for n in range(2, num_generations + 1):
        for k in range(1, n):
            largest_std = max(largest_std, math.sqrt(k * (n - k) / (n * (n - 1))))
    return math.inf if num_generations == 1 else 1.0 / (largest_std + eps)


def intrinsic_advantages(
    outcome: torch.Tensor,
    composite: torch.Tensor,
    num_generations: int,
    *,
    scale: IntrinsicScale = "group",
    eps: float = 1e-4,
    beta: float = DECOUPLED_BETA,
    clip: float = DECOUPLED_CLIP,
) -> torch.Tensor:
    """One advantage per rollout from the composite reward R, normalised inside groups by ``scale``.

    With m_g, s_g the NaN-aware mean and unbiased std of R over group g (docs/algorithm.md, variants [ours]):

        "group":          A_i = (R_i - m_g) / (s_g + eps)                          (paper, TRL; default)
        "none":           A_i =  R_i - m_g                                          (Dr.GRPO)
        "outcome_floor":  A_i = (R_i - m_g) / (max(s_g, sigma_G) + eps),  sigma_G = 1/sqrt(G)
        "decoupled":      A_i = GRPO_i + beta * clip(z_i, -clip, clip)
                          GRPO_i = (R_o,i - mean_g R_o) / (std_g R_o + eps)
                          z_i = (I_i - mean_g I) / (std_batch(I - mean_g I) + eps),  I = R - R_o

    ``"group"`` and ``"none"`` are ``group_advantages(composite, scale=...)``. ``"outcome_floor"``
    divides mixed groups as GRPO does (a mixed 0/1 group has s_g >= sigma_G, see
    ``outcome_std_floor``) while a uniform group, whose std is only the intrinsic spread, keeps
    advantages of the intrinsic terms' size instead of being blown up to unit scale. A std at most 1e-5
    (relative) below sigma_G counts as >= sigma_G, so that float rounding of a mixed group's std never
    triggers the floor.
    ``"decoupled"`` adds a batch-standardised, clipped intrinsic bonus to the outcome's GRPO advantage.

    Guarantees (0/1 outcome):

    - weights 0 (composite == outcome): "group", "outcome_floor" and "decoupled" equal
      ``group_advantages(outcome, scale="group")`` and "none" equals ``scale="none"``, bit for bit
      (float32/float64): uniform groups give 0 under every scale, and mixed groups keep their own std
      under "outcome_floor" because it is >= sigma_G.
    - order within a group: "group", "none" and "outcome_floor" apply one increasing affine map per
      group, so the advantages keep the order of R. Whether R keeps the outcome's order is not
      guaranteed: the intrinsic terms of Eq. 8 are unbounded (raw IFD; log p unbounded below), so a
      correct rollout can fall below an incorrect one (``dominance_violations`` measures how often).
    - "decoupled", for any weights and any intrinsic values, moves each advantage by at most
      beta * clip, and a correct and an incorrect GRPO advantage differ by at least
      ``min_outcome_advantage_gap(G, eps)`` = 1/(1/sqrt(2) + eps), so 2 * beta * clip below that gap
      keeps every correct rollout above every incorrect one; this function raises ValueError otherwise.
    - uniform groups (all R_o equal) whose intrinsic terms span an interval of width W (the realised
      spread; no a priori bound exists): |A_i| <= W under "none", |A_i| <= W sqrt(G) under
      "outcome_floor", |A_i| <= beta * clip under "decoupled"; "group" has no such bound (unit-scale
      advantages, up to (n - 1)/sqrt(n)).
    - zero sum over each group's scorable rows for "group", "none" and "outcome_floor"; for
      "decoupled" only while no z_i is clipped.

    NaN outcomes (unscorable rollouts) are left out of every statistic and get advantage 0, as in
    ``group_advantages``; the composite is ignored on those rows.

    Args:
        outcome: ``(B,)`` R_o (0/1 for the guarantees), NaN where unscorable.
        composite: ``(B,)`` R from ``composite_reward``; must be finite where ``outcome`` is not NaN.
        num_generations: G; B = P * G with consecutive rows forming a group.
        scale: one of ``INTRINSIC_SCALES``.
        eps: added to every std before dividing (TRL's 1e-4).
        beta, clip: the "decoupled" bonus weight and clip level (ignored by the other scales).

    Returns:
        ``(B,)`` advantages.
    """
    if scale not in INTRINSIC_SCALES:
        raise ValueError(f"scale must be one of {INTRINSIC_SCALES}, got {scale!r}")
    check_tensor("outcome", outcome, 1)
    check_tensor("composite", composite, 1)
    if composite.shape != outcome.shape:
        raise ValueError(f"composite has shape {tuple(composite.shape)} but outcome has shape {tuple(outcome.shape)}")
    check_groups("outcome", outcome.numel(), num_generations)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if bool(torch.isinf(outcome).any()):
        raise ValueError("outcome has an infinite value")
    scorable = ~torch.isnan(outcome)
    if not bool(torch.isfinite(composite[scorable]).all()):
        raise ValueError("composite has a non-finite value on a row whose outcome is not NaN")
    # Unscorable rows: NaN, so every nan-aware statistic leaves them out (a no-op for composite_reward's
    # output, which already carries the outcome's NaN).
    reward = torch.where(scorable, composite, torch.full_like(composite, float("nan")))

    if scale in ("group", "none"):
        return group_advantages(reward, num_generations, scale=scale, eps=eps)
    if scale == "outcome_floor":
        return _outcome_floor_advantages(reward, num_generations, eps)

    if beta < 0 or clip < 0:
        raise ValueError(f"beta and clip must be >= 0, got beta={beta}, clip={clip}")
    gap = min_outcome_advantage_gap(num_generations, eps=eps)
    if not 2 * beta * clip < gap:
        raise ValueError(
            f"beta={beta} and clip={clip} break outcome dominance: 2 * beta * clip = {2 * beta * clip:.4g} must be "
            f"below the smallest correct/incorrect GRPO advantage gap {gap:.4g} (docs/algorithm.md, variants)"
        )
    outcome_advantages = group_advantages(outcome, num_generations, scale="group", eps=eps)
    if beta == 0 or clip == 0:
        return outcome_advantages
    intrinsic = (reward - outcome).view(-1, num_generations)  # (P, G), NaN on unscorable rows
    centred = (intrinsic - torch.nanmean(intrinsic, dim=1, keepdim=True)).reshape(-1)
    batch_std = nanstd(centred) if centred.numel() > 1 else torch.zeros((), dtype=centred.dtype)
    standardised = torch.nan_to_num(centred / (batch_std + eps), nan=0.0)
    return outcome_advantages + beta * standardised.clamp(-clip, clip)


def _outcome_floor_advantages(rewards: torch.Tensor, num_generations: int, eps: float) -> torch.Tensor:
    """(R - m_g) / (max(s_g, sigma_G) + eps), written with ``group_advantages``' exact ops."""
    grouped = rewards.view(-1, num_generations)  # (P, G)
    group_mean = torch.nanmean(grouped, dim=1, keepdim=True)
    deviations = (grouped - group_mean).reshape(-1)
    floor = outcome_std_floor(num_generations)
    std = nanstd(grouped, dim=1, keepdim=True) if num_generations > 1 else torch.zeros_like(group_mean)
    # A std within the slack below sigma_G is a mixed group's (rounding) and is kept. A group with one
    # scorable rollout has NaN std and deviation 0; the floor makes its advantage 0 without NaN -> 0.
    denominator = torch.where(std >= floor * (1 - _FLOOR_SLACK), std, torch.full_like(std, floor))
    advantages = deviations / (denominator.expand_as(grouped).reshape(-1) + eps)
    return torch.nan_to_num(advantages, nan=0.0)
