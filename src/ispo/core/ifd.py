"""Sequence-level signal: Conditional IFD (docs/algorithm.md, Eq. 2)."""

from __future__ import annotations

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_same_shape, check_tensor


def conditional_ifd(
    logps_with: torch.Tensor,
    logps_without: torch.Tensor,
    answer_mask: torch.Tensor,
) -> torch.Tensor:
    """How much the thinking informs the answer, per rollout (docs/algorithm.md, Eq. 2).

        IFD_i = (1/|A_i|) * sum_k [ log pi(a_k | Q, T_i, a_<k) - log pi(a_k | Q~, a_<k) ]

    Q~ is the trace-ablated prompt. The value enters the composite reward raw (Eq. 8): no bound.

    Args:
        logps_with: ``(B, A)`` log-probs of the answer tokens with the thinking in context
            (taken from the rollout's own forward pass).
        logps_without: ``(B, A)`` log-probs of the same answer tokens from the counterfactual
            forward (prompt + marker + answer, thinking removed).
        answer_mask: ``(B, A)`` bool or 0/1; true at answer tokens. Both log-prob tensors must be
            aligned on it (position k of a row is the same answer token in both).

    Returns:
        ``(B,)`` float: IFD_i; 0 for a row with no answer tokens (no parseable answer -> IFD = 0,
        docs/algorithm.md, Eq. 2).
    """
    check_tensor("logps_with", logps_with, 2)
    check_same_shape("logps_with", logps_with, logps_without=logps_without, answer_mask=answer_mask)
    answer_mask = as_bool_mask("answer_mask", answer_mask)
    check_finite("logps_with", logps_with, answer_mask)
    check_finite("logps_without", logps_without, answer_mask)

    difference = torch.where(answer_mask, logps_with - logps_without, torch.zeros_like(logps_with))
    num_answer_tokens = answer_mask.sum(dim=1)
    return difference.sum(dim=1) / num_answer_tokens.clamp(min=1)
