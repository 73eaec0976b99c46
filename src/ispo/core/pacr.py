"""PACR: the rise of the gold answer's log-probability over reasoning steps (docs/methods.md, 5).

Source: Yoon, Yoon, Jang, Eom, Dai, Luo, Hasegawa-Johnson, Yoo, "PACR: Progressively Ascending Confidence
Reward for LLM Reasoning", arXiv:2510.22255. The equations follow the abstract, the public reviews and
the same group's description of PACR as a baseline in PDCR (arXiv:2605.13467: step confidence,
confidence gain, discounted return, min-max normalisation, weighted sum with the outcome advantage).
Step splitting, the sparse variant and the defaults are marked [ours] and are knobs.

Pipeline (the trainer builds the prefixes and runs the extra forwards):

    completion token ids --newline_step_boundaries--> cut points --> K+1 prefixes (0..K steps)
    forward "prompt + first k steps + marker + gold answer" --pacr_step_confidence--> c_k, (B, K+1)
    c (B, K+1) --pacr_dense_advantages--> (B, T) token advantages     (Dense-PACR)
               --pacr_sparse_reward-----> (B,) reward for GRPO         (Sparse-PACR)
"""

from __future__ import annotations

import math
import typing
from collections.abc import Collection, Sequence
from typing import Literal

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages
from ispo.core.rlpr import AnswerAggregate, answer_token_score

SparseScore = Literal["rise", "mean_gain", "ascending_fraction"]
SPARSE_SCORES: tuple[str, ...] = typing.get_args(SparseScore)
ProcessNormalisation = Literal["minmax", "zscore", "none"]
PROCESS_NORMALISATIONS: tuple[str, ...] = typing.get_args(ProcessNormalisation)


def newline_step_boundaries(
    token_ids: Sequence[int],
    newline_token_ids: Collection[int],
    *,
    max_steps: int | None = None,
    include_tail: bool = True,
) -> list[int]:
    """Cut points that split a reasoning span into newline-delimited steps.

    A step ends after a run of consecutive newline-ending tokens; the returned cut is the index just
    past that run, so step k (1-based) is ``token_ids[cuts[k-2]:cuts[k-1]]`` (with cuts[-1] = 0) and the
    prefix "first k steps" is ``token_ids[:cuts[k-1]]``. A span made only of newline tokens is not a step:
    it joins the next step [ours]. With ``include_tail`` the text after the last newline is a final step
    (cut at ``len(token_ids)``) [ours]. With ``max_steps`` and more cuts than that, evenly spaced cuts are
    kept (adjacent steps merge), always including the last one, which bounds the extra forwards to
    ``max_steps + 1`` per rollout [ours].

    ``newline_token_ids`` are the ids whose text ends with a newline; with BPE vocabularies that includes
    merged tokens such as ``".\\n\\n"`` (the trainer derives the set from the tokenizer once). Pass the
    reasoning tokens only (before the answer marker), never re-tokenised text.

    Pure Python: token_ids of length n -> sorted list of K cut points in [1, n].
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be None or >= 1, got {max_steps}")
    newline = frozenset(int(t) for t in newline_token_ids)
    ids = [int(t) for t in token_ids]
    cuts: list[int] = []
    has_content = False  # a non-newline token since the last cut
    for position, token in enumerate(ids):
        if token not in newline:
            has_content = True
            continue
        run_ends = position + 1 == len(ids) or ids[position + 1] not in newline
        if run_ends and has_content:
            cuts.append(position + 1)
            has_content = False
    if include_tail and has_content:
        cuts.append(len(ids))
    if max_steps is not None and len(cuts) > max_steps:
        cuts = [cuts[((j + 1) * len(cuts)) // max_steps - 1] for j in range(max_steps)]
    return cuts


def step_ids_from_boundaries(boundaries: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Map each completion position to the 0-based index of the step that contains it.

    Row b's step k (0-based) covers positions [cuts[k-1], cuts[k]) with cuts[-1] = 0; positions at or
    past the last cut (the answer, padding) get -1.

    Shapes: B lists of cut points, length T -> ``(B, T)`` long.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    ids = torch.full((len(boundaries), length), -1, dtype=torch.long)
    for row, cuts in enumerate(boundaries):
        start = 0
        for step, end in enumerate(cuts):
            if not start < end <= length:
                raise ValueError(
                    f"boundaries[{row}] must be strictly increasing cut points in [1, {length}], got {list(cuts)}"
                )
            ids[row, start:end] = step
            start = end
    return ids


def _check_steps(step_confidence: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    check_tensor("step_confidence", step_confidence, 2)
    check_same_shape("step_confidence", step_confidence, step_mask=step_mask)
    mask = as_bool_mask("step_mask", step_mask)
    if step_confidence.shape[1] < 1:
        raise ValueError("step_confidence must have at least one column (k = 0, no reasoning)")
    if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("step_mask must be right-padded: no valid step after a padded one")
    check_finite("step_confidence", step_confidence, mask)
    return mask


def pacr_step_confidence(
    step_gold_logps: torch.Tensor,
    step_gold_mask: torch.Tensor,
    *,
    aggregate: AnswerAggregate = "sum_log_prob",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step confidences c_k from the gold answer's token log-probs after each reasoning prefix.

        c_k = log pi(y* | q, h_1..h_k, marker) = sum_j log pi(y*_j | q, h_1..h_k, marker, y*_<j)

    (``aggregate="sum_log_prob"``, the answer's log-probability). "mean_log_prob" (per-token mean,
    which removes the answer length from the scale) is an alternative [ours]; see
    ``answer_token_score`` for the others. A step is present when it has at least one gold token.

    Shapes: step_gold_logps, step_gold_mask ``(B, K+1, A)`` -> step_confidence ``(B, K+1)`` and
    step_mask ``(B, K+1)`` bool (right-padded: the trainer fills prefixes k = 0..K_i first).
    """
    check_tensor("step_gold_logps", step_gold_logps, 3)
    check_same_shape("step_gold_logps", step_gold_logps, step_gold_mask=step_gold_mask)
    mask = as_bool_mask("step_gold_mask", step_gold_mask)
    batch, num_prefixes, length = step_gold_logps.shape
    score = answer_token_score(
        step_gold_logps.reshape(batch * num_prefixes, length),
        mask.reshape(batch * num_prefixes, length),
        aggregate=aggregate,
    )
    return score.view(batch, num_prefixes), mask.any(dim=2)


