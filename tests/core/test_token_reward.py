import math

import pytest
import torch
from core_reference import random_mask
from core_reference import token_directional_reward as reference_reward
from core_reference_variants import critical_token_advantages as reference_token_advantages
from core_reference_variants import token_directional_reward as reference_variant_reward
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ispo.core import composite_reward, critical_token_advantages, intrinsic_advantages, token_directional_reward


def _random_inputs(generator, batch=12, length=8):
    logps = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 4
    hn = torch.rand(batch, length, generator=generator, dtype=torch.float64)
    critical = random_mask(batch, length, generator) & (torch.rand(batch, length, generator=generator) < 0.6)
    correct = torch.rand(batch, generator=generator) < 0.5
    return logps, hn, critical, correct


@pytest.mark.parametrize("tau,eta", [(0.3, 1.0), (0.0, 1.0), (0.5, 2.0), (1.0, 0.0)])
def test_matches_plain_loop_reference(generator, tau, eta):
    logps, hn, critical, correct = _random_inputs(generator)
    expected = reference_reward(logps.tolist(), hn.tolist(), critical.tolist(), correct.tolist(), tau, eta)
    got = token_directional_reward(logps, hn, critical, correct, tau=tau, eta=eta)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_known_values():
    logps = torch.tensor([[math.log(0.5), math.log(0.125)], [0.0, 0.0], [0.0, 0.0]])
    hn = torch.tensor([[0.9, 0.9], [0.1, 0.5], [0.2, 0.2]])
    critical = torch.tensor([[1, 1], [1, 1], [0, 0]])
    correct = torch.tensor([1, 0, 0])
    got = token_directional_reward(logps, hn, critical, correct, tau=0.3, eta=1.0)
    # correct: geometric mean prob = 0.25; incorrect: mean(0.1 - 0.2, 0.5) = 0.2; no critical: 0
    torch.testing.assert_close(got, torch.tensor([0.25, 0.2, 0.0]))


def test_hinge_only_below_tau_and_only_on_incorrect(generator):
    logps = -torch.rand(2, 50, generator=generator)
    hn = torch.linspace(0, 1, 50).repeat(2, 1)
    critical = torch.ones(2, 50, dtype=torch.bool)
    correct = torch.tensor([True, False])
    with_hinge = token_directional_reward(logps, hn, critical, correct, tau=0.3, eta=1.0)
    no_hinge = token_directional_reward(logps, hn, critical, correct, tau=0.3, eta=0.0)
    assert with_hinge[0] == no_hinge[0]  # correct rollout: hinge never acts
    assert with_hinge[1] < no_hinge[1]
    # tokens at or above tau: the hinge term is exactly zero there
    above = hn[0] >= 0.3
    for crit in (critical & above,):
        a = token_directional_reward(logps, hn, crit, correct, tau=0.3, eta=1.0)
        b = token_directional_reward(logps, hn, crit, correct, tau=0.3, eta=0.0)
        torch.testing.assert_close(a, b)


def test_bounds(generator):
    logps, hn, critical, correct = _random_inputs(generator, batch=200)
    reward = token_directional_reward(logps, hn, critical, correct, tau=0.3, eta=1.0)
    has_critical = critical.any(dim=1)
    assert ((reward[correct & has_critical] > 0) & (reward[correct & has_critical] <= 1)).all()
    assert ((reward[~correct] >= -0.3) & (reward[~correct] <= 1)).all()


def test_confident_wrong_scores_below_uncertain_wrong():
    critical = torch.ones(2, 3, dtype=torch.bool)
    hn = torch.tensor([[0.05, 0.05, 0.05], [0.8, 0.8, 0.8]])
    reward = token_directional_reward(torch.zeros(2, 3), hn, critical, torch.tensor([False, False]))
    assert reward[0] < 0 < reward[1]


def test_padding_invariance(generator):
    logps, hn, critical, correct = _random_inputs(generator)
    base = token_directional_reward(logps, hn, critical, correct)
    garbage = torch.full_like(logps, float("nan"))
    got = token_directional_reward(
        torch.where(critical, logps, garbage), torch.where(critical, hn, garbage), critical, correct
    )
    torch.testing.assert_close(got, base)


