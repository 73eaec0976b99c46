"""Token-level directional reward with the hallucinated-certainty hinge (docs/algorithm.md, Eqs. 6-7)."""

from __future__ import annotations

import math

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.paper import ENTROPY_ALPHA, HINGE_BETA, HINGE_TAU, LAMBDA_TOK


def token_directional_reward(
    token_logps: torch.Tensor,
    entropy: torch.Tensor,
    critical_mask: torch.Tensor,
    correct: torch.Tensor,
    *,
    alpha: float = ENTROPY_ALPHA,
    beta: float = HINGE_BETA,
    tau_h: float = HINGE_TAU,
    asymmetric: bool = True,
) -> torch.Tensor:
    """Directional per-rollout reward over the critical tokens C_i (docs/algorithm.md, Eqs. 6-7).

        correct   (Eq. 6): R_token,i = mean_{t in C_i} log p_{i,t}                                  <= 0
        incorrect (Eq. 7): R_token,i = mean_{t in C_i} [ alpha * H_{i,t} - beta * max(0, tau_h - H_{i,t}) ]
        C_i empty:         R_token,i = 0

    H is the raw entropy in nats (not normalised by log|V|). A correct rollout is rewarded for
    confidence at its decisions (the mean log-prob, not exponentiated); an incorrect one for staying
    uncertain, and the hinge penalises confident (H < tau_h) decisions on a wrong path. With beta = 0 an
    incorrect rollout's reward is >= 0. Neither branch is bounded: log p is unbounded below, H above by
    log|V|.

    ``asymmetric=False`` is the paper's "Symmetric" ablation, whose formula the paper does not give;
    [ours]: Eq. 6 for every rollout (alpha, beta and tau_h are then unused).

    Args:
        token_logps: ``(B, T)`` log p of the sampled tokens under pi_old.
        entropy: ``(B, T)`` per-token entropy H under pi_old, in nats.
        critical_mask: ``(B, T)`` bool or 0/1, C_i (already excludes padding).
        correct: ``(B,)`` bool or 0/1: R_o >= 0.5.
        alpha, beta, tau_h: the weights and the threshold of Eq. 7, each >= 0.

    Returns:
        ``(B,)`` float.
    """
    _check_shaping(alpha, beta, tau_h)
    critical, correct = _check_token_inputs(token_logps, entropy, critical_mask, correct)
    if not asymmetric:
        correct = torch.ones_like(correct)

    per_token = torch.where(correct[:, None], token_logps, _incorrect_token_reward(entropy, alpha, beta, tau_h))
    num_critical = critical.sum(dim=1)
    row_sum = torch.where(critical, per_token, torch.zeros_like(per_token)).sum(dim=1)
    return torch.where(num_critical > 0, row_sum / num_critical.clamp(min=1), torch.zeros_like(row_sum))


