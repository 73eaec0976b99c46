"""The failure-mode diagnostics of one step, as a pure function of its record (docs/algorithm.md, "Diagnostics").

Logged for every method (GRPO included, when ``ispo_diagnostics`` is on), so runs compare like with
like. Token-level means (entropy at critical tokens, critical-set sizes) are ratios of per-rollout
sums, so they are exact although no per-token tensor crosses processes. A population that is absent
(no incorrect rollout, no critical token) gives NaN, logged as null, never a fake 0.
"""

from __future__ import annotations

import math

import torch

from ispo.core import dominance_violations, group_is_constant, masked_mean, zero_advantage_groups
from ispo.methods import RolloutBatch


def step_diagnostics(batch: RolloutBatch, rewards: torch.Tensor, advantages: torch.Tensor) -> dict[str, float]:
    """``{metric name: value}`` for one scored batch.

    Args:
        batch: the step's record, global rows (its ``signals`` gathered).
        rewards: ``(N,)`` the reward trained on (the composite for ISPO, TRL's reward for GRPO).
        advantages: ``(N,)`` or ``(N, T)`` the advantages trained on.
    """
    g, signals = batch.num_generations, batch.signals
    correct, scorable = batch.correct, batch.scorable
    incorrect = scorable & ~correct
    metrics: dict[str, float] = {
        "zero_adv_rate/outcome": _value(group_is_constant(batch.outcome, g).float().mean()),
        "zero_adv_rate/composite": _value(
            zero_advantage_groups(advantages, g, batch.valid if advantages.dim() == 2 else None).float().mean()
        ),
        "accuracy": _value(masked_mean(correct.float(), scorable)),
        "no_answer_rate": _value((~batch.has_answer).float().mean()),
        "reward/composite": _value(torch.nanmean(rewards)),
        "dominance/violations": _value(dominance_violations(batch.outcome, rewards, g)),
    }
    if signals.num_valid is not None:
        metrics["completion_length"] = _value(signals.num_valid.float().mean())
    if signals.ifd is not None:
        answered_incorrect = incorrect & batch.has_answer  # IFD = 0 without an answer is a definition, not a measure
        metrics["ifd/correct"] = _value(masked_mean(signals.ifd, correct))
        metrics["ifd/incorrect"] = _value(masked_mean(signals.ifd, answered_incorrect))
    if signals.token_reward is None:
        return metrics
    for name, rows in (("correct", correct), ("incorrect", incorrect)):
        critical_tokens = _sum(signals.num_critical, rows)
        metrics[f"hc/{name}"] = _ratio(_sum(signals.critical_prob_sum, rows), critical_tokens)
        metrics[f"hc/entropy_{name}"] = _ratio(_sum(signals.critical_entropy_sum, rows), critical_tokens)
        metrics[f"tok_reward/{name}"] = _value(masked_mean(signals.token_reward, rows))
    every = torch.ones_like(correct)
    tokens = _sum(signals.num_valid, every)
    metrics["critical/frac"] = _ratio(_sum(signals.num_critical, every), tokens)
    metrics["critical/entropy_frac"] = _ratio(_sum(signals.num_entropy, every), tokens)
    metrics["critical/drift_frac"] = _ratio(_sum(signals.num_drift, every), tokens)
    metrics["entropy/pi_old"] = _ratio(_sum(signals.entropy_sum, every), tokens)
    metrics["drift/enabled"] = float(signals.drift_sum is not None)
    if signals.drift_sum is not None:
        metrics["drift/mean"] = _ratio(_sum(signals.drift_sum, every), tokens)
    return metrics


def _sum(values: torch.Tensor, rows: torch.Tensor) -> float:
    return float(torch.where(rows, values.double(), 0.0).sum())


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def _value(tensor: torch.Tensor) -> float:
    return float(tensor.item())
