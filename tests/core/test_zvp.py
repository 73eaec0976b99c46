import pytest
import torch
from core_reference import random_mask
from core_reference_methods import zvp_advantages as reference_zvp
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core.advantages import group_advantages
from ispo.core.zvp import zero_variance_kind, zvp_advantages


def _rewards(draw_kinds, generator, g):
    """Groups that are all-correct, all-wrong or mixed, by kind code 1 / -1 / 0."""
    rows = []
    for kind in draw_kinds:
        if kind == 1:
            rows.append(torch.ones(g))
        elif kind == -1:
            rows.append(torch.zeros(g))
        else:
            group = (torch.rand(g, generator=generator) < 0.5).float()
            group[0], group[-1] = 1.0, 0.0  # at least one of each
            rows.append(group)
    return torch.cat(rows).double()


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([1, -1, 0]), min_size=1, max_size=5),
    g=st.integers(2, 5),
    alpha=st.floats(0, 0.5),
    seed=st.integers(0, 10_000),
)
def test_matches_plain_loop_reference(kinds, g, alpha, seed):
    generator = torch.Generator().manual_seed(seed)
    rewards = _rewards(kinds, generator, g)
    entropy = torch.rand(len(rewards), 7, generator=generator, dtype=torch.float64) * 4
    mask = random_mask(len(rewards), 7, generator)
    got = zvp_advantages(rewards, entropy, mask, g, alpha=alpha)
    expected = reference_zvp(rewards.tolist(), entropy.tolist(), mask.tolist(), g, alpha, 1e-4)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_known_values_from_the_equation():
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0])
    entropy = torch.tensor([[1.0, 3.0, 99.0], [0.5, 0.0, 7.0], [2.0, 5.0, 1.0], [4.0, 4.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0]])
    got = zvp_advantages(rewards, entropy, mask, 2, alpha=0.1)
    expected = torch.tensor(
        [[0.1, 0.3, 0.0], [0.05, 0.0, 0.7], [-0.3, 0.0, -0.4], [0.0, 0.0, 0.0]]  # max over valid tokens only
    )
    torch.testing.assert_close(got, expected)


@settings(max_examples=40, deadline=None)
@given(g=st.integers(2, 6), p=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_mixed_groups_keep_grpo_and_zero_variance_signs(g, p, seed):
    generator = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(g * p, generator=generator) < 0.5).double()
    entropy = torch.rand(g * p, 6, generator=generator, dtype=torch.float64) + 0.01
    mask = random_mask(g * p, 6, generator, min_len=1)
    got = zvp_advantages(rewards, entropy, mask, g)
    kind = zero_variance_kind(rewards, g)
    grpo = group_advantages(rewards, g)
    for i in range(g * p):
        valid = got[i][mask[i]]
        if kind[i] == 0:  # mixed group: exactly GRPO, no entropy term
            assert torch.equal(valid, grpo[i].expand_as(valid))
        elif kind[i] == 1:
            assert (valid > 0).all()
        else:
            assert (valid <= 0).all() and valid.max() == 0  # the most uncertain token is spared
    assert (got[~mask] == 0).all()


def test_padding_invariance_and_entropy_is_detached(generator):
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    entropy = (torch.rand(6, 5, generator=generator) * 3).requires_grad_()
    mask = random_mask(6, 5, generator, min_len=1)
    base = zvp_advantages(rewards, entropy, mask, 2)
    assert not base.requires_grad
    padded_entropy = torch.cat([entropy.detach().masked_fill(~mask, 1e6), torch.full((6, 2), 50.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(6, 2, dtype=torch.bool)], dim=1)
    padded = zvp_advantages(rewards, padded_entropy, padded_mask, 2)
    torch.testing.assert_close(padded[:, :5], base)
    assert (padded[:, 5:] == 0).all()


def test_permutation_equivariance_within_groups(generator):
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    entropy = torch.rand(9, 4, generator=generator)
    mask = random_mask(9, 4, generator, min_len=1)
    base = zvp_advantages(rewards, entropy, mask, 3)
    perm = torch.cat([torch.randperm(3, generator=generator) + 3 * k for k in range(3)])
    torch.testing.assert_close(zvp_advantages(rewards[perm], entropy[perm], mask[perm], 3), base[perm])


def test_kind_handles_nan_and_custom_threshold():
    rewards = torch.tensor([1.0, float("nan"), 0.0, 0.0, 0.3, 0.3, float("nan"), float("nan")])
    assert zero_variance_kind(rewards, 2).tolist() == [1, 0, -1, -1, 1, 1, 0, 0]
    assert zero_variance_kind(rewards, 2, positive_threshold=0.5).tolist() == [1, 0, -1, -1, -1, -1, 0, 0]
    entropy = torch.ones(8, 3)
    got = zvp_advantages(rewards, entropy, torch.ones(8, 3), 2)
    assert (got[1] == 0).all() and (got[6:] == 0).all()  # unscorable rows get no update


def test_bad_inputs_name_the_argument():
    entropy, mask = torch.ones(4, 3), torch.ones(4, 3)
    with pytest.raises(ValueError, match="alpha"):
        zvp_advantages(torch.zeros(4), entropy, mask, 2, alpha=-0.1)
    with pytest.raises(ValueError, match="rewards"):
        zvp_advantages(torch.zeros(6), entropy, mask, 2)
    with pytest.raises(ValueError, match="completion_mask"):
        zvp_advantages(torch.zeros(4), entropy, torch.ones(4, 2), 2)
    with pytest.raises(ValueError, match="token_entropy"):
        zvp_advantages(torch.zeros(4), -entropy, mask, 2)
    with pytest.raises(ValueError, match="token_entropy"):
        zvp_advantages(torch.zeros(4), entropy.masked_fill(mask.bool(), float("nan")), mask, 2)
    with pytest.raises(ValueError, match="divide"):
        zvp_advantages(torch.zeros(4), entropy, mask, 3)
    with pytest.raises(ValueError, match="scale"):
        zvp_advantages(torch.zeros(4), entropy, mask, 2, scale="token")
    with pytest.raises(ValueError, match="infinite"):
        zero_variance_kind(torch.tensor([1.0, float("inf")]), 2)