def confidence_gains(step_confidence: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Per-step confidence gains g_k = c_k - c_{k-1}, k = 1..K.

    c_k = log pi(y* | q, h_1..h_k) is the gold answer's log-probability after the first k steps (c_0:
    after the prompt alone). Gains telescope: sum_{k=1}^{K_i} g_k = c_{K_i} - c_0.

    Shapes: step_confidence, step_mask ``(B, K+1)`` (right-padded) -> ``(B, K)``, 0 where step k is
    padded. The valid-gain mask is ``step_mask[:, 1:]``.
    """
    mask = _check_steps(step_confidence, step_mask)
    values = step_confidence.masked_fill(~mask, 0.0)
    gains = values[:, 1:] - values[:, :-1]
    return torch.where(mask[:, 1:], gains, torch.zeros_like(gains))


def pacr_sparse_score(
    step_confidence: torch.Tensor,
    step_mask: torch.Tensor,
    *,
    mode: SparseScore = "rise",
) -> torch.Tensor:
    """One trajectory-level PACR score per rollout [ours: the paper's sparse form could not be read].

        "rise":                c_K - c_0 = sum_k g_k        (final-vs-initial rise, nats)
        "mean_gain":           (c_K - c_0) / K
        "ascending_fraction":  (1/K) #{k : g_k > 0}          in [0, 1]

    A rollout with no step (K = 0) scores 0.

    Shapes: ``(B, K+1)`` -> ``(B,)``.
    """
    if mode not in SPARSE_SCORES:
        raise ValueError(f"mode must be one of {SPARSE_SCORES}, got {mode!r}")
    gains = confidence_gains(step_confidence, step_mask)
    gain_mask = as_bool_mask("step_mask", step_mask)[:, 1:]
    num_steps = gain_mask.sum(dim=1)
    if mode == "ascending_fraction":
        total = ((gains > 0) & gain_mask).sum(dim=1).to(gains.dtype)
    else:
        total = gains.sum(dim=1)
    if mode == "rise":
        return total
    return total / num_steps.clamp(min=1).to(gains.dtype)


def pacr_step_returns(gains: torch.Tensor, gain_mask: torch.Tensor, *, gamma: float = 1.0) -> torch.Tensor:
    """Discounted step returns G_k = sum_{t=k}^{K_i} gamma^(t-k) g_t.

    With gamma = 1, G_1 = c_{K_i} - c_0 (the sparse "rise"), and G_k - G_{k+1} = g_k.

    Shapes: gains, gain_mask ``(B, K)`` (right-padded) -> ``(B, K)``, 0 where padded.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    check_tensor("gains", gains, 2)
    check_same_shape("gains", gains, gain_mask=gain_mask)
    mask = as_bool_mask("gain_mask", gain_mask)
    check_finite("gains", gains, mask)
    values = gains.masked_fill(~mask, 0.0)
    returns = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0]) if values.shape[1] else None
    for k in range(values.shape[1] - 1, -1, -1):  # K is small (tens of steps): a column loop is cheap
        running = values[:, k] + gamma * running
        returns[:, k] = running
    return torch.where(mask, returns, torch.zeros_like(returns))


