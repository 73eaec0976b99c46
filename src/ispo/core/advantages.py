"""Group-relative advantages, as TRL's GRPOTrainer computes them (docs/algorithm.md, Eq. 8)."""

from __future__ import annotations

import typing
from typing import Literal

import torch

from ispo.core._checks import check_groups, check_tensor

RewardScale = Literal["group", "batch", "none"]
REWARD_SCALES: tuple[str, ...] = typing.get_args(RewardScale)


def nanstd(values: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Unbiased standard deviation ignoring NaNs; NaN where fewer than two values are present."""
    if dim is None:
        values, dim = values.reshape(-1), 0
    mean = torch.nanmean(values, dim=dim, keepdim=True)
    count = (~torch.isnan(values)).sum(dim=dim, keepdim=True)
    squared = torch.nanmean((values - mean) ** 2, dim=dim, keepdim=True)
    variance = squared * count / (count - 1).clamp(min=1)
    variance = torch.where(count > 1, variance, torch.full_like(variance, float("nan")))
    std = variance.sqrt()
    return std if keepdim else std.squeeze(dim)


def group_advantages(
    rewards: torch.Tensor,
    num_generations: int,
    *,
    scale: RewardScale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """A_i = (R_i - mean_group(R)) / (std(R) + eps), with TRL's options for the std.

    Matches TRL 1.16 ``GRPOTrainer`` ("sum_then_normalize"): the baseline is always the group mean;
    ``scale="group"`` divides by the group's std, ``"batch"`` by the whole batch's std, ``"none"`` does
    not divide. Stds are unbiased and NaN-aware; NaN rewards (unscorable rollouts) are left out of the
    statistics and get advantage 0, as does any row whose statistics are undefined.

    Shapes: rewards ``(B,)`` with B = P * num_generations, consecutive rows forming a group
    -> ``(B,)``.
    """
    check_tensor("rewards", rewards, 1)
    if scale not in REWARD_SCALES:
        raise ValueError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    check_groups("rewards", rewards.numel(), num_generations)
    if bool(torch.isinf(rewards).any()):
        raise ValueError("rewards has an infinite value")

    grouped = rewards.view(-1, num_generations)  # (P, G)
    group_mean = torch.nanmean(grouped, dim=1, keepdim=True)  # (P, 1)
    advantages = (grouped - group_mean).reshape(-1)
    if scale == "group":
        std = nanstd(grouped, dim=1, keepdim=True) if num_generations > 1 else torch.zeros_like(group_mean)
        advantages = advantages / (std.expand_as(grouped).reshape(-1) + eps)
    elif scale == "batch":
        std = nanstd(rewards) if rewards.numel() > 1 else torch.zeros((), dtype=rewards.dtype)
        advantages = advantages / (std + eps)
    return torch.nan_to_num(advantages, nan=0.0)
