"""Composite reward: outcome plus the intrinsic signals (docs/algorithm.md, Eq. 8)."""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.diagnostics import group_is_constant
from ispo.core.paper import LAMBDA_IFD, LAMBDA_TOK

IntrinsicGroups = Literal["all", "mixed", "uniform"]
INTRINSIC_GROUPS: tuple[str, ...] = typing.get_args(IntrinsicGroups)


def composite_reward(
    outcome: torch.Tensor,
    ifd: torch.Tensor,
    token_reward: torch.Tensor,
    *,
    lambda_ifd: float = LAMBDA_IFD,
    lambda_tok: float = LAMBDA_TOK,
    outcome_conditioned: bool = True,
    intrinsic_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The composite reward of docs/algorithm.md, Eq. 8:

        R_i = R_o,i + lambda_ifd * (2 R_o,i - 1) * IFD_i + lambda_tok * R_token,i

    IFD enters raw and linear (no bounding function), so nothing keeps the intrinsic terms below the
    outcome's unit gap: with the paper's weights a large IFD can reorder a correct and an incorrect
    rollout (measure it with ``dominance_violations``). With ``outcome_conditioned=False``
    (reference-answer IFD, [ours]) the sign is dropped: R_i = R_o,i + lambda_ifd * IFD_i + lambda_tok * R_token,i.

    The sign uses R_o clipped to [0, 1], so a host reward outside that range (weighted reward
    functions) cannot flip or inflate the IFD term. NaN outcomes (unscorable rollouts) stay NaN so that
    ``group_advantages`` leaves them out of the group baseline, as TRL does. With both weights 0 the
    outcome is returned unchanged (bit for bit), which is what makes ISPO reproduce GRPO exactly.

    ``intrinsic_mask`` (``intrinsic_group_mask``, docs/algorithm.md, variants [ours]) restricts the
    intrinsic terms to the rows where it is true: elsewhere R_i = R_o,i bit for bit. None (the default)
    means every row.

    Shapes: outcome, ifd, token_reward, intrinsic_mask ``(B,)`` -> ``(B,)``.
    """
    check_tensor("outcome", outcome, 1)
    check_same_shape("outcome", outcome, ifd=ifd, token_reward=token_reward)
    for name, weight in (("lambda_ifd", lambda_ifd), ("lambda_tok", lambda_tok)):
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {weight}")
    if bool(torch.isinf(outcome).any()):
        raise ValueError("outcome has an infinite value")
    check_finite("ifd", ifd)
    check_finite("token_reward", token_reward)
    if intrinsic_mask is not None:
        check_same_shape("outcome", outcome, intrinsic_mask=intrinsic_mask)
        intrinsic_mask = as_bool_mask("intrinsic_mask", intrinsic_mask)
    if lambda_ifd == 0 and lambda_tok == 0:
        return outcome.clone()

    ifd_term = ifd
    if outcome_conditioned:
        ifd_term = (2.0 * outcome.clamp(0.0, 1.0) - 1.0) * ifd
    composite = outcome + lambda_ifd * ifd_term + lambda_tok * token_reward
    if intrinsic_mask is None:
        return composite
    return torch.where(intrinsic_mask, composite, outcome)


def intrinsic_group_mask(outcome: torch.Tensor, num_generations: int, groups: IntrinsicGroups = "all") -> torch.Tensor:
    """Rows whose group receives the intrinsic terms (``intrinsic_groups``, docs/algorithm.md, variants [ours]).

        "all":     every row
        "mixed":   rows of groups whose scorable outcomes are not all equal (GRPO already has signal)
        "uniform": rows of groups whose scorable outcomes are all equal (Zero-Advantage Collapse)

    "Equal" is ``group_is_constant`` (within 1e-6, NaN outcomes ignored), the same test as the
    ``zero_adv_rate/outcome`` diagnostic; a group with no scorable rollout counts as uniform. Pass the
    result as ``composite_reward(..., intrinsic_mask=...)``.

    Shapes: outcome ``(B,)`` with B = P * num_generations -> ``(B,)`` bool.
    """
    if groups not in INTRINSIC_GROUPS:
        raise ValueError(f"groups must be one of {INTRINSIC_GROUPS}, got {groups!r}")
    check_tensor("outcome", outcome, 1)
    check_groups("outcome", outcome.numel(), num_generations)
    if groups == "all":
        return torch.ones_like(outcome, dtype=torch.bool)
    uniform = group_is_constant(outcome, num_generations).repeat_interleave(num_generations)  # (B,)
    return uniform if groups == "uniform" else ~uniform
