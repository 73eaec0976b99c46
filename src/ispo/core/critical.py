"""Critical decision tokens: the per-rollout entropy filter and the drift filter (docs/algorithm.md, Eqs. 4-5).

Both filters look at one rollout at a time: a row's selection depends on that row's values only, so the
critical tokens can be computed where the rollout lives, with no batch-wide statistic.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_fraction, check_same_shape, check_tensor
from ispo.core.paper import DRIFT_THRESHOLD, ENTROPY_TOP_FRAC

CriticalMode = Literal["intersection", "entropy", "drift", "union"]
CRITICAL_MODES: tuple[str, ...] = typing.get_args(CriticalMode)

# ceil(top_frac * n) must not round 0.1 * 30 = 3.0000000000000004 up to 4.
_CEIL_SLACK = 1e-9


def entropy_filter(entropy: torch.Tensor, completion_mask: torch.Tensor, top_frac: float) -> torch.Tensor:
    """E_i: the highest-entropy tokens of each rollout (docs/algorithm.md, Eq. 4).

        k_i = ceil(top_frac * n_i),  n_i = number of valid tokens of row i
        E_i = { t valid : H_{i,t} >= the k_i-th largest valid entropy of row i }

    Ties at the threshold are kept, so a row may select more than k_i tokens when entropies repeat; a
    row with distinct entropies selects exactly k_i. A row with no valid token (or k_i = 0) selects
    nothing. Rows never interact: each row's threshold is read from its own sorted values.

    Args:
        entropy: ``(B, T)`` per-token entropy H (nats; only the order within a row matters here).
        completion_mask: ``(B, T)`` bool or 0/1, true at real completion tokens.
        top_frac: the share k of Eq. 4, in (0, 1].

    Returns:
        ``(B, T)`` bool; never true at a padded position.
    """
    check_fraction("top_frac", top_frac, allow_zero=False)
    valid = _check_entropy(entropy, completion_mask)
    return _entropy_filter(entropy, valid, top_frac)


def drift_filter(
    logp_policy: torch.Tensor, logp_base: torch.Tensor, completion_mask: torch.Tensor, threshold: float
) -> torch.Tensor:
    """D_i: tokens the policy has made more likely than the frozen base did (docs/algorithm.md, Eq. 5).

        D_i = { t valid : log pi_old(y_t | .) - log pi_theta0(y_t | .) >= threshold }

    Signed and fixed: a token made *less* likely never passes, and the threshold is an absolute number
    of nats, not a batch quantile. When the policy is the base (the first step) every difference is 0,
    so D is empty for any threshold > 0.

    Args:
        logp_policy: ``(B, T)`` log-prob of the sampled tokens under the rollout policy pi_old.
        logp_base: ``(B, T)`` log-prob of the same tokens under the frozen base policy pi_theta0.
        completion_mask: ``(B, T)`` bool or 0/1, true at real completion tokens.
        threshold: tau_Delta, in nats (finite).

    Returns:
        ``(B, T)`` bool; never true at a padded position.
    """
    valid = _check_drift_inputs(logp_policy, logp_base, completion_mask, threshold, "threshold")
    return _drift_filter(logp_policy, logp_base, valid, threshold)


def critical_token_mask(
    entropy: torch.Tensor,
    completion_mask: torch.Tensor,
    logp_policy: torch.Tensor | None,
    logp_base: torch.Tensor | None,
    *,
    top_frac: float = ENTROPY_TOP_FRAC,
    drift_threshold: float = DRIFT_THRESHOLD,
    mode: CriticalMode = "intersection",
) -> torch.Tensor:
    """The critical decision tokens C_i = E_i ∩ D_i (docs/algorithm.md, Eqs. 4-5), or an ablation.

        "intersection": E ∩ D  (the paper's C)
        "entropy":      E      (ablation "E only")
        "drift":        D      (ablation "D only")
        "union":        E ∪ D  (ablation "E ∪ D")

    E is ``entropy_filter(entropy, completion_mask, top_frac)``, D is ``drift_filter(logp_policy,
    logp_base, completion_mask, drift_threshold)``. ``logp_base=None`` means no frozen base policy is
    available: the drift filter is off, D = every valid token (so "intersection" = E and "drift" =
    "union" = every valid token), and ``logp_policy`` may then be None too.

    Args:
        entropy: ``(B, T)`` per-token entropy in nats.
        completion_mask: ``(B, T)`` bool or 0/1, true at real completion tokens.
        logp_policy: ``(B, T)`` log-prob of the sampled tokens under pi_old, or None when logp_base is None.
        logp_base: ``(B, T)`` log-prob of the same tokens under the frozen base pi_theta0, or None.
        top_frac: k of Eq. 4, in (0, 1].
        drift_threshold: tau_Delta of Eq. 5, in nats.
        mode: one of ``CRITICAL_MODES``.

    Returns:
        ``(B, T)`` bool; never true at a padded position.
    """
    if mode not in CRITICAL_MODES:
        raise ValueError(f"mode must be one of {CRITICAL_MODES}, got {mode!r}")
    check_fraction("top_frac", top_frac, allow_zero=False)
    valid = _check_entropy(entropy, completion_mask)
    if logp_base is None:
        if logp_policy is not None:
            check_tensor("logp_policy", logp_policy, 2)
            check_same_shape("entropy", entropy, logp_policy=logp_policy)
            check_finite("logp_policy", logp_policy, valid)
        drifted = valid
    else:
        if logp_policy is None:
            raise ValueError("logp_policy is required when logp_base is given (the drift filter needs both)")
        check_tensor("logp_policy", logp_policy, 2)
        check_same_shape("entropy", entropy, logp_policy=logp_policy)
        _check_drift_inputs(logp_policy, logp_base, valid, drift_threshold, "drift_threshold")
        drifted = _drift_filter(logp_policy, logp_base, valid, drift_threshold) if mode != "entropy" else valid

    if mode == "drift":
        return drifted.clone() if drifted is valid else drifted
    return combine_filters(_entropy_filter(entropy, valid, top_frac), drifted, mode)


def combine_filters(high_entropy: torch.Tensor, drifted: torch.Tensor, mode: CriticalMode) -> torch.Tensor:
    """The critical set from the two filters' masks: E ∩ D (the paper's), E, D or E ∪ D.

    For a caller that also needs E and D themselves (the diagnostics' set sizes): computing the filters
    once and combining them here gives exactly ``critical_token_mask``'s result.

    Shapes: high_entropy, drifted ``(B, T)`` bool -> ``(B, T)`` bool.
    """
    if mode not in CRITICAL_MODES:
        raise ValueError(f"mode must be one of {CRITICAL_MODES}, got {mode!r}")
    check_same_shape("high_entropy", high_entropy, drifted=drifted)
    if mode == "intersection":
        return high_entropy & drifted
    if mode == "entropy":
        return high_entropy.clone()
    if mode == "drift":
        return drifted.clone()
    return high_entropy | drifted


def _entropy_filter(entropy: torch.Tensor, valid: torch.Tensor, top_frac: float) -> torch.Tensor:
    if entropy.dtype in (torch.float16, torch.bfloat16):
        entropy = entropy.float()  # exact; topk and comparisons in one precision on every device
    batch, length = entropy.shape
    if batch == 0 or length == 0:
        return torch.zeros_like(valid)
    n_valid = valid.sum(dim=1)  # (B,)
    # float64 so that the product rounds exactly as Python's top_frac * n does
    k = torch.ceil(top_frac * n_valid.to(torch.float64) - _CEIL_SLACK).to(torch.long)  # (B,)
    k_max = int(k.max())
    if k_max <= 0:
        return torch.zeros_like(valid)
    # Padding becomes -inf, below every (finite) valid value: the top k_i of the row are valid entries.
    filled = entropy.masked_fill(~valid, -math.inf)
    largest = torch.topk(filled, k_max, dim=1, sorted=True).values  # (B, k_max), descending
    threshold = largest.gather(1, (k - 1).clamp(min=0)[:, None])  # (B, 1): the k_i-th largest
    return valid & (filled >= threshold) & (k > 0)[:, None]


def _drift_filter(
    logp_policy: torch.Tensor, logp_base: torch.Tensor, valid: torch.Tensor, threshold: float
) -> torch.Tensor:
    if logp_policy.dtype in (torch.float16, torch.bfloat16) or logp_base.dtype in (torch.float16, torch.bfloat16):
        logp_policy, logp_base = logp_policy.float(), logp_base.float()
    # Padded positions may hold anything (NaN compares false); the mask decides.
    return valid & (logp_policy - logp_base >= threshold)


def _check_entropy(entropy: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    check_tensor("entropy", entropy, 2)
    check_same_shape("entropy", entropy, completion_mask=completion_mask)
    valid = as_bool_mask("completion_mask", completion_mask)
    check_finite("entropy", entropy, valid)
    return valid


def _check_drift_inputs(
    logp_policy: torch.Tensor,
    logp_base: torch.Tensor,
    completion_mask: torch.Tensor,
    threshold: float,
    threshold_name: str,
) -> torch.Tensor:
    if not math.isfinite(threshold):
        raise ValueError(f"{threshold_name} must be finite, got {threshold}")
    check_tensor("logp_policy", logp_policy, 2)
    check_tensor("logp_base", logp_base, 2)
    check_same_shape("logp_policy", logp_policy, logp_base=logp_base, completion_mask=completion_mask)
    valid = as_bool_mask("completion_mask", completion_mask)
    check_finite("logp_policy", logp_policy, valid)
    check_finite("logp_base", logp_base, valid)
    return valid
