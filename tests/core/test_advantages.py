import math

import pytest
import torch
from core_reference import group_advantages as reference_advantages
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import group_advantages, nanstd

rewards_strategy = st.integers(min_value=1, max_value=6).flatmap(
    lambda g: st.tuples(
        st.just(g),
        st.integers(min_value=1, max_value=5).flatmap(
            lambda p: st.lists(
                st.one_of(st.floats(-3, 3, allow_nan=False), st.just(float("nan"))),
                min_size=p * g,
                max_size=p * g,
            )
        ),
    )
)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@settings(max_examples=60, deadline=None)
@given(case=rewards_strategy)
def test_matches_plain_loop_reference(scale, case):
    num_generations, values = case
    rewards = torch.tensor(values, dtype=torch.float64)
    expected = reference_advantages(values, num_generations, scale, 1e-4)
    got = group_advantages(rewards, num_generations, scale=scale)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), equal_nan=False)


def test_matches_trl_nanstd():
    from trl.trainer.utils import nanstd as trl_nanstd

    x = torch.tensor([[1.0, 2.0, float("nan")], [3.0, 3.0, 3.0], [1.0, float("nan"), float("nan")], [0.5, -1.0, 4.0]])
    torch.testing.assert_close(nanstd(x, dim=1), trl_nanstd(x, dim=1), equal_nan=True)
    torch.testing.assert_close(nanstd(x), trl_nanstd(x), equal_nan=True)


def test_known_values():
    # one right, two wrong: mean 1/3, unbiased std sqrt(1/3)
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0]), 3)
    std = math.sqrt(1 / 3)
    torch.testing.assert_close(
        adv, torch.tensor([(2 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4)])
    )


@settings(max_examples=50, deadline=None)
@given(
    g=st.integers(2, 8),
    p=st.integers(1, 4),
    data=st.data(),
)
def test_zero_sum_per_group(g, p, data):
    values = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=g * p, max_size=g * p))
    for scale in ("group", "batch", "none"):
        adv = group_advantages(torch.tensor(values, dtype=torch.float64), g, scale=scale)
        sums = adv.view(p, g).sum(dim=1)
        torch.testing.assert_close(sums, torch.zeros(p, dtype=torch.float64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_equal_rewards_give_zero_advantage(scale):
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    assert torch.equal(group_advantages(rewards, 4, scale=scale), torch.zeros(8))


def test_permutation_equivariance_inside_group(generator):
    rewards = torch.rand(12, generator=generator)
    adv = group_advantages(rewards, 4)
    perm = torch.cat([torch.randperm(4, generator=generator) + 4 * k for k in range(3)])
    torch.testing.assert_close(group_advantages(rewards[perm], 4), adv[perm])


def test_nan_rewards_are_left_out_and_get_zero():
    rewards = torch.tensor([1.0, float("nan"), 0.0, 0.0])
    adv = group_advantages(rewards, 4)
    assert adv[1] == 0
    expected = reference_advantages([1.0, float("nan"), 0.0, 0.0], 4, "group", 1e-4)
    torch.testing.assert_close(adv, torch.tensor(expected))


def test_indivisible_batch_raises():
    with pytest.raises(ValueError, match="does not divide"):
        group_advantages(torch.zeros(7), 4)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="sum")
    with pytest.raises(ValueError, match="rewards"):
        group_advantages(torch.zeros(2, 2), 2)
    with pytest.raises(ValueError, match="infinite"):
        group_advantages(torch.tensor([1.0, float("inf")]), 2)
