"""``ispo.study.stats``: the t-interval and the paired difference, against hand computations."""

from __future__ import annotations

import math

import pytest

from ispo.study.stats import T_975, mean_ci, paired_difference, t_quantile_975


def t_cdf(x: float, dof: int, steps: int = 20_000) -> float:
    """P(T <= x) for x > 0 by Simpson's rule on Student's density (independent of the table)."""
    norm = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)
    density = lambda t: norm * (1 + t * t / dof) ** (-(dof + 1) / 2)
    h = x / steps
    total = density(0) + density(x) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 9, 19, 30, 40, 60, 120])
def test_tabulated_quantiles_are_the_975_quantiles(dof):
    assert t_cdf(T_975[dof], dof) == pytest.approx(0.975, abs=2e-5)


@pytest.mark.parametrize("dof", [35, 50, 80, 200, 1000])
def test_interpolated_quantiles_are_close(dof):
    assert t_cdf(t_quantile_975(dof), dof) == pytest.approx(0.975, abs=1e-4)
    assert 1.959 < t_quantile_975(dof) < t_quantile_975(30)


def test_bad_dof():
    for dof in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="dof must be an integer >= 1"):
            t_quantile_975(dof)


def test_mean_ci_by_hand():
    # values 0.30, 0.25, 0.20: mean 0.25, sd = sqrt((0.05² + 0 + 0.05²) / 2) = 0.05, t(0.975, 2) = 4.3027
    stats = mean_ci([0.30, 0.25, 0.20])
    half = 4.3027 * 0.05 / math.sqrt(3)
    assert stats["mean"] == pytest.approx(0.25) and stats["sd"] == pytest.approx(0.05) and stats["n"] == 3
    assert stats["ci95"] == pytest.approx([0.25 - half, 0.25 + half])
    single = mean_ci([0.4])
    assert single == {"mean": 0.4, "ci95": None, "sd": None, "n": 1}  # no interval from one seed
    with pytest.raises(ValueError, match="at least one"):
        mean_ci([])
    with pytest.raises(ValueError, match="finite"):
        mean_ci([0.1, float("nan")])


def test_paired_difference_by_hand():
    method = {0: 0.30, 1: 0.25, 2: 0.28}
    baseline = {2: 0.24, 0: 0.27, 1: 0.26}  # matched by seed, not by order
    # d = 0.03, -0.01, 0.04: mean 0.02; deviations 0.01, -0.03, 0.02: sd = sqrt(0.0014 / 2)
    sd = math.sqrt(0.0014 / 2)
    half = 4.3027 * sd / math.sqrt(3)
    result = paired_difference(method, baseline)
    assert result["mean_diff"] == pytest.approx(0.02) and result["sd"] == pytest.approx(sd)
    assert result["ci95"] == pytest.approx([0.02 - half, 0.02 + half])
    assert result["seeds"] == [0, 1, 2] and result["n"] == 3


def test_pairing_removes_the_seed_to_seed_spread():
    """A method always 0.02 above the baseline on wildly different seeds: paired interval is a point above 0."""
    baseline = {0: 0.10, 1: 0.40, 2: 0.25, 3: 0.70}
    method = {s: v + 0.02 for s, v in baseline.items()}
    paired = paired_difference(method, baseline)
    assert paired["ci95"][0] == pytest.approx(0.02) and paired["ci95"][1] == pytest.approx(0.02)
    unpaired_low = mean_ci(list(method.values()))["ci95"][0]
    assert unpaired_low < mean_ci(list(baseline.values()))["mean"]  # unpaired intervals overlap widely


def test_paired_difference_uses_only_shared_seeds():
    result = paired_difference({0: 0.5, 1: 0.6, 5: 0.9}, {0: 0.4, 1: 0.4, 2: 0.1})
    assert result["seeds"] == [0, 1] and result["mean_diff"] == pytest.approx(0.15)
    assert paired_difference({0: 0.5}, {1: 0.5}) is None
    assert paired_difference({3: 0.5}, {3: 0.25})["ci95"] is None