def test_errors_name_the_argument():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="correct"):
        token_directional_reward(x, x, x.bool(), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="norm_entropy"):
        token_directional_reward(x, torch.zeros(2, 4), x.bool(), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="token_logps"):
        token_directional_reward(torch.full((2, 3), float("nan")), x, torch.ones(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="tau"):
        token_directional_reward(x, x, x, torch.zeros(2), tau=2.0)


# ----- token_asymmetry (docs/algorithm.md §3b) -------------------------------------------------------------


@pytest.mark.parametrize("asymmetric", [True, False])
def test_asymmetry_option_matches_plain_loop_reference(generator, asymmetric):
    logps, hn, critical, correct = _random_inputs(generator, batch=30)
    expected = reference_variant_reward(
        logps.tolist(), hn.tolist(), critical.tolist(), correct.tolist(), 0.3, 1.0, asymmetric
    )
    got = token_directional_reward(logps, hn, critical, correct, asymmetric=asymmetric)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_symmetric_reward_uses_the_correct_formula_on_every_rollout(generator):
    logps, hn, critical, correct = _random_inputs(generator, batch=40)
    symmetric = token_directional_reward(logps, hn, critical, correct, asymmetric=False)
    assert torch.equal(symmetric, token_directional_reward(logps, hn, critical, torch.ones_like(correct)))
    assert not torch.equal(symmetric, token_directional_reward(logps, hn, critical, correct))
    has_critical = critical.any(dim=1)
    assert ((symmetric[has_critical] > 0) & (symmetric[has_critical] <= 1)).all()


# ----- token_credit = "critical": critical_token_advantages (docs/algorithm.md §3b) ------------------------


@st.composite
def token_batches(draw):
    g = draw(st.integers(1, 5))
    p = draw(st.integers(1, 4))
    length = draw(st.integers(1, 7))
    batch = g * p
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logps = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 4
    hn = torch.rand(batch, length, generator=generator, dtype=torch.float64)
    valid = random_mask(batch, length, generator)
    critical = valid & (torch.rand(batch, length, generator=generator) < draw(st.floats(0, 1)))
    correct = torch.rand(batch, generator=generator) < 0.5
    scorable = torch.rand(batch, generator=generator) < 0.85
    sequence = torch.randn(batch, generator=generator, dtype=torch.float64)
    return g, sequence, logps, hn, critical, correct, scorable, valid


@settings(max_examples=150, deadline=None)
@given(
    case=token_batches(),
    lambda_tok=st.floats(0, 2),
    tau=st.floats(0, 1),
    eta=st.floats(0, 3),
    asymmetric=st.booleans(),
)
def test_critical_token_advantages_match_plain_loop_reference(case, lambda_tok, tau, eta, asymmetric):
    g, sequence, logps, hn, critical, correct, scorable, _ = case
    got = critical_token_advantages(
        sequence,
        logps,
        hn,
        critical,
        correct,
        g,
        lambda_tok=lambda_tok,
        tau=tau,
        eta=eta,
        asymmetric=asymmetric,
        scorable=scorable,
    )
    expected = reference_token_advantages(
        sequence.tolist(),
        logps.tolist(),
        hn.tolist(),
        critical.tolist(),
        correct.tolist(),
        g,
        lambda_tok,
        tau,
        eta,
        asymmetric,
        scorable.tolist(),
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64).view_as(got))


def test_critical_token_advantages_known_values():
    # one group of two rollouts: a correct one with critical p = 0.5, an incorrect one with Hn 0.1 and 0.6
    logps = torch.tensor([[math.log(0.5), 0.0], [0.0, 0.0]], dtype=torch.float64)
    hn = torch.tensor([[0.9, 0.9], [0.1, 0.6]], dtype=torch.float64)
    critical = torch.tensor([[1, 0], [1, 1]])
    sequence = torch.tensor([1.0, -1.0], dtype=torch.float64)
    correct = torch.tensor([1, 0])
    got = critical_token_advantages(sequence, logps, hn, critical, correct, 2, lambda_tok=0.5, tau=0.3, eta=1.0)
    # r = 0.5 ; 0.1 - 0.2 = -0.1 ; 0.6  -> b = 1/3
    b = 1 / 3
    expected = torch.tensor(
        [[1.0 + 0.5 * (0.5 - b), 1.0], [-1.0 + 0.5 * (-0.1 - b), -1.0 + 0.5 * (0.6 - b)]], dtype=torch.float64
    )
    torch.testing.assert_close(got, expected)


@settings(max_examples=60, deadline=None)
@given(case=token_batches(), asymmetric=st.booleans())
def test_critical_token_advantages_zero_weight_is_the_sequence_advantage_bit_for_bit(case, asymmetric):
    g, sequence, logps, hn, critical, correct, scorable, _ = case
    got = critical_token_advantages(sequence, logps, hn, critical, correct, g, lambda_tok=0.0, asymmetric=asymmetric)
    assert torch.equal(got, sequence[:, None].expand_as(logps))


