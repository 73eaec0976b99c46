import math

import pytest
import torch
from core_reference_variants import intrinsic_advantages as reference_advantages
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ispo.core import (
    INTRINSIC_SCALES,
    composite_reward,
    group_advantages,
    intrinsic_advantages,
    min_outcome_advantage_gap,
    nanstd,
    outcome_std_floor,
)

NAN = float("nan")
LOG_V = math.log(151_936)


@st.composite
def batches(draw, min_g=1, max_g=8, max_p=5, nan=True):
    """(G, outcome, ifd, token_reward) in float64; outcomes 0/1 (NaN now and then), R_token in its real range."""
    g = draw(st.integers(min_g, max_g))
    p = draw(st.integers(1, max_p))
    choices = [0.0, 1.0, 0.0, 1.0, NAN] if nan else [0.0, 1.0]
    values = draw(st.lists(st.sampled_from(choices), min_size=g * p, max_size=g * p))
    outcome = torch.tensor(values, dtype=torch.float64)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    ifd = torch.randn(g * p, generator=generator, dtype=torch.float64) * 3
    # R_token: mean log p <= 0 on correct rows (Eq. 6), alpha H - beta max(0, tau_H - H) on incorrect ones
    # (Eq. 7, alpha = beta = 1, tau_H = 0.3: from -0.3 up to log|V|)
    uniform = torch.rand(g * p, generator=generator, dtype=torch.float64)
    token = torch.where(outcome == 1, -uniform * 8, uniform * (LOG_V + 0.3) - 0.3)
    return g, outcome, ifd, token


def _mixed_groups(outcome, g):
    """(P,) bool: the group has a scorable correct and a scorable incorrect rollout."""
    grouped = outcome.view(-1, g)
    return (grouped == 1).any(dim=1) & (grouped == 0).any(dim=1)


# ----- reference equality -------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", INTRINSIC_SCALES)
@settings(max_examples=60, deadline=None)
@given(case=batches(), lambda_ifd=st.floats(0, 2), lambda_tok=st.floats(0, 2))
def test_matches_plain_loop_reference(scale, case, lambda_ifd, lambda_tok):
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    expected = reference_advantages(outcome.tolist(), composite.tolist(), g, scale, 1e-4, 0.2, 3.0)
    got = intrinsic_advantages(outcome, composite, g, scale=scale)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("scale", ["outcome_floor", "decoupled"])
def test_matches_reference_on_non_binary_outcomes_and_garbage_on_unscorable_rows(generator, scale):
    outcome = torch.rand(24, generator=generator, dtype=torch.float64) * 2 - 0.5  # weighted rewards
    outcome[[3, 10, 11]] = NAN
    composite = outcome + torch.randn(24, generator=generator, dtype=torch.float64) * 0.1
    composite[[3, 10]] = torch.tensor([1e9, float("inf")], dtype=torch.float64)  # ignored: outcome is NaN
    expected = reference_advantages(outcome.tolist(), composite.tolist(), 4, scale, 1e-4, 0.1, 2.0)
    got = intrinsic_advantages(outcome, composite, 4, scale=scale, beta=0.1, clip=2.0)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    assert (got[[3, 10, 11]] == 0).all()


def test_known_values():
    # one group [1, 0, 0, 0] with intrinsic parts, one uniform group [0, 0, 0, 0]
    outcome = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    intrinsic = torch.tensor([0.1, 0.0, -0.1, 0.0, 0.2, -0.2, 0.0, 0.0], dtype=torch.float64)
    composite = outcome + intrinsic
    floor = 0.5  # 1/sqrt(4)
    got = intrinsic_advantages(outcome, composite, 4, scale="outcome_floor")
    # uniform group: std of [0.2, -0.2, 0, 0] is 0.163 < 0.5, so the floor divides
    torch.testing.assert_close(got[4:], intrinsic[4:] / (floor + 1e-4))
    # mixed group: its own std (0.5 exactly for one success, plus the intrinsic spread) is above the floor
    mixed = composite[:4]
    torch.testing.assert_close(got[:4], (mixed - mixed.mean()) / (mixed.std() + 1e-4))
    none = intrinsic_advantages(outcome, composite, 4, scale="none")
    torch.testing.assert_close(none, torch.cat([mixed - mixed.mean(), intrinsic[4:]]))


