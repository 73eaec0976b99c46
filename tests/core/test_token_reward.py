import math

import pytest
import torch
from core_reference import random_mask
from core_reference import token_directional_reward as reference_reward
from core_reference_variants import critical_token_advantages as reference_token_advantages
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import critical_token_advantages, token_directional_reward
from ispo.core.paper import ENTROPY_ALPHA, HINGE_BETA, HINGE_TAU

LOG_V = math.log(151_936)  # a real vocabulary: raw entropy lies in [0, log|V|]


def _random_inputs(generator, batch=12, length=8):
    logps = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 4
    entropy = torch.rand(batch, length, generator=generator, dtype=torch.float64) * 3
    critical = random_mask(batch, length, generator) & (torch.rand(batch, length, generator=generator) < 0.6)
    correct = torch.rand(batch, generator=generator) < 0.5
    return logps, entropy, critical, correct


@st.composite
def reward_batches(draw):
    batch = draw(st.integers(1, 8))
    length = draw(st.integers(1, 9))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logps = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * draw(st.sampled_from([1.0, 30.0]))
    entropy = torch.rand(batch, length, generator=generator, dtype=torch.float64) * draw(st.sampled_from([0.5, LOG_V]))
    critical = random_mask(batch, length, generator) & (torch.rand(batch, length, generator=generator) < 0.6)
    correct = torch.rand(batch, generator=generator) < 0.5
    return logps, entropy, critical, correct


shaping = dict(alpha=st.floats(0, 3), beta=st.floats(0, 3), tau_h=st.floats(0, 2))