@settings(max_examples=80, deadline=None)
@given(case=token_batches(), lambda_tok=st.floats(0, 2), asymmetric=st.booleans())
def test_critical_token_credit_sums_to_zero_per_group(case, lambda_tok, asymmetric):
    g, sequence, logps, hn, critical, correct, scorable, _ = case
    got = critical_token_advantages(
        sequence, logps, hn, critical, correct, g, lambda_tok=lambda_tok, asymmetric=asymmetric, scorable=scorable
    )
    credit = torch.where(scorable[:, None], got - sequence[:, None], 0.0)
    assert (credit[~critical] == 0).all()
    sums = credit.view(-1, g * logps.shape[1]).sum(dim=1)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-9, rtol=0)


@settings(max_examples=150, deadline=None)
@given(
    g=st.integers(2, 8),
    p=st.integers(1, 4),
    lambda_ifd=st.floats(0, 0.49),
    lambda_tok=st.floats(0, 1),
    tau=st.floats(0, 1),
    eta=st.floats(0, 2),
    seed=st.integers(0, 2**16),
)
def test_critical_token_dominance_in_mixed_groups(g, p, lambda_ifd, lambda_tok, tau, eta, seed):
    """lambda_tok (1 + eta tau) < (1 - 2 lambda_ifd) / ((1 + 2 lambda_ifd)/sqrt(2) + eps): every valid
    token of a correct rollout keeps a larger advantage than every valid token of an incorrect one."""
    assume(lambda_tok * (1 + eta * tau) < (1 - 2 * lambda_ifd) / ((1 + 2 * lambda_ifd) / math.sqrt(2) + 1e-4) - 1e-9)
    generator = torch.Generator().manual_seed(seed)
    batch, length = g * p, 6
    outcome = (torch.rand(batch, generator=generator) < 0.5).double()
    outcome[torch.rand(batch, generator=generator) < 0.15] = float("nan")
    scorable = ~torch.isnan(outcome)
    correct = scorable & (outcome == 1)
    ifd = torch.randn(batch, generator=generator, dtype=torch.float64) * 20
    no_token = torch.zeros(batch, dtype=torch.float64)
    reward = composite_reward(outcome, ifd, no_token, lambda_ifd=lambda_ifd, lambda_tok=0.0)
    sequence = intrinsic_advantages(outcome, reward, g, scale="group")
    # extreme token values make the bound bite: p near 0 or 1, Hn near 0 or 1
    logps = torch.where(torch.rand(batch, length, generator=generator) < 0.5, -30.0, 0.0).double()
    hn = (torch.rand(batch, length, generator=generator) < 0.5).double()
    valid = random_mask(batch, length, generator, min_len=1)
    critical = valid & (torch.rand(batch, length, generator=generator) < 0.7)
    got = critical_token_advantages(
        sequence, logps, hn, critical, correct, g, lambda_tok=lambda_tok, tau=tau, eta=eta, scorable=scorable
    ).view(-1, g, length)
    valid, correct, incorrect = valid.view(-1, g, length), correct.view(-1, g), (scorable & ~correct).view(-1, g)
    for group, ok, bad, mask in zip(got, correct, incorrect, valid, strict=True):
        if ok.any() and bad.any():
            assert group[ok][mask[ok]].min() > group[bad][mask[bad]].max()


@pytest.mark.parametrize("asymmetric", [True, False])
def test_critical_token_dominance_bound_is_nearly_tight(asymmetric):
    """A [1, 0] group: the correct rollout's one token is not critical; the incorrect rollout has one critical
    token with Hn = 1 and 400 with Hn = 0 (r = -eta tau), dragging b_g towards -eta tau (towards 0 when
    symmetric, the p of those tokens being ~0). Dominance holds just below the bound and fails 1% above it."""
    tau, eta, many = 0.3, 1.0, 400
    outcome = torch.tensor([1.0, 0.0], dtype=torch.float64)
    sequence = intrinsic_advantages(outcome, outcome, 2)
    gap = float(sequence[0] - sequence[1])
    logps = torch.cat([torch.zeros(2, 1), torch.full((2, many), -40.0)], dim=1).double()
    hn = torch.cat([torch.ones(2, 1), torch.zeros(2, many)], dim=1).double()
    critical = torch.tensor([[False] * (many + 1), [True] * (many + 1)])
    correct = torch.tensor([True, False])
    limit = gap / (1 + eta * tau) if asymmetric else gap
    for factor, holds in ((0.999, True), (1.01, False)):
        weight = limit * factor
        got = critical_token_advantages(
            sequence, logps, hn, critical, correct, 2, lambda_tok=weight, tau=tau, eta=eta, asymmetric=asymmetric
        )
        assert bool(got[0].min() > got[1].max()) is holds


