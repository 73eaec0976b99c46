"""Benchmark metrics as pure functions: pass@k, bootstrap intervals, per-benchmark and macro scores.

Everything here takes plain numbers or arrays and returns numbers; the runner feeds it the
per-sample records. Scores are fractions in [0, 1]; tables print them as percentages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from ``n`` samples of which ``c`` are correct (Chen et al., 2021).

        pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

    The product form never builds the binomials, so it stays exact to float precision for any ``n``.
    It is the probability that a uniformly random ``k``-subset of the ``n`` samples holds at least
    one correct sample; ``pass_at_k(n, c, 1) == c / n``.
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {value!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c must be in [0, n={n}], got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if n - c < k:
        return 1.0  # every k-subset must contain a correct sample
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def default_pass_ks(n: int) -> list[int]:
    """The k of pass@k reported for ``n`` samples by default: powers of two from 2 up to ``n``, and ``n``."""
    ks = [2**p for p in range(1, n.bit_length()) if 2**p < n]
    return ks + [n] if n > 1 else []


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    *,
    num_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem ``scores`` ``(N,)``.

    Problems are resampled with replacement (samples of one problem stay together, because a
    problem's score already averages them). Seeded, so the same scores always give the same interval.
    """
    return bootstrap_macro_ci([scores], num_resamples=num_resamples, level=level, seed=seed)


def bootstrap_macro_ci(
    groups: Sequence[Sequence[float] | np.ndarray],
    *,
    num_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the macro average (mean over groups of each group's mean).

    Each group (benchmark) is resampled independently with its own size, so a small benchmark
    such as AIME (30 problems) contributes its own, wider, uncertainty to the average.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    arrays = [np.asarray(group, dtype=np.float64) for group in groups]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays):
        raise ValueError("bootstrap needs at least one non-empty 1-D group of scores")
    rng = np.random.default_rng(seed)
    means = np.zeros(num_resamples)  # (R,)
    for scores in arrays:
        indices = rng.integers(0, scores.size, size=(num_resamples, scores.size))  # (R, N)
        means += scores[indices].mean(axis=1)
    means /= len(arrays)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def per_problem_scores(correct: Sequence[Sequence[bool]], metric: str) -> np.ndarray:
    """Per-problem score ``(P,)`` from each problem's sample outcomes, for one metric name.

    ``metric`` is ``"pass@1"`` or ``"avg@n"`` (fraction of correct samples) or ``"pass@k"`` (the
    unbiased estimator; every problem must have at least ``k`` samples).
    """
    name, _, k_text = metric.partition("@")
    scores = []
    for outcomes in correct:
        n, c = len(outcomes), int(sum(bool(o) for o in outcomes))
        if n == 0:
            raise ValueError("a problem has no scored samples")
        if name == "avg" or (name == "pass" and k_text == "1"):
            scores.append(c / n)
        elif name == "pass":
            scores.append(pass_at_k(n, c, int(k_text)))
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return np.asarray(scores, dtype=np.float64)
