"""Critical decision tokens: the entropy and drift filters (docs/algorithm.md §2)."""

from __future__ import annotations

import math
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_fraction, check_same_shape, check_tensor

CriticalMode = Literal["intersection", "entropy", "drift", "union"]
CRITICAL_MODES: tuple[str, ...] = ("intersection", "entropy", "drift", "union")


def top_fraction_mask(values: torch.Tensor, valid: torch.Tensor, fraction: float) -> torch.Tensor:
    """True where ``values`` is among the top ``fraction`` of the valid entries.

    The threshold is the k-th largest valid value with k = ceil(fraction * n_valid); every valid entry
    at or above it is kept, so ties at the threshold may keep slightly more than the fraction.
    Selection uses ``topk`` rather than ``torch.quantile``, which sorts and refuses inputs above 16M
    elements.

    Shapes: values, valid ``(B, T)`` -> ``(B, T)`` bool.
    """
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()  # kthvalue has no half-precision kernel on every device
    n_valid = int(valid.sum())
    k = math.ceil(fraction * n_valid - 1e-9)
    if k <= 0:
        return torch.zeros_like(valid)
    # Padded entries become -inf, below every valid value, so the k-th largest of the whole tensor is
    # the k-th largest valid value; this avoids gathering the valid entries into a new tensor.
    flat = values.masked_fill(~valid, -float("inf")).reshape(-1)
    threshold = _kth_largest(flat, k)
    # Valid values are finite (checked by the caller), so the threshold is finite and no padded -inf
    # entry can reach it.
    return (flat >= threshold).view(valid.shape)


def _kth_largest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest entry of a 1-D tensor (1 <= k <= numel), selecting the smaller side with topk."""
    from_the_bottom = flat.numel() - k + 1  # the k-th largest is the (n - k + 1)-th smallest
    if k <= from_the_bottom:
        return torch.topk(flat, k, sorted=False).values.min()
    return -torch.topk(-flat, from_the_bottom, sorted=False).values.min()


def critical_token_mask(
    entropy: torch.Tensor,
    completion_mask: torch.Tensor,
    drift: torch.Tensor | None,
    *,
    rho_h: float = 0.2,
    rho_d: float = 0.5,
    delta_min: float = 1e-3,
    mode: CriticalMode = "intersection",
) -> torch.Tensor:
    """Select the critical decision tokens C = A ∩ D (or A, D, A ∪ D for ablations).

    A (entropy filter): tokens whose entropy is in the top ``rho_h`` of all valid tokens of the batch.
    D (drift filter): tokens whose drift |log pi_old - log pi_ref| is in the top ``rho_d`` of the batch
    and at least ``delta_min``. ``drift=None`` means no reference model: D = all valid tokens.

    Quantiles are taken over the valid tokens of the tensors given, so pass the global batch (gathered
    across processes) and slice local rows afterwards.

    Args:
        entropy: ``(B, T)`` per-token entropy (raw or normalised: only the order matters).
        completion_mask: ``(B, T)`` bool or 0/1, true at real completion tokens.
        drift: ``(B, T)`` per-token drift, or None.

    Returns:
        ``(B, T)`` bool; never true at a padded position.
    """
    if mode not in CRITICAL_MODES:
        raise ValueError(f"mode must be one of {CRITICAL_MODES}, got {mode!r}")
    check_fraction("rho_h", rho_h)
    check_fraction("rho_d", rho_d)
    if delta_min < 0:
        raise ValueError(f"delta_min must be >= 0, got {delta_min}")
    check_tensor("entropy", entropy, 2)
    check_same_shape("entropy", entropy, completion_mask=completion_mask)
    valid = as_bool_mask("completion_mask", completion_mask)
    check_finite("entropy", entropy, valid)

    high_entropy = top_fraction_mask(entropy, valid, rho_h)
    if drift is None:
        drifted = valid
    else:
        check_same_shape("entropy", entropy, drift=drift)
        check_finite("drift", drift, valid)
        drifted = top_fraction_mask(drift, valid, rho_d) & (drift >= delta_min)

    if mode == "intersection":
        return high_entropy & drifted
    if mode == "entropy":
        return high_entropy
    if mode == "drift":
        return drifted
    return high_entropy | drifted
