"""Plain-loop references for the variants under study (docs/algorithm.md, variants [ours]), from the equations.

Slow and obvious on purpose, on Python floats and lists; the vectorised ispo.core functions are tested
against these. NaN marks an unscorable rollout, as in core_reference.
"""

from __future__ import annotations

import math

from core_reference import composite_reward as composite_all_rows
from core_reference import group_advantages


def _present(values):
    return [v for v in values if not math.isnan(v)]


def _mean(values):
    values = _present(values)
    return sum(values) / len(values) if values else float("nan")


def _std(values):
    values = _present(values)
    if len(values) < 2:
        return float("nan")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _groups(values, num_generations):
    return [values[start : start + num_generations] for start in range(0, len(values), num_generations)]


def intrinsic_advantages(outcome, composite, num_generations, scale, eps, beta, clip):
    reward = [float("nan") if math.isnan(o) else r for o, r in zip(outcome, composite, strict=True)]
    if scale in ("group", "none"):
        return group_advantages(reward, num_generations, scale, eps)
    if scale == "outcome_floor":
        floor = 1 / math.sqrt(num_generations)
        out = []
        for group in _groups(reward, num_generations):
            mean, std = _mean(group), _std(group)
            denominator = std if std >= floor * (1 - 1e-5) else floor  # NaN std (< 2 rows) fails the test
            for r in group:
                a = (r - mean) / (denominator + eps)
                out.append(0.0 if math.isnan(a) else a)
        return out
    assert scale == "decoupled"
    grpo = group_advantages(list(outcome), num_generations, "group", eps)
    centred = []
    grouped = zip(_groups(outcome, num_generations), _groups(reward, num_generations), strict=True)
    for outcome_group, reward_group in grouped:
        intrinsic = [r - o for r, o in zip(reward_group, outcome_group, strict=True)]
        mean = _mean(intrinsic)
        centred.extend(i - mean for i in intrinsic)
    batch_std = _std(centred) if len(centred) > 1 else 0.0
    out = []
    for a, c in zip(grpo, centred, strict=True):
        z = c / (batch_std + eps)
        z = 0.0 if math.isnan(z) else min(max(z, -clip), clip)
        out.append(a + beta * z)
    return out


def intrinsic_group_mask(outcome, num_generations, groups):
    out = []
    for group in _groups(outcome, num_generations):
        present = _present(group)
        uniform = not present or max(present) - min(present) <= 1e-6
        keep = {"all": True, "mixed": not uniform, "uniform": uniform}[groups]
        out.extend([keep] * len(group))
    return out


def composite_reward(outcome, ifd, token_reward, lambda_ifd, lambda_tok, outcome_conditioned, intrinsic_mask):
    full = composite_all_rows(outcome, ifd, token_reward, lambda_ifd, lambda_tok, outcome_conditioned)
    return [r if keep else o for r, o, keep in zip(full, outcome, intrinsic_mask, strict=True)]


def critical_token_advantages(
    sequence_advantages,
    token_logps,
    entropy,
    critical_mask,
    correct,
    num_generations,
    lambda_tok,
    alpha,
    beta,
    tau_h,
    asymmetric,
    scorable,
):
    rows = len(sequence_advantages)

    def token_value(i, t):
        if correct[i] or not asymmetric:
            return token_logps[i][t]
        h = entropy[i][t]
        return alpha * h - beta * max(0.0, tau_h - h)

    out = []
    for start in range(0, rows, num_generations):
        members = [i for i in range(start, start + num_generations) if scorable[i]]
        values = [token_value(i, t) for i in members for t, c in enumerate(critical_mask[i]) if c]
        baseline = sum(values) / len(values) if values else 0.0
        for i in range(start, start + num_generations):
            if not scorable[i]:
                out.append([0.0] * len(critical_mask[i]))
                continue
            out.append(
                [
                    sequence_advantages[i] + lambda_tok * (token_value(i, t) - baseline)
                    if c
                    else sequence_advantages[i]
                    for t, c in enumerate(critical_mask[i])
                ]
            )
    return out