def pacr_process_advantages(
    step_confidence: torch.Tensor,
    step_mask: torch.Tensor,
    num_generations: int,
    *,
    gamma: float = 1.0,
    normalisation: ProcessNormalisation = "minmax",
    eps: float = 1e-4,
) -> torch.Tensor:
    """Per-step process advantages A_P: step returns normalised over the group's steps.

        "minmax":  A_P = (G_k - min_grp G) / (max_grp G - min_grp G)     in [0, 1]   (PACR, as in PDCR)
        "zscore":  A_P = (G_k - mean_grp G) / (std_grp G + eps)                      [ours]
        "none":    A_P = G_k

    min/max/mean/std run over every valid step of every rollout of the prompt's group. A group whose
    steps all have the same return (or that has none) gets A_P = 0 [ours].

    Shapes: step_confidence, step_mask ``(B, K+1)`` with B = P * num_generations -> ``(B, K)``, 0 where
    padded.
    """
    if normalisation not in PROCESS_NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {PROCESS_NORMALISATIONS}, got {normalisation!r}")
    check_groups("step_confidence", step_confidence.shape[0] if step_confidence.dim() == 2 else 0, num_generations)
    gains = confidence_gains(step_confidence, step_mask)
    gain_mask = as_bool_mask("step_mask", step_mask)[:, 1:]
    returns = pacr_step_returns(gains, gain_mask, gamma=gamma)
    if normalisation == "none" or returns.shape[1] == 0:
        return returns

    num_steps = returns.shape[1]
    grouped = returns.reshape(-1, num_generations * num_steps)  # (P, G*K): one row per group
    valid = gain_mask.reshape(-1, num_generations * num_steps)
    count = valid.sum(dim=1, keepdim=True)
    if normalisation == "minmax":
        low = grouped.masked_fill(~valid, math.inf).amin(dim=1, keepdim=True)
        high = grouped.masked_fill(~valid, -math.inf).amax(dim=1, keepdim=True)
        spread = high - low
        degenerate = (count == 0) | ~(spread > 0)
        normalised = (grouped - low.masked_fill(degenerate, 0.0)) / spread.masked_fill(degenerate, 1.0)
    else:
        mean = grouped.masked_fill(~valid, 0.0).sum(dim=1, keepdim=True) / count.clamp(min=1)
        squared = ((grouped - mean) ** 2).masked_fill(~valid, 0.0).sum(dim=1, keepdim=True)
        std = (squared / (count - 1).clamp(min=1)).sqrt()  # unbiased, like GRPO's group std
        degenerate = count < 2
        normalised = (grouped - mean) / (std + eps)
    normalised = torch.where(degenerate, torch.zeros_like(normalised), normalised)
    normalised = torch.where(valid, normalised, torch.zeros_like(normalised))
    return normalised.reshape(returns.shape)


