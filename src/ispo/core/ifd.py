"""Sequence-level signal: Conditional IFD and its bound (docs/algorithm.md §1, §3b)."""

from __future__ import annotations

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_same_shape, check_tensor


def conditional_ifd(
    logps_with: torch.Tensor,
    logps_without: torch.Tensor,
    answer_mask: torch.Tensor,
) -> torch.Tensor:
    """How much the thinking informs the answer, per rollout.

        S_i = (1/|a_i|) * sum_k [ log pi(a_k | q, z, m, a_<k) - log pi(a_k | q, m, a_<k) ]

    Args:
        logps_with: ``(B, A)`` log-probs of the answer tokens with the thinking in context
            (taken from the rollout's own forward pass).
        logps_without: ``(B, A)`` log-probs of the same answer tokens from the counterfactual
            forward (prompt + marker + answer, thinking removed).
        answer_mask: ``(B, A)`` bool or 0/1; true at answer tokens. Both log-prob tensors must be
            aligned on it (position k of a row is the same answer token in both).

    Returns:
        ``(B,)`` float: S_i; 0 for a row with no answer tokens (docs/algorithm.md Notation: no parseable
        answer -> S = 0).
    """
    check_tensor("logps_with", logps_with, 2)
    check_same_shape("logps_with", logps_with, logps_without=logps_without, answer_mask=answer_mask)
    answer_mask = as_bool_mask("answer_mask", answer_mask)
    check_finite("logps_with", logps_with, answer_mask)
    check_finite("logps_without", logps_without, answer_mask)

    difference = torch.where(answer_mask, logps_with - logps_without, torch.zeros_like(logps_with))
    num_answer_tokens = answer_mask.sum(dim=1)
    return difference.sum(dim=1) / num_answer_tokens.clamp(min=1)


def auto_kappa(ifd: torch.Tensor, has_answer: torch.Tensor, *, floor: float = 0.1) -> torch.Tensor:
    """A data-driven IFD scale (``kappa = "auto"``, docs/algorithm.md §3b).

        kappa = max( median_{i : has_answer_i} |S_i| , floor )

    With kappa the median |S|, half the rollouts with an answer have |tanh(S/kappa)| < tanh(1) ~= 0.76,
    so the bound tanh(S/kappa) keeps ranking them instead of saturating at +-1. The median is the usual
    one (the mean of the two middle values for an even count). Rows without an answer (S = 0 by
    definition) are left out; with none, kappa = floor. The floor keeps kappa > 0 when the thinking
    barely moves the answer (median |S| ~ 0), where dividing by it would turn noise into +-1.

    Shapes: ifd ``(B,)``, has_answer ``(B,)`` bool or 0/1 -> 0-dim tensor (pass it to
    ``composite_reward(kappa=...)``; smooth it across steps with ``ema_update`` if wanted).
    """
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor}")
    check_tensor("ifd", ifd, 1)
    check_same_shape("ifd", ifd, has_answer=has_answer)
    has_answer = as_bool_mask("has_answer", has_answer)
    check_finite("ifd", ifd, has_answer)
    magnitudes = ifd[has_answer].abs().sort().values
    count = magnitudes.numel()
    if count == 0:
        return torch.tensor(floor, dtype=ifd.dtype, device=ifd.device)
    median = (magnitudes[(count - 1) // 2] + magnitudes[count // 2]) / 2
    return median.clamp(min=floor)


def ifd_saturation(bounded_ifd: torch.Tensor, has_answer: torch.Tensor, *, threshold: float = 0.99) -> torch.Tensor:
    """Share of rollouts with an answer whose bounded IFD is saturated: |S~_i| > threshold.

    The ``ifd/saturated`` diagnostic (docs/algorithm.md §3b): a share near 1 means kappa is too small
    for the batch's S and the IFD term has become a sign. NaN when no rollout has an answer (an absent
    population is not a real 0, as in ``masked_mean``).

    Shapes: bounded_ifd ``(B,)`` (S~ = tanh(S / kappa)), has_answer ``(B,)`` bool or 0/1 -> 0-dim tensor.
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    check_tensor("bounded_ifd", bounded_ifd, 1)
    check_same_shape("bounded_ifd", bounded_ifd, has_answer=has_answer)
    has_answer = as_bool_mask("has_answer", has_answer)
    check_finite("bounded_ifd", bounded_ifd, has_answer)
    count = has_answer.sum()
    saturated = (has_answer & (bounded_ifd.abs() > threshold)).sum()
    share = saturated.to(bounded_ifd.dtype) / count.clamp(min=1)
    return torch.where(count > 0, share, torch.full_like(share, float("nan")))


def ema_update(
    previous: float | torch.Tensor | None, value: float | torch.Tensor, decay: float
) -> float | torch.Tensor:
    """Exponential moving average step: decay * previous + (1 - decay) * value; ``value`` when no previous.

    For smoothing ``auto_kappa`` across training steps (docs/algorithm.md §3b); the running value is
    trainer state, this is the pure update. decay = 0 keeps only the new value, decay = 1 never moves.
    """
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    if previous is None:
        return value
    return decay * previous + (1 - decay) * value
