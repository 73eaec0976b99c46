"""Token-level directional reward with the hallucinated-certainty hinge (docs/algorithm.md §2, §3b)."""

from __future__ import annotations

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor


def token_directional_reward(
    token_logps: torch.Tensor,
    norm_entropy: torch.Tensor,
    critical_mask: torch.Tensor,
    correct: torch.Tensor,
    *,
    tau: float = 0.3,
    eta: float = 1.0,
    asymmetric: bool = True,
) -> torch.Tensor:
    """Asymmetric per-rollout reward over the critical tokens C_i.

        correct:   T_i = exp( mean_{t in C_i} log p_{i,t} )                       in (0, 1]
        incorrect: T_i = mean_{t in C_i} [ Hn_{i,t} - eta * max(0, tau - Hn_{i,t}) ]  in [-eta*tau, 1]
        C_i empty: T_i = 0

    A correct rollout is rewarded for low perplexity at its decisions; an incorrect one for staying
    uncertain, and the hinge penalises confident (Hn < tau) decisions on a wrong path.
    ``asymmetric=False`` (the ``token_asymmetry`` variant, docs/algorithm.md §3b) applies the
    correct-rollout formula to every rollout, so T_i is in [0, 1] everywhere and tau, eta are unused.

    Args:
        token_logps: ``(B, T)`` log p of the sampled tokens under pi_old.
        norm_entropy: ``(B, T)`` normalised entropy Hn in [0, 1].
        critical_mask: ``(B, T)`` bool or 0/1 (already excludes padding).
        correct: ``(B,)`` bool or 0/1: R_o >= 0.5.

    Returns:
        ``(B,)`` float.
    """
    _check_hinge(tau, eta)
    critical, correct = _check_token_inputs(token_logps, norm_entropy, critical_mask, correct)
    if not asymmetric:
        correct = torch.ones_like(correct)

    # One per-token value for both branches, then one masked mean per row: correct rows average
    # log p (exponentiated below), incorrect rows average the hinged entropy.
    hinged_entropy = norm_entropy - eta * torch.clamp(tau - norm_entropy, min=0.0)
    per_token = torch.where(correct[:, None], token_logps, hinged_entropy)
    num_critical = critical.sum(dim=1)
    row_mean = torch.where(critical, per_token, 0.0).sum(dim=1) / num_critical.clamp(min=1)
    reward = torch.where(correct, torch.exp(row_mean), row_mean)
    return torch.where(num_critical > 0, reward, 0.0)


