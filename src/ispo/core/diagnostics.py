"""Reductions behind the training-dynamics diagnostics (spec section 4)."""

from __future__ import annotations

import torch

from ispo.core._checks import check_tensor


def group_is_constant(values: torch.Tensor, num_generations: int, *, atol: float = 1e-6) -> torch.Tensor:
    """True for each group whose non-NaN values are all equal within ``atol``.

    ``zero_adv_rate/outcome`` is its mean over outcome rewards, ``zero_adv_rate/composite`` over
    composite advantages. A group with no finite value counts as constant (it teaches nothing).

    Shapes: values ``(B,)`` with B = P * num_generations -> ``(P,)`` bool.
    """
    check_tensor("values", values, 1)
    if num_generations < 1 or values.numel() % num_generations != 0:
        raise ValueError(f"values has {values.numel()} rows, which does not divide into groups of {num_generations}")
    grouped = values.view(-1, num_generations)
    present = ~torch.isnan(grouped)
    high = torch.where(present, grouped, torch.full_like(grouped, -float("inf"))).amax(dim=1)
    low = torch.where(present, grouped, torch.full_like(grouped, float("inf"))).amin(dim=1)
    spread = torch.where(present.any(dim=1), high - low, torch.zeros_like(high))
    return spread <= atol
