"""Statistics of a study over seeds: mean and 95% t-interval, and the paired difference to a baseline.

With values x_1..x_n over n seeds (one per seed), mean m = (1/n) Σ x_s, sample standard deviation
sd = sqrt(Σ (x_s - m)² / (n - 1)), and the 95% interval is

    m ± t_{0.975, n-1} · sd / sqrt(n)

(Student's t with n - 1 degrees of freedom: the seeds are a small sample). The *paired* difference of a
method to the baseline takes d_s = x_s(method) - x_s(baseline) on the seeds both have and applies the
same interval to the d_s: the seed's shared prompts and sampling cancel, so the interval is usually far
narrower than the two unpaired ones suggest. No interval from fewer than two values (``None``).

Standard library only (no scipy): the t quantiles are a table (:data:`T_975`), exact to 4 decimals for
1-30 degrees of freedom, linear in 1/dof between 30, 40, 60, 120 and infinity beyond.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

INTERVAL_METHOD = (
    "95% Student-t interval over seeds: mean ± t(0.975, n-1) · sd / sqrt(n), sd with n-1; vs_baseline: the same "
    "interval on the per-seed paired differences (method - baseline, seeds both finished)"
)

# t_{0.975, dof}: two-sided 95% quantiles of Student's t
T_975: dict[int, float] = {
    1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646, 8: 2.3060, 9: 2.2622,
    10: 2.2281, 11: 2.2010, 12: 2.1788, 13: 2.1604, 14: 2.1448, 15: 2.1314, 16: 2.1199, 17: 2.1098,
    18: 2.1009, 19: 2.0930, 20: 2.0860, 21: 2.0796, 22: 2.0739, 23: 2.0687, 24: 2.0639, 25: 2.0595,
    26: 2.0555, 27: 2.0518, 28: 2.0484, 29: 2.0452, 30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799,
}  # fmt: skip
Z_975 = 1.959964  # the normal quantile, the limit of t as dof -> infinity


def t_quantile_975(dof: int) -> float:
    """t_{0.975, dof} for ``dof >= 1`` (table; beyond 30, linear in 1/dof between the tabulated points)."""
    if not isinstance(dof, int) or isinstance(dof, bool) or dof < 1:
        raise ValueError(f"dof must be an integer >= 1, got {dof!r}")
    if dof in T_975:
        return T_975[dof]
    points = sorted(T_975.items()) + [(math.inf, Z_975)]
    for (low, t_low), (high, t_high) in zip(points, points[1:]):
        if low < dof < high:
            inverse_high = 0.0 if math.isinf(high) else 1 / high
            weight = (1 / low - 1 / dof) / (1 / low - inverse_high)
            return t_low + weight * (t_high - t_low)
    raise AssertionError("unreachable: every dof > 30 lies between two points")


def mean_ci(values: Sequence[float]) -> dict:
    """``{"mean", "ci95": [low, high] or None, "sd", "n"}`` of ``values`` (the t-interval of the module doc).

    Raises:
        ValueError: no values, or a value that is not a finite number.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values: need at least one")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"values must be finite numbers, got {values}")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": None, "sd": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "ci95": [mean - half, mean + half], "sd": sd, "n": n}


def paired_difference(method: Mapping[int, float], baseline: Mapping[int, float]) -> dict | None:
    """The paired difference method - baseline over the seeds both have (keys: seeds).

    Returns ``{"mean_diff", "ci95", "sd", "n", "seeds"}`` (``ci95`` None below two shared seeds), or None
    when no seed is shared.
    """
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        return None
    stats = mean_ci([method[s] - baseline[s] for s in seeds])
    return {"mean_diff": stats["mean"], "ci95": stats["ci95"], "sd": stats["sd"], "n": stats["n"], "seeds": seeds}
