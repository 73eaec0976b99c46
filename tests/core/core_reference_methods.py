"""Plain-loop reference implementations of the neighbouring methods (docs/methods.md), from the equations.

Slow and obvious on purpose: the vectorised functions in ispo.core are tested against these. Lists in,
lists out; NaN stands for "undefined" where the vectorised code uses NaN.
"""

from __future__ import annotations

import math

from core_reference import group_advantages

# --- 1. self-certainty ------------------------------------------------------------------------------


def token_self_certainty(logits, temperature=1.0):
    """KL(U || p) per position, straight from sum_j (1/V) log((1/V) / p_j)."""

    def one(row):
        z = [v / temperature for v in row]
        top = max(z)
        log_normaliser = top + math.log(sum(math.exp(v - top) for v in z))
        size = len(z)
        return sum((1 / size) * (math.log(1 / size) - (v - log_normaliser)) for v in z)

    def walk(node):
        if node and isinstance(node[0], list):
            return [walk(child) for child in node]
        return one(node)

    return walk(logits)


def sequence_self_certainty(token_certainty, mask):
    out = []
    for values, valid in zip(token_certainty, mask, strict=True):
        kept = [v for v, m in zip(values, valid, strict=True) if m]
        out.append(sum(kept) / len(kept) if kept else 0.0)
    return out


def self_certainty_advantages(certainty, num_generations, mode, outcome, weight, combine, scale, eps):
    standardised = group_advantages(certainty, num_generations, "group", eps)
    if mode == "replace":
        return group_advantages(certainty, num_generations, scale, eps)
    if combine == "advantages":
        outcome_part = group_advantages(outcome, num_generations, scale, eps)
        return [a + weight * s for a, s in zip(outcome_part, standardised, strict=True)]
    return group_advantages(
        [r + weight * s for r, s in zip(outcome, standardised, strict=True)], num_generations, scale, eps
    )


# --- 2. RLPR ----------------------------------------------------------------------------------------


def answer_token_score(logps, mask, aggregate):
    out = []
    for row, valid in zip(logps, mask, strict=True):
        kept = [v for v, m in zip(row, valid, strict=True) if m]
        if not kept:
            out.append(0.0)
            continue
        n = len(kept)
        out.append(
            {
                "mean_prob": sum(math.exp(v) for v in kept) / n,
                "geometric_mean_prob": math.exp(sum(kept) / n),
                "mean_log_prob": sum(kept) / n,
                "sum_log_prob": sum(kept),
                "sequence_prob": math.prod(math.exp(v) for v in kept),
            }[aggregate]
        )
    return out


def rlpr_reward(with_, without, clip, format_reward, format_weight):
    out = []
    for i, s in enumerate(with_):
        r = s - (without[i] if without is not None else 0.0)
        if clip is not None:
            r = min(max(r, clip[0]), clip[1])
        if format_reward is not None:
            r = (1 - format_weight) * r + format_weight * format_reward[i]
        out.append(r)
    return out


def group_reward_std(rewards, num_generations):
    out = []
    for start in range(0, len(rewards), num_generations):
        group = [r for r in rewards[start : start + num_generations] if not math.isnan(r)]
        if len(group) < 2:
            out.append(float("nan"))
            continue
        mean = sum(group) / len(group)
        out.append(math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1)))
    return out


def rlpr_std_filter(rewards, num_generations, threshold):
    return [not math.isnan(s) and s >= threshold for s in group_reward_std(rewards, num_generations)]


def update_std_threshold(stds, previous_ema, ema_ratio, beta):
    finite = [s for s in stds if math.isfinite(s)]
    if not finite:
        ema = previous_ema
    elif previous_ema is None:
        ema = sum(finite) / len(finite)
    else:
        ema = ema_ratio * previous_ema + (1 - ema_ratio) * sum(finite) / len(finite)
    return ema, beta * ema


# --- 3. RL-ZVP --------------------------------------------------------------------------------------


def zvp_advantages(rewards, entropy, mask, num_generations, alpha, eps, atol=1e-6):
    grpo = group_advantages(rewards, num_generations, "group", eps)
    out = []
    for start in range(0, len(rewards), num_generations):
        group = rewards[start : start + num_generations]
        finite = [r for r in group if not math.isnan(r)]
        zero_variance = bool(finite) and max(finite) - min(finite) <= atol
        positive = zero_variance and sum(finite) / len(finite) > 0
        for i in range(start, start + num_generations):
            valid = [h for h, m in zip(entropy[i], mask[i], strict=True) if m]
            top = max(valid) if valid else 0.0
            row = []
            for h, m in zip(entropy[i], mask[i], strict=True):
                if not m:
                    row.append(0.0)
                elif not zero_variance or math.isnan(rewards[i]):
                    row.append(grpo[i])
                elif positive:
                    row.append(alpha * h)
                else:
                    row.append(-alpha * (top - h))
            out.append(row)
    return out


# --- 4. ProGRPO -------------------------------------------------------------------------------------


def low_probability_confidence(logps, mask, fraction):
    out = []
    for row, valid in zip(logps, mask, strict=True):
        kept = sorted(v for v, m in zip(row, valid, strict=True) if m)
        if not kept:
            out.append(float("nan"))
            continue
        k = max(1, math.ceil(len(kept) * fraction - 1e-9))
        out.append(math.exp(sum(kept[:k]) / k))
    return out


