"""Reductions behind the training-dynamics diagnostics (docs/algorithm.md §4)."""

from __future__ import annotations

import torch

from ispo.core._checks import check_groups, check_tensor


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
    """True for each group whose advantages are all ~0 (``zero_adv_rate/composite``, docs/algorithm.md §4).

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
