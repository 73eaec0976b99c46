import math

import pytest
import torch
from core_reference import random_mask
from core_reference_methods import answer_token_score as reference_score
from core_reference_methods import group_reward_std as reference_std
from core_reference_methods import rlpr_reward as reference_reward
from core_reference_methods import rlpr_std_filter as reference_filter
from core_reference_methods import update_std_threshold as reference_threshold
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core.rlpr import (
    ANSWER_AGGREGATES,
    answer_token_score,
    group_reward_std,
    rlpr_reward,
    rlpr_std_filter,
    update_std_threshold,
)


@pytest.mark.parametrize("aggregate", ANSWER_AGGREGATES)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_score_matches_plain_loop_reference(aggregate, seed):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(6, 5, generator=generator, dtype=torch.float64) * 4
    mask = random_mask(6, 5, generator)
    expected = reference_score(logps.tolist(), mask.tolist(), aggregate)
    got = answer_token_score(logps, mask, aggregate=aggregate)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_mean_of_probabilities_is_not_exp_of_mean_log_probability():
    # RLPR's reward averages probabilities: (0.9 + 0.1) / 2 = 0.5, while the geometric mean is 0.3
    logps = torch.log(torch.tensor([[0.9, 0.1]]))
    mask = torch.ones(1, 2)
    assert answer_token_score(logps, mask).item() == pytest.approx(0.5)
    assert answer_token_score(logps, mask, aggregate="geometric_mean_prob").item() == pytest.approx(0.3)
    assert answer_token_score(logps, mask, aggregate="sequence_prob").item() == pytest.approx(0.09)


