"""Composite reward: outcome plus the bounded intrinsic signals (docs/algorithm.md §3, §3b)."""

from __future__ import annotations

from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.diagnostics import group_is_constant

IntrinsicGroups = Literal["all", "mixed", "uniform"]
INTRINSIC_GROUPS: tuple[str, ...] = ("all", "mixed", "uniform")


def composite_reward(
    outcome: torch.Tensor,
    ifd: torch.Tensor,
    token_reward: torch.Tensor,
    *,
    lambda_ifd: float = 0.2,
    lambda_tok: float = 0.2,
    kappa: float | torch.Tensor = 2.0,
    outcome_conditioned: bool = True,
    intrinsic_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """R_i = R_o + lambda_ifd * (2 R_o - 1) * tanh(S_i / kappa) + lambda_tok * T_i.

    With ``outcome_conditioned=False`` (reference-answer IFD) the sign is dropped:
    R_i = R_o + lambda_ifd * tanh(S_i / kappa) + lambda_tok * T_i.

    The sign uses R_o clipped to [0, 1], so a host reward outside that range (weighted reward
    functions) cannot flip or inflate the IFD term. NaN outcomes (unscorable rollouts) stay NaN so that
    ``group_advantages`` leaves them out of the group baseline, as TRL does. With both weights 0 the
    outcome is returned unchanged (bit for bit), which is what makes ISPO reproduce GRPO exactly.

    ``kappa`` may be a 0-dim tensor (``auto_kappa``'s output). ``intrinsic_mask`` (docs/algorithm.md §3b,
    ``intrinsic_group_mask``) restricts the intrinsic terms to the rows where it is true: elsewhere
    R_i = R_o bit for bit. None (the default) means every row.

    Shapes: outcome, ifd, token_reward, intrinsic_mask ``(B,)`` -> ``(B,)``.
    """
    check_tensor("outcome", outcome, 1)
    check_same_shape("outcome", outcome, ifd=ifd, token_reward=token_reward)
    if not float(kappa) > 0:
        raise ValueError(f"kappa must be > 0, got {float(kappa)}")
    if bool(torch.isinf(outcome).any()):
        raise ValueError("outcome has an infinite value")
    check_finite("ifd", ifd)
    check_finite("token_reward", token_reward)
    if intrinsic_mask is not None:
        check_same_shape("outcome", outcome, intrinsic_mask=intrinsic_mask)
        intrinsic_mask = as_bool_mask("intrinsic_mask", intrinsic_mask)
    if lambda_ifd == 0 and lambda_tok == 0:
        return outcome.clone()

    bounded_ifd = torch.tanh(ifd / kappa)
    if outcome_conditioned:
        sign = 2.0 * outcome.clamp(0.0, 1.0) - 1.0
        bounded_ifd = sign * bounded_ifd
    composite = outcome + lambda_ifd * bounded_ifd + lambda_tok * token_reward
    if intrinsic_mask is None:
        return composite
    return torch.where(intrinsic_mask, composite, outcome)


def intrinsic_group_mask(outcome: torch.Tensor, num_generations: int, groups: IntrinsicGroups = "all") -> torch.Tensor:
    """Rows whose group receives the intrinsic terms (docs/algorithm.md §3b, ``intrinsic_groups``).

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
