"""Composite reward: outcome plus the bounded intrinsic signals (spec section 3)."""

from __future__ import annotations

import torch

from ispo.core._checks import check_finite, check_same_shape, check_tensor


def composite_reward(
    outcome: torch.Tensor,
    ifd: torch.Tensor,
    token_reward: torch.Tensor,
    *,
    lambda_ifd: float = 0.2,
    lambda_tok: float = 0.2,
    kappa: float = 2.0,
    outcome_conditioned: bool = True,
) -> torch.Tensor:
    """R_i = R_o + lambda_ifd * (2 R_o - 1) * tanh(S_i / kappa) + lambda_tok * T_i.

    With ``outcome_conditioned=False`` (reference-answer IFD) the sign is dropped:
    R_i = R_o + lambda_ifd * tanh(S_i / kappa) + lambda_tok * T_i.

    The sign uses R_o clipped to [0, 1], so a host reward outside that range (weighted reward
    functions) cannot flip or inflate the IFD term. NaN outcomes (unscorable rollouts) stay NaN so that
    ``group_advantages`` leaves them out of the group baseline, as TRL does. With both weights 0 the
    outcome is returned unchanged (bit for bit), which is what makes ISPO reproduce GRPO exactly.

    Shapes: outcome, ifd, token_reward ``(B,)`` -> ``(B,)``.
    """
    check_tensor("outcome", outcome, 1)
    check_same_shape("outcome", outcome, ifd=ifd, token_reward=token_reward)
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    if bool(torch.isinf(outcome).any()):
        raise ValueError("outcome has an infinite value")
    check_finite("ifd", ifd)
    check_finite("token_reward", token_reward)
    if lambda_ifd == 0 and lambda_tok == 0:
        return outcome.clone()

    bounded_ifd = torch.tanh(ifd / kappa)
    if outcome_conditioned:
        sign = 2.0 * outcome.clamp(0.0, 1.0) - 1.0
        bounded_ifd = sign * bounded_ifd
    return outcome + lambda_ifd * bounded_ifd + lambda_tok * token_reward