def critical_token_advantages(
    sequence_advantages: torch.Tensor,
    token_logps: torch.Tensor,
    entropy: torch.Tensor,
    critical_mask: torch.Tensor,
    correct: torch.Tensor,
    num_generations: int,
    *,
    lambda_tok: float = LAMBDA_TOK,
    alpha: float = ENTROPY_ALPHA,
    beta: float = HINGE_BETA,
    tau_h: float = HINGE_TAU,
    asymmetric: bool = True,
    scorable: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token credit as per-token advantages on the critical tokens (``token_credit="critical"``, [ours]).

        A_{i,t} = A_i + lambda_tok * (r_{i,t} - b_g)   for t in C_i
        A_{i,t} = A_i                                  otherwise
        r_{i,t} = log p_{i,t}                                       correct rollouts (every rollout if not asymmetric)
        r_{i,t} = alpha * H_{i,t} - beta * max(0, tau_h - H_{i,t})  incorrect rollouts (raw entropy, nats)
        b_g     = mean of r over all critical tokens of group g's scorable rollouts (0 if there are none)

    The per-token terms are those of Eqs. 6-7 (docs/algorithm.md), credited to the token instead of
    averaged into the rollout's reward. A_i is the sequence advantage of the composite reward *without*
    the token term (lambda_tok = 0 in ``composite_reward``), from ``group_advantages`` or
    ``intrinsic_advantages``. docs/algorithm.md, variants [ours].

    Guarantees:

    - lambda_tok = 0 returns A_i on every position, bit for bit.
    - the credit sums to 0 over each group's critical tokens (the baseline b_g is their mean).

    No token-level outcome dominance: r is unbounded (log p below, H above up to log|V|), so for any
    lambda_tok > 0 a critical token of a correct rollout with a small enough probability ends up below
    a token of an incorrect rollout of the same group, whatever the sequence gap A_correct - A_incorrect.

    Positions outside C_i, padding included, carry A_i: multiply by the completion mask (TRL's loss
    does) before use. Values of ``token_logps`` and ``entropy`` are read at critical positions only.
    Rows that are not ``scorable`` (NaN outcome) get 0 everywhere and are left out of b_g.

    Args:
        sequence_advantages: ``(B,)`` A_i.
        token_logps: ``(B, T)`` log p of the sampled tokens under pi_old.
        entropy: ``(B, T)`` per-token entropy H under pi_old, in nats.
        critical_mask: ``(B, T)`` bool or 0/1, C_i (already excludes padding).
        correct: ``(B,)`` bool or 0/1: R_o >= 0.5.
        num_generations: G; B = P * G with consecutive rows forming a group.
        lambda_tok: weight of the credit, >= 0.
        alpha, beta, tau_h: as in ``token_directional_reward``.
        scorable: ``(B,)`` bool or 0/1, or None for every row.

    Returns:
        ``(B, T)`` per-token advantages.
    """
    _check_shaping(alpha, beta, tau_h)
    if not (math.isfinite(lambda_tok) and lambda_tok >= 0):
        raise ValueError(f"lambda_tok must be a finite number >= 0, got {lambda_tok}")
    critical, correct = _check_token_inputs(token_logps, entropy, critical_mask, correct)
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
    per_token = torch.where(correct[:, None], token_logps, _incorrect_token_reward(entropy, alpha, beta, tau_h))
    per_token = torch.where(credited, per_token, torch.zeros_like(per_token))  # never read other positions
    group_sum = per_token.view(-1, num_generations * length).sum(dim=1)  # (P,)
    group_count = credited.view(-1, num_generations * length).sum(dim=1)
    baseline = (group_sum / group_count.clamp(min=1)).repeat_interleave(num_generations)  # (B,), 0 if none
    credit = lambda_tok * (per_token - baseline[:, None])
    return torch.where(credited, advantages + credit, advantages)


def _incorrect_token_reward(entropy: torch.Tensor, alpha: float, beta: float, tau_h: float) -> torch.Tensor:
    """alpha * H - beta * max(0, tau_h - H), per token (docs/algorithm.md, Eq. 7)."""
    return alpha * entropy - beta * torch.clamp(tau_h - entropy, min=0.0)


def _check_shaping(alpha: float, beta: float, tau_h: float) -> None:
    for name, value in (("alpha", alpha), ("beta", beta), ("tau_h", tau_h)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def _check_token_inputs(
    token_logps: torch.Tensor, entropy: torch.Tensor, critical_mask: torch.Tensor, correct: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("token_logps", token_logps, 2)
    check_same_shape("token_logps", token_logps, entropy=entropy, critical_mask=critical_mask)
    check_tensor("correct", correct, 1)
    if correct.shape[0] != token_logps.shape[0]:
        raise ValueError(f"correct has {correct.shape[0]} rows but token_logps has {token_logps.shape[0]}")
    critical = as_bool_mask("critical_mask", critical_mask)
    correct = as_bool_mask("correct", correct)
    check_finite("token_logps", token_logps, critical)
    check_finite("entropy", entropy, critical)
    return critical, correct