# ----- GRPO at weights 0 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", INTRINSIC_SCALES)
@settings(max_examples=60, deadline=None)
@given(case=batches())
def test_weights_zero_is_grpo_bit_for_bit(dtype, scale, case):
    g, outcome, ifd, token = case
    outcome, ifd, token = outcome.to(dtype), ifd.to(dtype), token.to(dtype)
    composite = composite_reward(outcome, ifd, token, lambda_ifd=0.0, lambda_tok=0.0)
    got = intrinsic_advantages(outcome, composite, g, scale=scale)
    expected = group_advantages(outcome, g, scale="none" if scale == "none" else "group")
    assert torch.equal(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outcome_floor_is_grpo_on_every_binary_group_exhaustively(dtype):
    """Every 0/1 group of G <= 40 (and a few larger G) with 0..2 unscorable rollouts: outcome_floor == GRPO."""
    for g in [*range(1, 41), 64, 100, 128, 256]:
        rows = []
        for unscorable in range(min(3, g)):
            scorable = g - unscorable
            for k in range(scorable + 1):
                rows.append([1.0] * k + [0.0] * (scorable - k) + [NAN] * unscorable)
        outcome = torch.tensor(rows, dtype=dtype).reshape(-1)
        got = intrinsic_advantages(outcome, outcome.clone(), g, scale="outcome_floor")
        assert torch.equal(got, group_advantages(outcome, g)), g


def test_outcome_std_floor_is_the_smallest_mixed_binary_std():
    for g in range(2, 33):
        assert outcome_std_floor(g) == 1 / math.sqrt(g)
        one_success = torch.tensor([1.0] + [0.0] * (g - 1), dtype=torch.float64)
        assert math.isclose(float(one_success.std()), outcome_std_floor(g), rel_tol=1e-12)
        # the smallest std over all mixed groups of n <= g scorable rollouts is attained at n = g
        smallest = min(
            float(nanstd(torch.tensor([1.0] * k + [0.0] * (n - k), dtype=torch.float64)))
            for n in range(2, g + 1)
            for k in range(1, n)
        )
        assert math.isclose(smallest, outcome_std_floor(g), rel_tol=1e-12)


# ----- outcome dominance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["group", "none", "outcome_floor"])
@settings(max_examples=100, deadline=None)
@given(case=batches(min_g=2), lambda_ifd=st.floats(0, 2), lambda_tok=st.floats(0, 2))
def test_affine_scales_keep_the_order_of_the_composite(scale, case, lambda_ifd, lambda_tok):
    """One increasing affine map per group: A keeps the order of R (so a mixed group whose R is outcome-dominant
    stays so, and one whose R is not stays not: the intrinsic terms are unbounded, see dominance_violations)."""
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    adv = intrinsic_advantages(outcome, composite, g, scale=scale).view(-1, g)
    reward = composite.view(-1, g)
    scorable = ~torch.isnan(outcome.view(-1, g))
    for a, r, ok in zip(adv, reward, scorable, strict=True):
        rows = ok.nonzero().flatten().tolist()
        for i in rows:
            for j in rows:
                if r[i] > r[j] + 1e-9:
                    assert a[i] > a[j]
                elif r[i] == r[j]:
                    assert a[i] == a[j]


@settings(max_examples=150, deadline=None)
@given(
    case=batches(min_g=2),
    lambda_ifd=st.floats(0, 5),
    lambda_tok=st.floats(0, 5),
    beta=st.floats(0, 2),
    clip=st.floats(0, 10),
)
def test_decoupled_dominance_for_any_weights(case, lambda_ifd, lambda_tok, beta, clip):
    """Decoupled keeps every correct rollout above every incorrect one whatever the intrinsic weights."""
    g, outcome, ifd, token = case
    assume(2 * beta * clip < min_outcome_advantage_gap(g) * (1 - 1e-9))
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    adv = intrinsic_advantages(outcome, composite, g, scale="decoupled", beta=beta, clip=clip).view(-1, g)
    grouped = outcome.view(-1, g)
    for row in _mixed_groups(outcome, g).nonzero().flatten().tolist():
        assert adv[row][grouped[row] == 1].min() > adv[row][grouped[row] == 0].max()


def test_min_outcome_advantage_gap_is_attained_and_is_the_minimum():
    eps = 1e-4
    assert min_outcome_advantage_gap(1) == math.inf
    for g in range(2, 9):
        gap = min_outcome_advantage_gap(g, eps=eps)
        assert math.isclose(gap, 1 / (1 / math.sqrt(2) + eps), rel_tol=1e-12)
        # brute force over every mixed 0/1 group with any number of unscorable rollouts
        smallest = math.inf
        for scorable in range(2, g + 1):
            for k in range(1, scorable):
                outcome = torch.tensor([1.0] * k + [0.0] * (scorable - k) + [NAN] * (g - scorable), dtype=torch.float64)
                adv = group_advantages(outcome, g, eps=eps)
                smallest = min(smallest, float(adv[:k].min() - adv[k:scorable].max()))
        assert math.isclose(smallest, gap, rel_tol=1e-9)


def test_decoupled_bound_is_tight():
    """At 2*beta*clip just below the gap, an n = 2 group can be pushed to a near-tie: the bound is not loose."""
    g = 4
    outcome = torch.tensor([1.0, 0.0, NAN, NAN] + [0.0] * 4 * 24, dtype=torch.float64)
    intrinsic = torch.zeros_like(outcome)
    intrinsic[:2] = torch.tensor([-1.0, 1.0], dtype=torch.float64)  # the worst direction, |z| far above clip
    gap = min_outcome_advantage_gap(g)
    beta, clip = 0.5, gap / (2 * 0.5) * (1 - 1e-6)
    adv = intrinsic_advantages(outcome, outcome + intrinsic, g, scale="decoupled", beta=beta, clip=clip)
    assert 0 < adv[0] - adv[1] < 1e-5
    with pytest.raises(ValueError, match="outcome dominance"):
        intrinsic_advantages(outcome, outcome + intrinsic, g, scale="decoupled", beta=beta, clip=clip * 1.01)


# ----- uniform groups ------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(case=batches(min_g=2), lambda_ifd=st.floats(0, 2), lambda_tok=st.floats(0, 2))
def test_uniform_group_advantages_are_bounded_by_the_intrinsic_spread(case, lambda_ifd, lambda_tok):
    """Intrinsic terms of a uniform group spanning a width W (the realised spread: nothing bounds them a priori):
    |A| <= W ("none"), W sqrt(G) ("outcome_floor"), beta * clip ("decoupled")."""
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    scorable = ~torch.isnan(outcome)
    present = torch.where(scorable, composite, NAN).view(-1, g)
    high = torch.where(torch.isnan(present), -math.inf, present).amax(dim=1)
    low = torch.where(torch.isnan(present), math.inf, present).amin(dim=1)
    width = torch.where(scorable.view(-1, g).any(dim=1), high - low, 0.0).repeat_interleave(g)
    uniform = (~_mixed_groups(outcome, g)).repeat_interleave(g)
    tolerance = 1e-9
    none = intrinsic_advantages(outcome, composite, g, scale="none")
    assert (none[uniform].abs() <= width[uniform] + tolerance).all()
    floor = intrinsic_advantages(outcome, composite, g, scale="outcome_floor")
    assert (floor[uniform].abs() <= width[uniform] * math.sqrt(g) + tolerance).all()
    decoupled = intrinsic_advantages(outcome, composite, g, scale="decoupled", beta=0.2, clip=3.0)
    assert (decoupled[uniform].abs() <= 0.6 + tolerance).all()


def test_group_scale_has_no_weight_bound_on_uniform_groups():
    """The contrast that makes the bounds above meaningful: "group" blows tiny intrinsic spreads up to unit scale."""
    outcome = torch.zeros(4, dtype=torch.float64)
    composite = outcome + 1e-3 * torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    assert intrinsic_advantages(outcome, composite, 4, scale="group").abs().max() > 0.9
    assert intrinsic_advantages(outcome, composite, 4, scale="outcome_floor").abs().max() < 3e-3


# ----- structure: zero sum, permutations, NaN ---------------------------------------------------------------


@pytest.mark.parametrize("scale", ["group", "none", "outcome_floor"])
@settings(max_examples=60, deadline=None)
@given(case=batches(), lambda_ifd=st.floats(0, 1), lambda_tok=st.floats(0, 1))
def test_zero_sum_per_group(scale, case, lambda_ifd, lambda_tok):
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    sums = intrinsic_advantages(outcome, composite, g, scale=scale).view(-1, g).sum(dim=1)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-9, rtol=0)