def pacr_dense_advantages(
    outcome: torch.Tensor,
    step_confidence: torch.Tensor,
    step_mask: torch.Tensor,
    step_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    num_generations: int,
    *,
    gamma: float = 1.0,
    lambda_outcome: float = 1.0,
    lambda_process: float = 0.2,
    normalisation: ProcessNormalisation = "minmax",
    scale: RewardScale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """Dense-PACR token advantages: outcome advantage plus the step's process advantage.

        A_{i,t} = lambda_O * A_O,i + lambda_P * A_P,i,k(t)     t inside step k
        A_{i,t} = lambda_O * A_O,i                              t in no step (the answer) [ours]

    A_O = ``group_advantages(outcome)`` (GRPO, ``scale``/``eps``), A_P = ``pacr_process_advantages``.
    Weights lambda_O = 1 and lambda_P = 0.2 are defaults of ours (the readable sources name the weights,
    not their values). With lambda_P = 0 this is GRPO exactly. Padded positions get 0.

    Shapes: outcome ``(B,)``; step_confidence, step_mask ``(B, K+1)``; step_ids ``(B, T)`` long with
    values in [-1, K) (``step_ids_from_boundaries``); completion_mask ``(B, T)`` -> ``(B, T)``.
    """
    if scale not in REWARD_SCALES:
        raise ValueError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    for name, weight in (("lambda_outcome", lambda_outcome), ("lambda_process", lambda_process)):
        if not math.isfinite(weight):
            raise ValueError(f"{name} must be finite, got {weight}")
    check_tensor("outcome", outcome, 1)
    check_tensor("step_ids", step_ids, 2)
    check_same_shape("step_ids", step_ids, completion_mask=completion_mask)
    mask = as_bool_mask("completion_mask", completion_mask)
    if step_ids.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool):
        raise ValueError(f"step_ids must be an integer tensor, got {step_ids.dtype}")
    rows = {outcome.shape[0], step_ids.shape[0], step_confidence.shape[0] if step_confidence.dim() == 2 else -1}
    if len(rows) != 1:
        raise ValueError(
            f"outcome, step_confidence and step_ids must have the same number of rows, got "
            f"{outcome.shape[0]}, {tuple(step_confidence.shape)}, {step_ids.shape[0]}"
        )
    process = pacr_process_advantages(
        step_confidence, step_mask, num_generations, gamma=gamma, normalisation=normalisation, eps=eps
    )
    num_steps = process.shape[1]
    steps_present = as_bool_mask("step_mask", step_mask)[:, 1:].sum(dim=1)
    in_step = (step_ids >= 0) & mask
    if bool((step_ids < -1).any()) or bool((in_step & (step_ids >= steps_present[:, None])).any()):
        raise ValueError("step_ids must be -1 or the index of a valid step of its row")

    outcome_advantage = group_advantages(outcome, num_generations, scale=scale, eps=eps)
    dtype = torch.promote_types(outcome_advantage.dtype, process.dtype)
    gathered = torch.gather(
        torch.cat([process.to(dtype), torch.zeros(process.shape[0], 1, dtype=dtype, device=process.device)], dim=1),
        1,
        torch.where(in_step, step_ids, torch.full_like(step_ids, num_steps)),  # column K is a zero column
    )
    token_advantage = lambda_outcome * outcome_advantage.to(dtype)[:, None] + lambda_process * gathered
    return torch.where(mask, token_advantage, torch.zeros_like(token_advantage))


def pacr_sparse_reward(
    outcome: torch.Tensor,
    step_confidence: torch.Tensor,
    step_mask: torch.Tensor,
    *,
    weight: float = 0.1,
    mode: SparseScore = "rise",
    kappa: float | None = None,
) -> torch.Tensor:
    """Sparse-PACR reward: the outcome plus a weighted trajectory-level confidence rise [ours].

        R_i = R_o,i + weight * s_i          s = ``pacr_sparse_score(mode)``
        R_i = R_o,i + weight * tanh(s_i / kappa)     with ``kappa`` (bounds the term to +-weight)

    Feed R to ``group_advantages``. "rise" is unbounded (nats): set ``kappa`` (or use
    "ascending_fraction") when the outcome must dominate, as ISPO's composite reward does. NaN outcomes
    stay NaN (left out of the group statistics).

    Shapes: outcome ``(B,)``; step_confidence, step_mask ``(B, K+1)`` -> ``(B,)``.
    """
    if not math.isfinite(weight):
        raise ValueError(f"weight must be finite, got {weight}")
    if kappa is not None and not kappa > 0:
        raise ValueError(f"kappa must be None or > 0, got {kappa}")
    check_tensor("outcome", outcome, 1)
    if bool(torch.isinf(outcome).any()):
        raise ValueError("outcome has an infinite value")
    score = pacr_sparse_score(step_confidence, step_mask, mode=mode)
    if score.shape[0] != outcome.shape[0]:
        raise ValueError(f"outcome has {outcome.shape[0]} rows but step_confidence has {score.shape[0]}")
    if kappa is not None:
        score = torch.tanh(score / kappa)
    return outcome + weight * score.to(outcome.dtype)
