"""Token-level directional reward with the hallucinated-certainty hinge (spec section 2)."""

from __future__ import annotations

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_same_shape, check_tensor


def token_directional_reward(
    token_logps: torch.Tensor,
    norm_entropy: torch.Tensor,
    critical_mask: torch.Tensor,
    correct: torch.Tensor,
    *,
    tau: float = 0.3,
    eta: float = 1.0,
) -> torch.Tensor:
    """Asymmetric per-rollout reward over the critical tokens C_i.

        correct:   T_i = exp( mean_{t in C_i} log p_{i,t} )                       in (0, 1]
        incorrect: T_i = mean_{t in C_i} [ Hn_{i,t} - eta * max(0, tau - Hn_{i,t}) ]  in [-eta*tau, 1]
        C_i empty: T_i = 0

    A correct rollout is rewarded for low perplexity at its decisions; an incorrect one for staying
    uncertain, and the hinge penalises confident (Hn < tau) decisions on a wrong path.

    Args:
        token_logps: ``(B, T)`` log p of the sampled tokens under pi_old.
        norm_entropy: ``(B, T)`` normalised entropy Hn in [0, 1].
        critical_mask: ``(B, T)`` bool or 0/1 (already excludes padding).
        correct: ``(B,)`` bool or 0/1: R_o >= 0.5.

    Returns:
        ``(B,)`` float.
    """
    if tau < 0 or tau > 1:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    check_tensor("token_logps", token_logps, 2)
    check_same_shape("token_logps", token_logps, norm_entropy=norm_entropy, critical_mask=critical_mask)
    check_tensor("correct", correct, 1)
    if correct.shape[0] != token_logps.shape[0]:
        raise ValueError(f"correct has {correct.shape[0]} rows but token_logps has {token_logps.shape[0]}")
    critical = as_bool_mask("critical_mask", critical_mask)
    correct = as_bool_mask("correct", correct)
    check_finite("token_logps", token_logps, critical)
    check_finite("norm_entropy", norm_entropy, critical)

    # One per-token value for both branches, then one masked mean per row: correct rows average
    # log p (exponentiated below), incorrect rows average the hinged entropy.
    hinged_entropy = norm_entropy - eta * torch.clamp(tau - norm_entropy, min=0.0)
    per_token = torch.where(correct[:, None], token_logps, hinged_entropy)
    num_critical = critical.sum(dim=1)
    row_mean = torch.where(critical, per_token, 0.0).sum(dim=1) / num_critical.clamp(min=1)
    reward = torch.where(correct, torch.exp(row_mean), row_mean)
    return torch.where(num_critical > 0, reward, 0.0)