@settings(max_examples=60, deadline=None)
@given(case=batches(), lambda_ifd=st.floats(0, 1), lambda_tok=st.floats(0, 1))
def test_decoupled_zero_sum_while_nothing_is_clipped(case, lambda_ifd, lambda_tok):
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    # a standardised value never exceeds (B - 1)/sqrt(B) in magnitude, so clip = sqrt(B) never acts
    clip = math.sqrt(outcome.numel())
    adv = intrinsic_advantages(outcome, composite, g, scale="decoupled", beta=0.5 / clip, clip=clip)
    sums = adv.view(-1, g).sum(dim=1)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-9, rtol=0)


@pytest.mark.parametrize("scale", INTRINSIC_SCALES)
@settings(max_examples=40, deadline=None)
@given(case=batches(), seed=st.integers(0, 2**16))
def test_permutation_equivariance_within_groups(scale, case, seed):
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token)
    generator = torch.Generator().manual_seed(seed)
    perm = torch.cat([torch.randperm(g, generator=generator) + g * k for k in range(outcome.numel() // g)])
    adv = intrinsic_advantages(outcome, composite, g, scale=scale)
    torch.testing.assert_close(intrinsic_advantages(outcome[perm], composite[perm], g, scale=scale), adv[perm])


@pytest.mark.parametrize("scale", INTRINSIC_SCALES)
def test_unscorable_rows_get_zero_and_are_left_out(generator, scale):
    outcome = torch.tensor([1.0, 0.0, 0.0, NAN, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    ifd = torch.randn(8, generator=generator, dtype=torch.float64)
    composite = composite_reward(outcome, ifd, torch.rand(8, generator=generator, dtype=torch.float64))
    base = intrinsic_advantages(outcome, composite, 4, scale=scale)
    assert base[3] == 0
    # whatever the unscorable row's composite, nothing else moves
    for garbage in (1e6, -3.0, NAN):
        changed = composite.clone()
        changed[3] = garbage
        assert torch.equal(intrinsic_advantages(outcome, changed, 4, scale=scale), base)
    all_nan = torch.full((4,), NAN, dtype=torch.float64)
    assert torch.equal(intrinsic_advantages(all_nan, all_nan, 4, scale=scale), torch.zeros(4, dtype=torch.float64))


def test_bad_arguments_raise():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match="scale"):
        intrinsic_advantages(ok, ok, 2, scale="batch")
    with pytest.raises(ValueError, match="composite"):
        intrinsic_advantages(ok, torch.zeros(3), 2)
    with pytest.raises(ValueError, match="composite"):
        intrinsic_advantages(ok, torch.tensor([0.0, NAN, 0.0, 0.0]), 2)
    with pytest.raises(ValueError, match="outcome"):
        intrinsic_advantages(torch.tensor([0.0, float("inf"), 0.0, 0.0]), ok, 2)
    with pytest.raises(ValueError, match="does not divide"):
        intrinsic_advantages(ok, ok, 3)
    with pytest.raises(ValueError, match="outcome dominance"):
        intrinsic_advantages(ok, ok, 2, scale="decoupled", beta=1.0, clip=1.0)
    with pytest.raises(ValueError, match="beta"):
        intrinsic_advantages(ok, ok, 2, scale="decoupled", beta=-0.1)
    with pytest.raises(ValueError, match="num_generations"):
        outcome_std_floor(0)


@settings(max_examples=100, deadline=None)
@given(case=batches(min_g=2), lambda_ifd=st.floats(0, 2), lambda_tok=st.floats(0, 2))
def test_mixed_group_composite_std_is_at_least_delta_sigma(case, lambda_ifd, lambda_tok):
    """When a mixed group's composite is outcome-dominant with margin delta = min R(correct) - max R(incorrect)
    > 0, its std is >= delta * sigma_G (clamping R to [max incorrect, min correct] is 1-Lipschitz and leaves a
    0/1 group scaled by delta), so the floor enlarges its divisor by at most 1/delta. Realised margins: with
    unbounded intrinsic terms no weight guarantees delta > 0."""
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    std = nanstd(composite.view(-1, g), dim=1)
    grouped_outcome, grouped_reward = outcome.view(-1, g), composite.view(-1, g)
    for row in _mixed_groups(outcome, g).nonzero().flatten().tolist():
        reward, scored = grouped_reward[row], grouped_outcome[row]
        delta = float(reward[scored == 1].min() - reward[scored == 0].max())
        if delta > 0:
            assert float(std[row]) >= delta * outcome_std_floor(g) * (1 - 1e-9)