def critical_token_advantages(
    sequence_advantages: torch.Tensor,
    token_logps: torch.Tensor,
    norm_entropy: torch.Tensor,
    critical_mask: torch.Tensor,
    correct: torch.Tensor,
    num_generations: int,
    *,
    lambda_tok: float = 0.2,
    tau: float = 0.3,
    eta: float = 1.0,
    asymmetric: bool = True,
    scorable: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token credit as per-token advantages on the critical tokens (``token_credit="critical"``).

        A_{i,t} = A_i + lambda_tok * (r_{i,t} - b_g)   for t in C_i
        A_{i,t} = A_i                                  otherwise
        r_{i,t} = p_{i,t} = exp(log p_{i,t})                   correct rollouts (every rollout if not asymmetric)
        r_{i,t} = Hn_{i,t} - eta * max(0, tau - Hn_{i,t})       incorrect rollouts
        b_g     = mean of r over all critical tokens of group g's scorable rollouts (0 if there are none)

    A_i is the sequence advantage of the composite reward *without* the token term (lambda_tok = 0 in
    ``composite_reward``), from ``group_advantages`` or ``intrinsic_advantages``. docs/algorithm.md §3b.

    Guarantees:

    - lambda_tok = 0 returns A_i on every position, bit for bit.
    - the credit sums to 0 over each group's critical tokens (the baseline b_g is their mean).
    - token-level outcome dominance: every valid token of a correct rollout keeps a larger advantage
      than every valid token of an incorrect rollout of the same group when
      lambda_tok (1 + eta tau) < A_correct - A_incorrect (lambda_tok < ... when not asymmetric). Both
      tokens share b_g, and r is in (0, 1] on correct rows, [-eta tau, 1] on incorrect ones, b_g in
      [-eta tau, 1]: two critical tokens differ by at most lambda_tok (r_w - r_c) < lambda_tok, a
      non-critical correct token against a critical incorrect one by lambda_tok (r_w - b_g) <=
      lambda_tok (1 + eta tau), a critical correct token against a non-critical incorrect one by
      lambda_tok (b_g - r_c) < lambda_tok. The bound is approached when many incorrect critical tokens
      sit at Hn = 0. For group-scaled A of R = R_o + lambda_ifd (2 R_o - 1) S~ the sequence gap is at
      least (1 - 2 lambda_ifd) / ((1 + 2 lambda_ifd) / sqrt(2) + eps): correct and incorrect R differ
      by at least 1 - 2 lambda_ifd, R spans at most 1 + 2 lambda_ifd, and the unbiased std of n >= 2
      values in a span w is at most w / sqrt(2). Defaults (lambda_ifd = lambda_tok = 0.2, tau = 0.3,
      eta = 1): 0.26 < 0.606.

    Positions outside C_i, padding included, carry A_i: multiply by the completion mask (TRL's loss
    does) before use. Values of ``token_logps`` and ``norm_entropy`` are read at critical positions only.
    Rows that are not ``scorable`` (NaN outcome) get 0 everywhere and are left out of b_g.

    Args:
        sequence_advantages: ``(B,)`` A_i.
        token_logps: ``(B, T)`` log p of the sampled tokens under pi_old.
        norm_entropy: ``(B, T)`` Hn in [0, 1].
        critical_mask: ``(B, T)`` bool or 0/1, C_i (already excludes padding).
        correct: ``(B,)`` bool or 0/1: R_o >= 0.5.
        num_generations: G; B = P * G with consecutive rows forming a group.
        scorable: ``(B,)`` bool or 0/1, or None for every row.

    Returns:
        ``(B, T)`` per-token advantages.
    """
    _check_hinge(tau, eta)
    if lambda_tok < 0:
        raise ValueError(f"lambda_tok must be >= 0, got {lambda_tok}")
    critical, correct = _check_token_inputs(token_logps, norm_entropy, critical_mask, correct)
    check_tensor("sequence_advantages", sequence_advantages, 1)
    batch, length = token_logps.shape
    if sequence_advantages.shape[0] != batch:
        raise ValueError(f"sequence_advantages has {sequence_advantages.shape[0]} rows but token_logps has {batch}")
    check_groups("token_logps", batch, num_generations)
    check_finite("sequence_advantages", sequence_advantages)
    if scorable is None:
        scorable = torch.ones_like(correct)
    else:
        check_tensor("scorable", scorable, 1)
        check_same_shape("correct", correct, scorable=scorable)
        scorable = as_bool_mask("scorable", scorable)

    sequence = torch.where(scorable, sequence_advantages, torch.zeros_like(sequence_advantages))
    advantages = sequence[:, None].expand(batch, length).clone()
    if lambda_tok == 0:
        return advantages
    if not asymmetric:
        correct = torch.ones_like(correct)

    credited = critical & scorable[:, None]  # (B, T)
    hinged_entropy = norm_entropy - eta * torch.clamp(tau - norm_entropy, min=0.0)
    per_token = torch.where(correct[:, None], torch.exp(token_logps), hinged_entropy)
    per_token = torch.where(credited, per_token, 0.0)  # never read values at other positions
    group_sum = per_token.view(-1, num_generations * length).sum(dim=1)  # (P,)
    group_count = credited.view(-1, num_generations * length).sum(dim=1)
    baseline = (group_sum / group_count.clamp(min=1)).repeat_interleave(num_generations)  # (B,), 0 if none
    credit = lambda_tok * (per_token - baseline[:, None])
    return torch.where(credited, advantages + credit, advantages)


def _check_hinge(tau: float, eta: float) -> None:
    if tau < 0 or tau > 1:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")


def _check_token_inputs(
    token_logps: torch.Tensor, norm_entropy: torch.Tensor, critical_mask: torch.Tensor, correct: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("token_logps", token_logps, 2)
    check_same_shape("token_logps", token_logps, norm_entropy=norm_entropy, critical_mask=critical_mask)
    check_tensor("correct", correct, 1)
    if correct.shape[0] != token_logps.shape[0]:
        raise ValueError(f"correct has {correct.shape[0]} rows but token_logps has {token_logps.shape[0]}")
    critical = as_bool_mask("critical_mask", critical_mask)
    correct = as_bool_mask("correct", correct)
    check_finite("token_logps", token_logps, critical)
    check_finite("norm_entropy", norm_entropy, critical)
    return critical, correct
