"""Plain-loop reference implementations of ispo.core, written straight from the spec.

Slow and obvious on purpose: the vectorised functions are tested against these.
"""

from __future__ import annotations

import math


def conditional_ifd(logps_with, logps_without, answer_mask):
    out = []
    for row_with, row_without, row_mask in zip(logps_with, logps_without, answer_mask):
        terms = [w - wo for w, wo, m in zip(row_with, row_without, row_mask) if m]
        out.append(sum(terms) / len(terms) if terms else 0.0)
    return out


def top_fraction(values, valid, fraction):
    flat = sorted((v for row_v, row_m in zip(values, valid) for v, m in zip(row_v, row_m) if m), reverse=True)
    k = math.ceil(fraction * len(flat) - 1e-9)
    if k <= 0 or not flat:
        return [[False] * len(row) for row in values]
    threshold = flat[k - 1]
    return [[bool(m) and v >= threshold for v, m in zip(row_v, row_m)] for row_v, row_m in zip(values, valid)]


def critical_token_mask(entropy, completion_mask, drift, rho_h, rho_d, delta_min, mode):
    high = top_fraction(entropy, completion_mask, rho_h)
    if drift is None:
        drifted = [[bool(m) for m in row] for row in completion_mask]
    else:
        top = top_fraction(drift, completion_mask, rho_d)
        drifted = [[t and d >= delta_min for t, d in zip(rt, rd)] for rt, rd in zip(top, drift)]
    combine = {
        "intersection": lambda a, d: a and d,
        "entropy": lambda a, d: a,
        "drift": lambda a, d: d,
        "union": lambda a, d: a or d,
    }[mode]
    return [[combine(a, d) for a, d in zip(ra, rd)] for ra, rd in zip(high, drifted)]


def token_directional_reward(token_logps, norm_entropy, critical_mask, correct, tau, eta):
    out = []
    for logps, hn, crit, ok in zip(token_logps, norm_entropy, critical_mask, correct):
        idx = [t for t, c in enumerate(crit) if c]
        if not idx:
            out.append(0.0)
        elif ok:
            out.append(math.exp(sum(logps[t] for t in idx) / len(idx)))
        else:
            out.append(sum(hn[t] - eta * max(0.0, tau - hn[t]) for t in idx) / len(idx))
    return out


def composite_reward(outcome, ifd, token_reward, lambda_ifd, lambda_tok, kappa, outcome_conditioned):
    out = []
    for r, s, t in zip(outcome, ifd, token_reward):
        sign = (2 * min(max(r, 0.0), 1.0) - 1) if outcome_conditioned else 1.0
        out.append(r + lambda_ifd * sign * math.tanh(s / kappa) + lambda_tok * t)
    return out


def _std(values):
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return float("nan")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _mean(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def group_advantages(rewards, num_generations, scale, eps):
    batch_std = _std(rewards) if len(rewards) > 1 else 0.0
    out = []
    for start in range(0, len(rewards), num_generations):
        group = rewards[start : start + num_generations]
        mean = _mean(group)
        std = _std(group) if num_generations > 1 else 0.0
        for r in group:
            a = r - mean
            if scale == "group":
                a = a / (std + eps)
            elif scale == "batch":
                a = a / (batch_std + eps)
            out.append(0.0 if math.isnan(a) else a)
    return out


def random_mask(batch, length, generator, min_len=0):
    """Right-padded (B, T) bool completion mask with random lengths in [min_len, T]."""
    import torch

    lengths = torch.randint(min_len, length + 1, (batch,), generator=generator)
    return torch.arange(length)[None, :] < lengths[:, None]
