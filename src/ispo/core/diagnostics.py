"""Reductions behind the training-dynamics diagnostics (docs/algorithm.md, diagnostics)."""

from __future__ import annotations

import torch

from ispo.core._checks import check_groups, check_same_shape, check_tensor


def group_is_constant(values: torch.Tensor, num_generations: int, *, atol: float = 1e-6) -> torch.Tensor:
    """True for each group whose non-NaN values are all equal within ``atol``.

    ``zero_adv_rate/outcome`` is its mean over outcome rewards, ``zero_adv_rate/composite`` over
    composite advantages. A group with no finite value counts as constant (it teaches nothing).

    Shapes: values ``(B,)`` with B = P * num_generations -> ``(P,)`` bool.
    """
    check_tensor("values", values, 1)
    check_groups("values", values.numel(), num_generations)
    grouped = values.view(-1, num_generations)
    present = ~torch.isnan(grouped)
    high = torch.where(present, grouped, torch.full_like(grouped, -float("inf"))).amax(dim=1)
    low = torch.where(present, grouped, torch.full_like(grouped, float("inf"))).amin(dim=1)
    spread = torch.where(present.any(dim=1), high - low, torch.zeros_like(high))
    return spread <= atol


def zero_advantage_groups(
    advantages: torch.Tensor,
    num_generations: int,
    valid: torch.Tensor | None = None,
    *,
    atol: float = 1e-6,
) -> torch.Tensor:
    """True for each group whose advantages are all ~0 (``zero_adv_rate/composite``, docs/algorithm.md, diagnostics).

    Sequence advantages ``(B,)`` are centred per group, so "all ~0" is "constant"; per-token advantages
    ``(B, T)`` count as zero when every valid token's |A| is at most ``atol`` (``valid`` ``(B, T)`` bool,
    required for them).

    Shapes: advantages ``(B,)`` or ``(B, T)`` with B = P * num_generations -> ``(P,)`` bool.
    """
    if advantages.dim() == 1:
        return group_is_constant(advantages, num_generations, atol=atol)
    check_tensor("advantages", advantages, 2)
    if valid is None or tuple(valid.shape) != tuple(advantages.shape):
        raise ValueError("valid must be a (B, T) mask shaped like per-token advantages")
    check_groups("advantages", advantages.size(0), num_generations)
    largest = torch.where(valid.bool(), advantages.abs(), torch.zeros_like(advantages)).amax(dim=1)  # (B,)
    return (largest.view(-1, num_generations) <= atol).all(dim=1)


def dominance_violations(outcome: torch.Tensor, composite: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Share of mixed groups whose composite reward does not keep the outcome's order (``dominance/violations``).

    The paper states (docs/algorithm.md, Eq. 8) that in a mixed group the intrinsic terms refine the
    ranking without overturning the outcome, but does not enforce it; with raw IFD they can. This
    measures how often they do:

        mixed group:  its scorable outcomes are not all equal (``~group_is_constant``, NaN ignored)
        violation:    some scorable rollout i with R_o,i < R_o,j has R_i >= R_j
                      (0/1 outcomes: some incorrect rollout's composite >= some correct one's)
        result:       violations / mixed groups; NaN when there is no mixed group

    A tie counts as a violation: the composite no longer separates the two outcomes. With both weights
    0 (composite == outcome) the result is 0 whenever a mixed group exists.

    Shapes: outcome, composite ``(B,)`` with B = P * num_generations -> 0-dim float tensor (composite's
    dtype). ``composite`` must be finite where ``outcome`` is not NaN; other rows are not read.
    """
    check_tensor("outcome", outcome, 1)
    check_tensor("composite", composite, 1)
    check_same_shape("outcome", outcome, composite=composite)
    check_groups("outcome", outcome.numel(), num_generations)
    scorable = ~torch.isnan(outcome)
    if not bool(torch.isfinite(composite[scorable]).all()):
        raise ValueError("composite has a non-finite value on a row whose outcome is not NaN")
    out_dtype = composite.dtype if composite.is_floating_point() else torch.get_default_dtype()
    grouped_outcome = outcome.view(-1, num_generations)  # (P, G)
    grouped_reward = composite.view(-1, num_generations)
    # below[p, i, j]: rollout i has a strictly lower outcome than rollout j (false when either is NaN)
    below = grouped_outcome[:, :, None] < grouped_outcome[:, None, :]  # (P, G, G)
    not_above = grouped_reward[:, :, None] >= grouped_reward[:, None, :]
    violated = (below & not_above).any(dim=2).any(dim=1)  # (P,)
    mixed = ~group_is_constant(outcome, num_generations)
    count = mixed.sum()
    share = (violated & mixed).sum().to(out_dtype) / count.clamp(min=1).to(out_dtype)
    return torch.where(count > 0, share, torch.full_like(share, float("nan")))
