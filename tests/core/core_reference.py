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


def entropy_filter(entropy, completion_mask, top_frac):
    """Eq. 4, one row at a time: the tokens at or above the row's k-th largest valid entropy."""
    out = []
    for row_h, row_m in zip(entropy, completion_mask):
        values = sorted((h for h, m in zip(row_h, row_m) if m), reverse=True)
        k = math.ceil(top_frac * len(values) - 1e-9)
        if k <= 0:
            out.append([False] * len(row_h))
            continue
        threshold = values[k - 1]
        out.append([bool(m) and h >= threshold for h, m in zip(row_h, row_m)])
    return out


def drift_filter(logp_policy, logp_base, completion_mask, threshold):
    """Eq. 5: valid tokens with log pi_old - log pi_base >= threshold."""
    return [
        [bool(m) and p - b >= threshold for p, b, m in zip(row_p, row_b, row_m)]
        for row_p, row_b, row_m in zip(logp_policy, logp_base, completion_mask)
    ]


def critical_token_mask(entropy, completion_mask, logp_policy, logp_base, top_frac, drift_threshold, mode):
    high = entropy_filter(entropy, completion_mask, top_frac)
    if logp_base is None:
        drifted = [[bool(m) for m in row] for row in completion_mask]
    else:
        drifted = drift_filter(logp_policy, logp_base, completion_mask, drift_threshold)
    combine = {
        "intersection": lambda e, d: e and d,
        "entropy": lambda e, d: e,
        "drift": lambda e, d: d,
        "union": lambda e, d: e or d,
    }[mode]
    return [[combine(e, d) for e, d in zip(re, rd)] for re, rd in zip(high, drifted)]


def token_directional_reward(token_logps, entropy, critical_mask, correct, alpha, beta, tau_h, asymmetric=True):
    """Eqs. 6-7: mean log p over C (correct), mean alpha*H - beta*max(0, tau_h - H) over C (incorrect)."""
    out = []
    for logps, h, crit, ok in zip(token_logps, entropy, critical_mask, correct):
        idx = [t for t, c in enumerate(crit) if c]
        if not idx:
            out.append(0.0)
        elif ok or not asymmetric:
            out.append(sum(logps[t] for t in idx) / len(idx))
        else:
            out.append(sum(alpha * h[t] - beta * max(0.0, tau_h - h[t]) for t in idx) / len(idx))
    return out


def composite_reward(outcome, ifd, token_reward, lambda_ifd, lambda_tok, outcome_conditioned):
    """Eq. 8 with raw IFD; the sign reads R_o clipped to [0, 1]."""
    out = []
    for r, s, t in zip(outcome, ifd, token_reward):
        sign = (2 * min(max(r, 0.0), 1.0) - 1) if outcome_conditioned else 1.0
        out.append(r + lambda_ifd * sign * s + lambda_tok * t)
    return out


def dominance_violations(outcome, composite, num_generations):
    """Share of mixed groups in which a lower outcome's composite is >= a higher outcome's; NaN if none."""
    mixed = violated = 0
    for start in range(0, len(outcome), num_generations):
        pairs = [
            (o, r)
            for o, r in zip(outcome[start : start + num_generations], composite[start : start + num_generations])
            if not math.isnan(o)
        ]
        if not pairs or max(o for o, _ in pairs) - min(o for o, _ in pairs) <= 1e-6:
            continue
        mixed += 1
        if any(oi < oj and ri >= rj for oi, ri in pairs for oj, rj in pairs):
            violated += 1
    return violated / mixed if mixed else float("nan")


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