def prog_advantages(rewards, answer_conf, prompt_conf, num_generations, alpha, apply_to, skip_all_correct, eps):
    base = group_advantages(rewards, num_generations, "group", eps)
    out = list(base)
    for p, start in enumerate(range(0, len(rewards), num_generations)):
        correct = [r >= 0.5 for r in rewards[start : start + num_generations]]
        if not any(correct) or (skip_all_correct and all(correct)):
            continue
        for j, i in enumerate(range(start, start + num_generations)):
            if math.isnan(rewards[i]) or math.isnan(answer_conf[i]) or math.isnan(prompt_conf[p]):
                continue
            if apply_to == "correct" and not correct[j]:
                continue
            out[i] = base[i] + alpha * (prompt_conf[p] - answer_conf[i])
    return out


# --- 5. PACR ----------------------------------------------------------------------------------------


def newline_step_boundaries(token_ids, newline_ids, max_steps=None, include_tail=True):
    """Split into segments that each end with a maximal newline run, then merge content-free ones."""
    segments, current = [], []
    for position, token in enumerate(token_ids):
        current.append(token)
        next_is_newline = position + 1 < len(token_ids) and token_ids[position + 1] in newline_ids
        if token in newline_ids and not next_is_newline:
            segments.append(current)
            current = []
    cuts, length = [], 0
    for segment in segments:
        length += len(segment)
        if any(t not in newline_ids for t in segment):  # a newline-only segment joins the next step
            cuts.append(length)
    if include_tail and any(t not in newline_ids for t in current):
        cuts.append(len(token_ids))
    if max_steps is not None and len(cuts) > max_steps:
        n = len(cuts)
        cuts = [cuts[(j + 1) * n // max_steps - 1] for j in range(max_steps)]
    return cuts


def step_ids_from_boundaries(boundaries, length):
    out = []
    for cuts in boundaries:
        row = []
        for t in range(length):
            step = -1
            start = 0
            for k, end in enumerate(cuts):
                if start <= t < end:
                    step = k
                start = end
            row.append(step)
        out.append(row)
    return out


def confidence_gains(conf, mask):
    out = []
    for row, valid in zip(conf, mask, strict=True):
        out.append([row[k] - row[k - 1] if valid[k] else 0.0 for k in range(1, len(row))])
    return out


def pacr_sparse_score(conf, mask, mode):
    out = []
    for row, valid in zip(conf, mask, strict=True):
        present = [c for c, m in zip(row, valid, strict=True) if m]
        gains = [present[k] - present[k - 1] for k in range(1, len(present))]
        if not gains:
            out.append(0.0)
        elif mode == "rise":
            out.append(present[-1] - present[0])
        elif mode == "mean_gain":
            out.append((present[-1] - present[0]) / len(gains))
        else:
            out.append(sum(1 for g in gains if g > 0) / len(gains))
    return out


def pacr_step_returns(gains, mask, gamma):
    out = []
    for row, valid in zip(gains, mask, strict=True):
        present = [g for g, m in zip(row, valid, strict=True) if m]
        returns = [sum(gamma ** (t - k) * present[t] for t in range(k, len(present))) for k in range(len(present))]
        out.append(returns + [0.0] * (len(row) - len(present)))
    return out


def pacr_process_advantages(conf, mask, num_generations, gamma, normalisation, eps):
    gains = confidence_gains(conf, mask)
    gain_mask = [row[1:] for row in mask]
    returns = pacr_step_returns(gains, gain_mask, gamma)
    if normalisation == "none":
        return returns
    out = []
    for start in range(0, len(conf), num_generations):
        rows = range(start, start + num_generations)
        pool = [returns[i][k] for i in rows for k in range(len(returns[i])) if gain_mask[i][k]]
        for i in rows:
            row = []
            for k in range(len(returns[i])):
                if not gain_mask[i][k]:
                    row.append(0.0)
                elif normalisation == "minmax":
                    spread = max(pool) - min(pool)
                    row.append((returns[i][k] - min(pool)) / spread if spread > 0 else 0.0)
                else:
                    if len(pool) < 2:
                        row.append(0.0)
                        continue
                    mean = sum(pool) / len(pool)
                    std = math.sqrt(sum((g - mean) ** 2 for g in pool) / (len(pool) - 1))
                    row.append((returns[i][k] - mean) / (std + eps))
            out.append(row)
    return out


def pacr_dense_advantages(
    outcome, conf, mask, step_ids, completion_mask, num_generations, gamma, lambda_o, lambda_p, normalisation, eps
):
    outcome_adv = group_advantages(outcome, num_generations, "group", eps)
    process = pacr_process_advantages(conf, mask, num_generations, gamma, normalisation, eps)
    out = []
    for i, (ids, valid) in enumerate(zip(step_ids, completion_mask, strict=True)):
        row = []
        for step, m in zip(ids, valid, strict=True):
            if not m:
                row.append(0.0)
            elif step < 0:
                row.append(lambda_o * outcome_adv[i])
            else:
                row.append(lambda_o * outcome_adv[i] + lambda_p * process[i][step])
        out.append(row)
    return out


def pacr_sparse_reward(outcome, conf, mask, weight, mode, kappa):
    scores = pacr_sparse_score(conf, mask, mode)
    return [r + weight * (math.tanh(s / kappa) if kappa else s) for r, s in zip(outcome, scores, strict=True)]
