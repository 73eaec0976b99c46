"""Per-token statistics under the rollout policy: entropy (docs/algorithm.md, Notation and Eqs. 4, 7).

The ISPO maths reads raw entropy in nats; ``normalized_entropy`` is kept for diagnostics only.
"""

from __future__ import annotations

import math

import torch

from ispo.core._checks import as_bool_mask, check_same_shape


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` over the last dimension.

    H = logsumexp(z) - sum_v softmax(z)_v * z_v, which never forms log(0).

    Shapes: logits ``(..., V)`` -> ``(...)``. The caller applies the sampling temperature to the logits
    first (docs/algorithm.md, Notation: all probabilities under the temperature the loss uses).
    """
    logits = logits.float()
    log_normaliser = torch.logsumexp(logits, dim=-1)
    probs = torch.softmax(logits, dim=-1)
    # 0 * (-inf) is NaN: vocabulary entries masked to -inf contribute nothing.
    weighted = torch.where(probs > 0, probs * logits, torch.zeros_like(logits))
    return log_normaliser - weighted.sum(dim=-1)


def normalized_entropy(entropy: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Hn = H / log|V|, in [0, 1]. Shapes: any -> same.

    A diagnostic convenience only: no equation of ISPO uses it (Eqs. 4 and 7 read raw entropy in nats).
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
    return (entropy / math.log(vocab_size)).clamp(0.0, 1.0)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is true; NaN when nothing is selected (a 0-dim tensor).

    NaN rather than 0 so that an absent population (no incorrect rollout in the batch, say) is not
    logged as a real zero.
    """
    mask = as_bool_mask("mask", mask)
    check_same_shape("values", values, mask=mask)
    count = mask.sum()
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