@settings(max_examples=150, deadline=None)
@given(case=reward_batches(), asymmetric=st.booleans(), **shaping)
def test_matches_plain_loop_reference(case, asymmetric, alpha, beta, tau_h):
    logps, entropy, critical, correct = case
    expected = reference_reward(
        logps.tolist(), entropy.tolist(), critical.tolist(), correct.tolist(), alpha, beta, tau_h, asymmetric
    )
    got = token_directional_reward(
        logps, entropy, critical, correct, alpha=alpha, beta=beta, tau_h=tau_h, asymmetric=asymmetric
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_known_values():
    logps = torch.tensor([[math.log(0.5), math.log(0.125)], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    entropy = torch.tensor([[0.9, 0.9], [0.1, 0.5], [0.2, 0.2]], dtype=torch.float64)
    critical = torch.tensor([[1, 1], [1, 1], [0, 0]])
    correct = torch.tensor([1, 0, 0])
    got = token_directional_reward(logps, entropy, critical, correct)
    # correct (Eq. 6): mean log p = (log 0.5 + log 0.125) / 2 = log 0.25 (not exponentiated)
    # incorrect (Eq. 7, alpha = beta = 1, tau_h = 0.3): mean(0.1 - (0.3 - 0.1), 0.5 - 0) = mean(-0.1, 0.5) = 0.2
    # no critical token: 0
    torch.testing.assert_close(got, torch.tensor([math.log(0.25), 0.2, 0.0], dtype=torch.float64))
    # alpha = 2, beta = 0.5: mean(2 * 0.1 - 0.5 * 0.2, 2 * 0.5) = mean(0.1, 1.0) = 0.55
    got = token_directional_reward(logps, entropy, critical, correct, alpha=2.0, beta=0.5)
    torch.testing.assert_close(got, torch.tensor([math.log(0.25), 0.55, 0.0], dtype=torch.float64))


def test_raw_entropy_is_not_normalised_or_clipped():
    entropy = torch.tensor([[5.0, 11.0]], dtype=torch.float64)  # nats, above 1
    got = token_directional_reward(torch.zeros(1, 2), entropy, torch.ones(1, 2), torch.tensor([False]))
    assert float(got) == 8.0


def test_defaults_are_the_papers():
    assert (ENTROPY_ALPHA, HINGE_BETA, HINGE_TAU) == (1.0, 1.0, 0.3)
    logps, entropy, critical, correct = _random_inputs(torch.Generator().manual_seed(1))
    explicit = token_directional_reward(logps, entropy, critical, correct, alpha=1.0, beta=1.0, tau_h=0.3)
    assert torch.equal(token_directional_reward(logps, entropy, critical, correct), explicit)


# ----- signs of Eqs. 6-7 ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(case=reward_batches(), **shaping)
def test_signs(case, alpha, beta, tau_h):
    """Correct rows <= 0 (mean log p); incorrect rows >= 0 when beta = 0; 0 where C is empty."""
    logps, entropy, critical, correct = case
    reward = token_directional_reward(logps, entropy, critical, correct, alpha=alpha, beta=beta, tau_h=tau_h)
    assert (reward[correct] <= 0).all()
    no_hinge = token_directional_reward(logps, entropy, critical, correct, alpha=alpha, beta=0.0, tau_h=tau_h)
    assert (no_hinge[~correct] >= 0).all()
    assert (reward[~critical.any(dim=1)] == 0).all()
    # the hinge only ever lowers an incorrect row's reward, never touches a correct one
    assert (reward[~correct] <= no_hinge[~correct]).all()
    assert torch.equal(reward[correct], no_hinge[correct])


@settings(max_examples=100, deadline=None)
@given(h=st.floats(0, 5), tau_h=st.floats(0, 2), beta=st.floats(0.01, 3))
def test_a_confident_incorrect_token_is_penalised(h, tau_h, beta):
    """One critical token on an incorrect rollout: the hinge subtracts beta * (tau_h - H) exactly when H < tau_h."""
    entropy = torch.tensor([[h]], dtype=torch.float64)
    args = (torch.zeros(1, 1, dtype=torch.float64), entropy, torch.ones(1, 1), torch.tensor([False]))
    with_hinge = float(token_directional_reward(*args, alpha=1.0, beta=beta, tau_h=tau_h))
    without = float(token_directional_reward(*args, alpha=1.0, beta=0.0, tau_h=tau_h))
    if h < tau_h:
        assert with_hinge < without
        assert math.isclose(without - with_hinge, beta * (tau_h - h), rel_tol=1e-12, abs_tol=1e-15)
    else:
        assert with_hinge == without == h


def test_confident_wrong_scores_below_uncertain_wrong():
    critical = torch.ones(2, 3, dtype=torch.bool)
    entropy = torch.tensor([[0.05, 0.05, 0.05], [0.8, 0.8, 0.8]])
    reward = token_directional_reward(torch.zeros(2, 3), entropy, critical, torch.tensor([False, False]))
    assert reward[0] < 0 < reward[1]  # 0.05 - 0.25 = -0.2 ; 0.8


def test_padding_invariance(generator):
    logps, entropy, critical, correct = _random_inputs(generator)
    base = token_directional_reward(logps, entropy, critical, correct)
    garbage = torch.full_like(logps, float("nan"))
    got = token_directional_reward(
        torch.where(critical, logps, garbage), torch.where(critical, entropy, garbage), critical, correct
    )
    torch.testing.assert_close(got, base)
    extra = torch.cat([logps, torch.full((logps.shape[0], 3), float("inf"))], dim=1)
    extra_critical = torch.cat([critical, torch.zeros(logps.shape[0], 3, dtype=torch.bool)], dim=1)
    extra_entropy = torch.cat([entropy, torch.full((logps.shape[0], 3), -1.0)], dim=1)
    assert torch.equal(token_directional_reward(extra, extra_entropy, extra_critical, correct), base)


def test_symmetric_reward_uses_eq_6_on_every_rollout(generator):
    logps, entropy, critical, correct = _random_inputs(generator, batch=40)
    symmetric = token_directional_reward(logps, entropy, critical, correct, asymmetric=False)
    assert torch.equal(symmetric, token_directional_reward(logps, entropy, critical, torch.ones_like(correct)))
    assert not torch.equal(symmetric, token_directional_reward(logps, entropy, critical, correct))
    assert (symmetric <= 0).all()


def test_errors_name_the_argument():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="correct"):
        token_directional_reward(x, x, x.bool(), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="entropy"):
        token_directional_reward(x, torch.zeros(2, 4), x.bool(), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="entropy"):
        token_directional_reward(x, torch.full((2, 3), float("nan")), torch.ones(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="token_logps"):
        token_directional_reward(torch.full((2, 3), float("nan")), x, torch.ones(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="token_logps"):
        token_directional_reward(torch.full((2, 3), -float("inf")), x, torch.ones(2, 3), torch.ones(2))
    for name in ("alpha", "beta", "tau_h"):
        for bad in (-0.1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                token_directional_reward(x, x, x, torch.zeros(2), **{name: bad})
    token_directional_reward(x, x, x, torch.zeros(2), tau_h=5.0)  # no upper bound on tau_h (nats)


# ----- token_credit = "critical": critical_token_advantages (docs/algorithm.md, variants [ours]) ------------


@st.composite
def token_batches(draw):
    g = draw(st.integers(1, 5))
    p = draw(st.integers(1, 4))
    length = draw(st.integers(1, 7))
    batch = g * p
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logps = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 4
    entropy = torch.rand(batch, length, generator=generator, dtype=torch.float64) * 3
    valid = random_mask(batch, length, generator)
    critical = valid & (torch.rand(batch, length, generator=generator) < draw(st.floats(0, 1)))
    correct = torch.rand(batch, generator=generator) < 0.5
    scorable = torch.rand(batch, generator=generator) < 0.85
    sequence = torch.randn(batch, generator=generator, dtype=torch.float64)
    return g, sequence, logps, entropy, critical, correct, scorable, valid


@settings(max_examples=150, deadline=None)
@given(case=token_batches(), lambda_tok=st.floats(0, 2), asymmetric=st.booleans(), **shaping)
def test_critical_token_advantages_match_plain_loop_reference(case, lambda_tok, asymmetric, alpha, beta, tau_h):
    g, sequence, logps, entropy, critical, correct, scorable, _ = case
    got = critical_token_advantages(
        sequence,
        logps,
        entropy,
        critical,
        correct,
        g,
        lambda_tok=lambda_tok,
        alpha=alpha,
        beta=beta,
        tau_h=tau_h,
        asymmetric=asymmetric,
        scorable=scorable,
    )
    expected = reference_token_advantages(
        sequence.tolist(),
        logps.tolist(),
        entropy.tolist(),
        critical.tolist(),
        correct.tolist(),
        g,
        lambda_tok,
        alpha,
        beta,
        tau_h,
        asymmetric,
        scorable.tolist(),
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64).view_as(got))


def test_critical_token_advantages_known_values():
    # one group of two rollouts: a correct one with critical p = 0.5, an incorrect one with H 0.1 and 0.6 nats
    logps = torch.tensor([[math.log(0.5), 0.0], [0.0, 0.0]], dtype=torch.float64)
    entropy = torch.tensor([[0.9, 0.9], [0.1, 0.6]], dtype=torch.float64)
    critical = torch.tensor([[1, 0], [1, 1]])
    sequence = torch.tensor([1.0, -1.0], dtype=torch.float64)
    correct = torch.tensor([1, 0])
    got = critical_token_advantages(sequence, logps, entropy, critical, correct, 2, lambda_tok=0.5)
    # r = log 0.5 ; 0.1 - (0.3 - 0.1) = -0.1 ; 0.6  -> b = (log 0.5 + 0.5) / 3
    r = math.log(0.5)
    b = (r - 0.1 + 0.6) / 3
    expected = torch.tensor(
        [[1.0 + 0.5 * (r - b), 1.0], [-1.0 + 0.5 * (-0.1 - b), -1.0 + 0.5 * (0.6 - b)]], dtype=torch.float64
    )
    torch.testing.assert_close(got, expected)


@settings(max_examples=60, deadline=None)
@given(case=token_batches(), asymmetric=st.booleans())
def test_critical_token_advantages_zero_weight_is_the_sequence_advantage_bit_for_bit(case, asymmetric):
    g, sequence, logps, entropy, critical, correct, scorable, _ = case
    got = critical_token_advantages(
        sequence, logps, entropy, critical, correct, g, lambda_tok=0.0, asymmetric=asymmetric
    )
    assert torch.equal(got, sequence[:, None].expand_as(logps))


@settings(max_examples=80, deadline=None)
@given(case=token_batches(), lambda_tok=st.floats(0, 2), asymmetric=st.booleans())
def test_critical_token_credit_sums_to_zero_per_group(case, lambda_tok, asymmetric):
    g, sequence, logps, entropy, critical, correct, scorable, _ = case
    got = critical_token_advantages(
        sequence, logps, entropy, critical, correct, g, lambda_tok=lambda_tok, asymmetric=asymmetric, scorable=scorable
    )
    credit = torch.where(scorable[:, None], got - sequence[:, None], 0.0)
    assert (credit[~critical] == 0).all()
    sums = credit.view(-1, g * logps.shape[1]).sum(dim=1)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-9, rtol=0)


@pytest.mark.parametrize("lambda_tok", [1e-3, 0.1, 1.0])
def test_critical_token_advantages_have_no_outcome_dominance_bound(lambda_tok):
    """log p is unbounded below: for any lambda_tok > 0 an unlikely enough critical token of a correct
    rollout falls below the tokens of an incorrect rollout of the same group, whatever the sequence gap."""
    sequence = torch.tensor([0.7071, -0.7071], dtype=torch.float64)  # a [1, 0] group under GRPO
    entropy = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    critical = torch.tensor([[True], [True]])
    correct = torch.tensor([True, False])
    logp = -10.0 / lambda_tok  # log p = -1e4 at lambda_tok = 1e-3
    logps = torch.tensor([[logp], [0.0]], dtype=torch.float64)
    got = critical_token_advantages(sequence, logps, entropy, critical, correct, 2, lambda_tok=lambda_tok)
    assert got[0, 0] < got[1, 0]


@settings(max_examples=40, deadline=None)
@given(case=token_batches(), seed=st.integers(0, 2**16))
def test_critical_token_advantages_permutation_equivariance(case, seed):
    g, sequence, logps, entropy, critical, correct, scorable, _ = case
    generator = torch.Generator().manual_seed(seed)
    perm = torch.cat([torch.randperm(g, generator=generator) + g * k for k in range(sequence.numel() // g)])
    base = critical_token_advantages(sequence, logps, entropy, critical, correct, g, scorable=scorable)
    got = critical_token_advantages(
        sequence[perm], logps[perm], entropy[perm], critical[perm], correct[perm], g, scorable=scorable[perm]
    )
    torch.testing.assert_close(got, base[perm])


@settings(max_examples=40, deadline=None)
@given(case=token_batches(), extra=st.integers(0, 4))
def test_critical_token_advantages_padding_invariance(case, extra):
    """Garbage at non-critical positions and extra padding columns change nothing; padding carries A_i."""
    g, sequence, logps, entropy, critical, correct, scorable, _ = case
    base = critical_token_advantages(sequence, logps, entropy, critical, correct, g, scorable=scorable)
    batch = logps.shape[0]
    garbage = torch.full_like(logps, float("nan"))
    padded_logps = torch.cat([torch.where(critical, logps, garbage), torch.full((batch, extra), float("inf"))], dim=1)
    padded_entropy = torch.cat([torch.where(critical, entropy, garbage), torch.full((batch, extra), -5.0)], dim=1)
    padded_critical = torch.cat([critical, torch.zeros(batch, extra, dtype=torch.bool)], dim=1)
    got = critical_token_advantages(
        sequence, padded_logps, padded_entropy, padded_critical, correct, g, scorable=scorable
    )
    torch.testing.assert_close(got[:, : logps.shape[1]], base)
    expected_padding = torch.where(scorable, sequence, 0.0)[:, None].expand(batch, extra)
    torch.testing.assert_close(got[:, logps.shape[1] :], expected_padding)


def test_critical_token_advantages_unscorable_rows_are_zero_and_left_out(generator):
    logps, entropy, critical, correct = _random_inputs(generator, batch=8)
    critical[:, 0] = True
    sequence = torch.randn(8, generator=generator, dtype=torch.float64)
    scorable = torch.ones(8, dtype=torch.bool)
    scorable[2] = False
    base = critical_token_advantages(sequence, logps, entropy, critical, correct, 4, scorable=scorable)
    assert (base[2] == 0).all()
    changed_logps, changed_entropy = logps.clone(), entropy.clone()
    changed_logps[2], changed_entropy[2] = -20.0, 0.0  # the unscorable row's values do not enter the baseline
    got = critical_token_advantages(sequence, changed_logps, changed_entropy, critical, correct, 4, scorable=scorable)
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
    with pytest.raises(ValueError, match="entropy"):
        critical_token_advantages(rows, x, torch.full((4, 3), float("nan")), torch.ones(4, 3), rows, 2)
    for name in ("alpha", "beta", "tau_h"):
        with pytest.raises(ValueError, match=name):
            critical_token_advantages(rows, x, x, x, rows, 2, **{name: -1.0})