def test_critical_token_dominance_fails_when_the_weight_is_too_large():
    """The contrast: a confident wrong critical token outranks a correct non-critical one when lambda_tok is large."""
    sequence = torch.tensor([0.7071, -0.7071], dtype=torch.float64)  # a [1, 0] group
    logps = torch.tensor([[-30.0], [0.0]], dtype=torch.float64)
    hn = torch.tensor([[0.5], [1.0]], dtype=torch.float64)
    critical = torch.tensor([[True], [True]])
    got = critical_token_advantages(sequence, logps, hn, critical, torch.tensor([True, False]), 2, lambda_tok=1.5)
    assert got[1, 0] > got[0, 0]


@settings(max_examples=40, deadline=None)
@given(case=token_batches(), seed=st.integers(0, 2**16))
def test_critical_token_advantages_permutation_equivariance(case, seed):
    g, sequence, logps, hn, critical, correct, scorable, _ = case
    generator = torch.Generator().manual_seed(seed)
    perm = torch.cat([torch.randperm(g, generator=generator) + g * k for k in range(sequence.numel() // g)])
    base = critical_token_advantages(sequence, logps, hn, critical, correct, g, scorable=scorable)
    got = critical_token_advantages(
        sequence[perm], logps[perm], hn[perm], critical[perm], correct[perm], g, scorable=scorable[perm]
    )
    torch.testing.assert_close(got, base[perm])


@settings(max_examples=40, deadline=None)
@given(case=token_batches(), extra=st.integers(0, 4))
def test_critical_token_advantages_padding_invariance(case, extra):
    """Garbage at non-critical positions and extra padding columns change nothing; padding carries A_i."""
    g, sequence, logps, hn, critical, correct, scorable, _ = case
    base = critical_token_advantages(sequence, logps, hn, critical, correct, g, scorable=scorable)
    batch = logps.shape[0]
    garbage = torch.full_like(logps, float("nan"))
    padded_logps = torch.cat([torch.where(critical, logps, garbage), torch.full((batch, extra), float("inf"))], dim=1)
    padded_hn = torch.cat([torch.where(critical, hn, garbage), torch.full((batch, extra), -5.0)], dim=1)
    padded_critical = torch.cat([critical, torch.zeros(batch, extra, dtype=torch.bool)], dim=1)
    got = critical_token_advantages(sequence, padded_logps, padded_hn, padded_critical, correct, g, scorable=scorable)
    torch.testing.assert_close(got[:, : logps.shape[1]], base)
    expected_padding = torch.where(scorable, sequence, 0.0)[:, None].expand(batch, extra)
    torch.testing.assert_close(got[:, logps.shape[1] :], expected_padding)


def test_critical_token_advantages_unscorable_rows_are_zero_and_left_out(generator):
    logps, hn, critical, correct = _random_inputs(generator, batch=8)
    critical[:, 0] = True
    sequence = torch.randn(8, generator=generator, dtype=torch.float64)
    scorable = torch.ones(8, dtype=torch.bool)
    scorable[2] = False
    base = critical_token_advantages(sequence, logps, hn, critical, correct, 4, scorable=scorable)
    assert (base[2] == 0).all()
    changed_logps, changed_hn = logps.clone(), hn.clone()
    changed_logps[2], changed_hn[2] = -20.0, 0.0  # the unscorable row's values do not enter the baseline
    got = critical_token_advantages(sequence, changed_logps, changed_hn, critical, correct, 4, scorable=scorable)
    assert torch.equal(got, base)


def test_critical_token_advantages_errors_name_the_argument():
    x = torch.zeros(4, 3)
    rows = torch.zeros(4)
    with pytest.raises(ValueError, match="sequence_advantages"):
        critical_token_advantages(torch.zeros(3), x, x, x, rows, 2)
    with pytest.raises(ValueError, match="sequence_advantages"):
        critical_token_advantages(torch.tensor([0.0, float("nan"), 0.0, 0.0]), x, x, x, rows, 2)
    with pytest.raises(ValueError, match="does not divide"):
        critical_token_advantages(rows, x, x, x, rows, 3)
    with pytest.raises(ValueError, match="lambda_tok"):
        critical_token_advantages(rows, x, x, x, rows, 2, lambda_tok=-1.0)
    with pytest.raises(ValueError, match="scorable"):
        critical_token_advantages(rows, x, x, x, rows, 2, scorable=torch.zeros(3))
    with pytest.raises(ValueError, match="norm_entropy"):
        critical_token_advantages(rows, x, torch.full((4, 3), float("nan")), torch.ones(4, 3), rows, 2)