@pytest.mark.parametrize("aggregate", ANSWER_AGGREGATES)
def test_score_padding_invariance_and_empty_rows(generator, aggregate):
    logps = -torch.rand(4, 6, generator=generator)
    mask = random_mask(4, 6, generator)
    mask[0] = False
    base = answer_token_score(logps, mask, aggregate=aggregate)
    assert base[0] == 0
    garbage = torch.cat([logps.masked_fill(~mask, float("nan")), torch.full((4, 2), 5.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(answer_token_score(garbage, padded_mask, aggregate=aggregate), base)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), with_baseline=st.booleans(), format_weight=st.sampled_from([None, 0.1, 0.5]))
def test_reward_matches_reference_and_stays_in_unit_interval(seed, with_baseline, format_weight):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(8, 5, generator=generator, dtype=torch.float64) * 6
    logps_without = -torch.rand(8, 5, generator=generator, dtype=torch.float64) * 6
    mask = random_mask(8, 5, generator)
    with_ = answer_token_score(logps, mask)
    without = answer_token_score(logps_without, mask) if with_baseline else None
    fmt = (torch.rand(8, generator=generator) < 0.5).double() if format_weight is not None else None
    weight = format_weight or 0.0
    got = rlpr_reward(with_, without, format_reward=fmt, format_weight=weight)
    expected = reference_reward(
        with_.tolist(),
        None if without is None else without.tolist(),
        (0.0, 1.0),
        None if fmt is None else fmt.tolist(),
        weight,
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    assert ((got >= 0) & (got <= 1)).all()


def test_debiasing_subtracts_the_prior_and_clips_at_zero():
    with_ = torch.tensor([0.9, 0.3, 0.6])
    without = torch.tensor([0.2, 0.5, 0.6])
    torch.testing.assert_close(rlpr_reward(with_, without), torch.tensor([0.7, 0.0, 0.0]))
    torch.testing.assert_close(rlpr_reward(with_, without, clip=None), torch.tensor([0.7, -0.2, 0.0]))
    # the clip is two-sided (log-prob aggregates can leave [0, 1])
    torch.testing.assert_close(rlpr_reward(torch.tensor([1.5, -0.5]), None), torch.tensor([1.0, 0.0]))
    # no baseline: the raw probability (a copy, never the caller's tensor)
    got = rlpr_reward(with_, None, clip=None)
    assert torch.equal(got, with_) and got.data_ptr() != with_.data_ptr()


@settings(max_examples=60, deadline=None)
@given(
    g=st.integers(2, 6),
    p=st.integers(1, 5),
    threshold=st.floats(0, 0.6),
    data=st.data(),
)
def test_std_and_filter_match_reference(g, p, threshold, data):
    values = data.draw(st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=g * p, max_size=g * p))
    rewards = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(
        group_reward_std(rewards, g), torch.tensor(reference_std(values, g), dtype=torch.float64), equal_nan=True
    )
    assert rlpr_std_filter(rewards, g, threshold).tolist() == reference_filter(values, g, threshold)


def test_filter_drops_constant_groups_and_is_permutation_invariant(generator):
    rewards = torch.tensor([0.5, 0.5, 0.5, 0.1, 0.9, 0.4, 1.0, 1.0, 1.0])
    assert rlpr_std_filter(rewards, 3, 0.05).tolist() == [False, True, False]
    values = torch.rand(20, generator=generator)
    perm = torch.cat([torch.randperm(4, generator=generator) + 4 * k for k in range(5)])
    assert torch.equal(rlpr_std_filter(values[perm], 4, 0.2), rlpr_std_filter(values, 4, 0.2))


@settings(max_examples=60, deadline=None)
@given(
    stds=st.lists(st.one_of(st.floats(0, 2), st.just(float("nan"))), min_size=1, max_size=8),
    previous=st.one_of(st.none(), st.floats(0, 2)),
    ratio=st.floats(0, 0.999),
    beta=st.floats(0, 2),
)
def test_threshold_matches_reference(stds, previous, ratio, beta):
    if previous is None and not any(math.isfinite(s) for s in stds):
        with pytest.raises(ValueError, match="group_stds"):
            update_std_threshold(torch.tensor(stds), previous, ema_ratio=ratio, beta=beta)
        return
    ema, threshold = update_std_threshold(torch.tensor(stds, dtype=torch.float64), previous, ema_ratio=ratio, beta=beta)
    expected_ema, expected_threshold = reference_threshold(stds, previous, ratio, beta)
    assert ema == pytest.approx(expected_ema, abs=1e-12)
    assert threshold == pytest.approx(expected_threshold, abs=1e-12)


def test_threshold_tracks_a_moving_average():
    ema, threshold = update_std_threshold(torch.tensor([0.2, 0.4]), None, beta=0.5)
    assert (ema, threshold) == pytest.approx((0.3, 0.15))
    ema, threshold = update_std_threshold(torch.tensor([1.3]), ema, ema_ratio=0.9, beta=0.5)
    assert ema == pytest.approx(0.9 * 0.3 + 0.1 * 1.3)
    assert threshold == pytest.approx(0.5 * ema)


def test_bad_inputs_name_the_argument():
    ok = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="aggregate"):
        answer_token_score(ok, torch.ones(2, 3), aggregate="max")
    with pytest.raises(ValueError, match="answer_mask"):
        answer_token_score(ok, torch.ones(2, 4))
    with pytest.raises(ValueError, match="answer_logps"):
        answer_token_score(torch.full((2, 3), 0.5), torch.ones(2, 3))
    with pytest.raises(ValueError, match="score_without_reasoning"):
        rlpr_reward(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="score_with_reasoning"):
        rlpr_reward(torch.tensor([float("nan")]), None)
    with pytest.raises(ValueError, match="clip"):
        rlpr_reward(torch.zeros(2), None, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match="format_reward"):
        rlpr_reward(torch.zeros(2), None, format_weight=0.1)
    with pytest.raises(ValueError, match="format_weight"):
        rlpr_reward(torch.zeros(2), None, format_reward=torch.zeros(2), format_weight=1.5)
    with pytest.raises(ValueError, match="num_generations"):
        group_reward_std(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="divide"):
        rlpr_std_filter(torch.zeros(5), 2, 0.1)
    with pytest.raises(ValueError, match="threshold"):
        rlpr_std_filter(torch.zeros(4), 2, -0.1)
    with pytest.raises(ValueError, match="ema_ratio"):
        update_std_threshold(torch.ones(2), None, ema_ratio=1.0)
    with pytest.raises(ValueError, match="beta"):
        update_std_threshold(torch.ones(2), None, beta=float("nan"))
    with pytest.raises(ValueError, match="previous_ema"):
        update_std_threshold(torch.ones(2), -1.0)
