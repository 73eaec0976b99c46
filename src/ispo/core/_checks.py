"""Input validation shared by the core functions: errors name the offending argument."""

from __future__ import annotations

import torch


def as_bool_mask(name: str, mask: torch.Tensor) -> torch.Tensor:
    """Accept bool or 0/1 integer (or float) masks; anything else is a caller bug."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must be a bool or 0/1 mask")
    return mask != 0


def check_tensor(name: str, tensor: torch.Tensor, ndim: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(tensor.shape)}")


def check_same_shape(reference_name: str, reference: torch.Tensor, **others: torch.Tensor) -> None:
    for name, tensor in others.items():
        if tuple(tensor.shape) != tuple(reference.shape):
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} but {reference_name} has shape {tuple(reference.shape)}"
            )


def check_groups(name: str, rows: int, num_generations: int) -> None:
    """Rows form consecutive groups of ``num_generations`` rollouts (docs/algorithm.md, Eq. 8)."""
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    if rows % num_generations != 0:
        raise ValueError(f"{name} has {rows} rows, which does not divide into groups of {num_generations}")


def check_finite(name: str, tensor: torch.Tensor, where: torch.Tensor | None = None) -> None:
    """Raise when ``tensor`` holds NaN/inf at positions where ``where`` is true (everywhere if None)."""
    finite = torch.isfinite(tensor)
    if bool(finite.all()):  # the common case, one reduction
        return
    if where is not None:
        finite.logical_or_(~where)
    if not bool(finite.all()):
        index = tuple(int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"{name} has a non-finite value at a valid position {index}")


def check_fraction(name: str, value: float, *, allow_zero: bool = True) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        raise ValueError(f"{name} must be in {'[0, 1]' if allow_zero else '(0, 1]'}, got {value}")
