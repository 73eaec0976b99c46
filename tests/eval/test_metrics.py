import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from ispo.eval import bootstrap_ci, bootstrap_macro_ci, default_pass_ks, pass_at_k
from ispo.eval.metrics import per_problem_scores


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_fraction_correct():
    for n in (1, 7, 64):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n)


@pytest.mark.parametrize(("n", "c", "k"), [(2000, 3, 100), (1000, 1, 500), (5000, 10, 4999), (300, 150, 32)])
def test_pass_at_k_is_stable_for_large_n(n, c, k):
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_pass_at_k_grows_with_k_and_c():
    values = [pass_at_k(32, 4, k) for k in range(1, 33)]
    assert values == sorted(values) and values[-1] == 1.0
    assert [pass_at_k(32, c, 8) for c in range(33)] == sorted(pass_at_k(32, c, 8) for c in range(33))


@pytest.mark.parametrize(
    ("n", "c", "k"), [(0, 0, 1), (4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5), (4.0, 2, 1), (4, True, 1)]
)
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_default_pass_ks():
    assert default_pass_ks(1) == []
    assert default_pass_ks(16) == [2, 4, 8, 16]
    assert default_pass_ks(32) == [2, 4, 8, 16, 32]
    assert default_pass_ks(12) == [2, 4, 8, 12]


def test_bootstrap_is_seeded_and_covers_the_mean():
    scores = np.random.default_rng(1).integers(0, 2, size=200).astype(float)
    low, high = bootstrap_ci(scores, seed=3)
    assert (low, high) == bootstrap_ci(scores, seed=3)
    assert low < scores.mean() < high
    assert 0.05 < high - low < 0.2  # about 4 standard errors for p ~ 0.5, N = 200


def test_bootstrap_of_constant_scores_is_a_point():
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)
    assert bootstrap_ci([0.0]) == (0.0, 0.0)


def test_macro_bootstrap_of_one_group_is_the_plain_bootstrap():
    scores = [0, 1, 1, 0, 1, 0.5]
    assert bootstrap_macro_ci([scores], seed=7) == bootstrap_ci(scores, seed=7)


def test_macro_bootstrap_averages_benchmarks_not_problems():
    small, large = np.ones(10), np.zeros(1000)  # macro mean 0.5, micro mean ~0.01
    low, high = bootstrap_macro_ci([small, large])
    assert low == high == 0.5


@pytest.mark.parametrize("groups", [[], [[]], [np.zeros((2, 2))]])
def test_bootstrap_rejects_empty_or_misshapen_input(groups):
    with pytest.raises(ValueError):
        bootstrap_macro_ci(groups)


def test_bootstrap_rejects_bad_level():
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)


def test_per_problem_scores():
    outcomes = [[True, False, False, False], [True, True, True, True], [False] * 4]
    np.testing.assert_allclose(per_problem_scores(outcomes, "avg@4"), [0.25, 1.0, 0.0])
    np.testing.assert_allclose(per_problem_scores(outcomes, "pass@2"), [pass_at_k(4, 1, 2), 1.0, 0.0])
    np.testing.assert_allclose(per_problem_scores([[True]], "pass@1"), [1.0])
    with pytest.raises(ValueError):
        per_problem_scores(outcomes, "maj@4")
