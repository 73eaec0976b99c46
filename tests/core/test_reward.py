import pytest
import torch
from core_reference import composite_reward as reference_composite
from core_reference_variants import composite_reward as reference_restricted
from core_reference_variants import intrinsic_group_mask as reference_group_mask
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ispo.core import composite_reward, group_advantages, intrinsic_group_mask


@pytest.mark.parametrize("outcome_conditioned", [True, False])
def test_matches_plain_loop_reference(generator, outcome_conditioned):
    outcome = (torch.rand(20, generator=generator) < 0.5).double()
    ifd = torch.randn(20, generator=generator, dtype=torch.float64) * 3
    tok = torch.rand(20, generator=generator, dtype=torch.float64) * 1.3 - 0.3
    expected = reference_composite(outcome.tolist(), ifd.tolist(), tok.tolist(), 0.2, 0.3, 2.0, outcome_conditioned)
    got = composite_reward(outcome, ifd, tok, lambda_ifd=0.2, lambda_tok=0.3, outcome_conditioned=outcome_conditioned)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_zero_weights_return_outcome_unchanged(generator):
    outcome = torch.tensor([1.0, 0.0, 0.37, float("nan")])
    got = composite_reward(
        outcome, torch.randn(4, generator=generator), torch.rand(4, generator=generator), lambda_ifd=0, lambda_tok=0
    )
    assert torch.equal(torch.nan_to_num(got, nan=-7.0), torch.nan_to_num(outcome, nan=-7.0))
    assert got.data_ptr() != outcome.data_ptr()


@settings(max_examples=200, deadline=None)
@given(
    lambda_ifd=st.floats(0, 0.5),
    lambda_tok=st.floats(0, 1),
    g=st.integers(2, 8),
    seed=st.integers(0, 2**16),
)
def test_outcome_dominance(lambda_ifd, lambda_tok, g, seed):
    """Whenever 2*lambda_ifd + lambda_tok < 1, every correct rollout outranks every incorrect one."""
    assume(2 * lambda_ifd + lambda_tok < 1)
    generator = torch.Generator().manual_seed(seed)
    outcome = (torch.rand(g, generator=generator) < 0.5).double()
    ifd = torch.randn(g, generator=generator, dtype=torch.float64) * 50  # any S: tanh bounds it
    # T lies in (0, 1] for correct rollouts, [-eta*tau, 1] for incorrect (eta*tau = 0.3 by default)
    tok = torch.where(
        outcome > 0,
        torch.rand(g, generator=generator, dtype=torch.float64),
        torch.rand(g, generator=generator, dtype=torch.float64) * 1.3 - 0.3,
    )
    reward = composite_reward(outcome, ifd, tok, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    correct, incorrect = reward[outcome > 0], reward[outcome == 0]
    if len(correct) and len(incorrect):
        assert correct.min() > incorrect.max()
        adv = group_advantages(reward, g)
        assert adv[outcome > 0].min() > adv[outcome == 0].max()


def test_all_incorrect_group_no_longer_collapses():
    outcome = torch.zeros(4)
    ifd = torch.tensor([0.5, -0.2, 1.0, 0.0])
    tok = torch.tensor([0.1, 0.4, -0.2, 0.3])
    grpo = group_advantages(composite_reward(outcome, ifd, tok, lambda_ifd=0, lambda_tok=0), 4)
    ispo = group_advantages(composite_reward(outcome, ifd, tok), 4)
    assert torch.equal(grpo, torch.zeros(4))
    assert (ispo.abs() > 0.1).all()
    assert ispo.sum().abs() < 1e-5


def test_sign_conditioning():
    ifd = torch.tensor([1.0, 1.0])
    outcome = torch.tensor([1.0, 0.0])
    tok = torch.zeros(2)
    conditioned = composite_reward(outcome, ifd, tok, lambda_tok=0)
    assert conditioned[0] > 1.0 and conditioned[1] < 0.0  # informative thinking: + if right, - if wrong
    unconditioned = composite_reward(outcome, ifd, tok, lambda_tok=0, outcome_conditioned=False)
    assert unconditioned[0] > 1.0 and unconditioned[1] > 0.0


def test_nan_outcome_propagates_and_bad_inputs_raise():
    got = composite_reward(torch.tensor([float("nan"), 1.0]), torch.zeros(2), torch.zeros(2))
    assert torch.isnan(got[0]) and got[1] == 1.0
    with pytest.raises(ValueError, match="ifd"):
        composite_reward(torch.zeros(2), torch.tensor([float("nan"), 0.0]), torch.zeros(2))
    with pytest.raises(ValueError, match="token_reward"):
        composite_reward(torch.zeros(2), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="kappa"):
        composite_reward(torch.zeros(2), torch.zeros(2), torch.zeros(2), kappa=0)


# ----- intrinsic_groups (docs/algorithm.md §3b) ----------------------------------------------------------

_outcome_lists = st.integers(1, 6).flatmap(
    lambda g: st.tuples(
        st.just(g),
        st.integers(1, 5).flatmap(
            lambda p: st.lists(st.sampled_from([0.0, 1.0, float("nan")]), min_size=g * p, max_size=g * p)
        ),
    )
)


@pytest.mark.parametrize("groups", ["all", "mixed", "uniform"])
@settings(max_examples=60, deadline=None)
@given(case=_outcome_lists, seed=st.integers(0, 2**16))
def test_intrinsic_group_mask_and_restricted_composite_match_reference(groups, case, seed):
    g, values = case
    outcome = torch.tensor(values, dtype=torch.float64)
    mask = intrinsic_group_mask(outcome, g, groups)
    assert mask.tolist() == reference_group_mask(values, g, groups)
    generator = torch.Generator().manual_seed(seed)
    ifd = torch.randn(len(values), generator=generator, dtype=torch.float64)
    tok = torch.rand(len(values), generator=generator, dtype=torch.float64)
    got = composite_reward(outcome, ifd, tok, lambda_ifd=0.3, lambda_tok=0.2, intrinsic_mask=mask)
    expected = reference_restricted(values, ifd.tolist(), tok.tolist(), 0.3, 0.2, 2.0, True, mask.tolist())
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), equal_nan=True)
    # outside the mask the outcome is kept bit for bit; inside, the full composite
    full = composite_reward(outcome, ifd, tok, lambda_ifd=0.3, lambda_tok=0.2)
    assert torch.equal(got[~mask].nan_to_num(nan=-7.0), outcome[~mask].nan_to_num(nan=-7.0))
    assert torch.equal(got[mask].nan_to_num(nan=-7.0), full[mask].nan_to_num(nan=-7.0))


def test_intrinsic_group_mask_known_values():
    outcome = torch.tensor([1.0, 0.0, 1.0, 1.0, float("nan"), 0.0, float("nan"), float("nan")])
    assert intrinsic_group_mask(outcome, 2, "mixed").tolist() == [True, True, False, False, False, False, False, False]
    assert intrinsic_group_mask(outcome, 2, "uniform").tolist() == [False, False, True, True, True, True, True, True]
    assert intrinsic_group_mask(outcome, 2, "all").all()
    # "mixed" restricted to the rows where GRPO already has signal; "uniform" the Zero-Advantage rows
    ifd, tok = torch.ones(8), torch.ones(8)
    restricted = composite_reward(outcome, ifd, tok, intrinsic_mask=intrinsic_group_mask(outcome, 2, "uniform"))
    assert restricted[0] == 1.0 and restricted[1] == 0.0 and restricted[2] != 1.0


@pytest.mark.parametrize("groups", ["all", "mixed", "uniform"])
@settings(max_examples=40, deadline=None)
@given(case=_outcome_lists, lambda_ifd=st.floats(0, 0.5), lambda_tok=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_restricted_composite_keeps_outcome_dominance(groups, case, lambda_ifd, lambda_tok, seed):
    assume(2 * lambda_ifd + lambda_tok < 1)
    g, values = case
    outcome = torch.tensor(values, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    ifd = torch.randn(len(values), generator=generator, dtype=torch.float64) * 10
    tok = torch.rand(len(values), generator=generator, dtype=torch.float64)
    tok = torch.where(outcome == 1, tok, tok * 1.3 - 0.3)
    mask = intrinsic_group_mask(outcome, g, groups)
    reward = composite_reward(outcome, ifd, tok, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok, intrinsic_mask=mask)
    for row_reward, row_outcome in zip(reward.view(-1, g), outcome.view(-1, g), strict=True):
        if (row_outcome == 1).any() and (row_outcome == 0).any():
            assert row_reward[row_outcome == 1].min() > row_reward[row_outcome == 0].max()


def test_tensor_kappa_equals_float_kappa(generator):
    outcome = (torch.rand(10, generator=generator) < 0.5).float()
    ifd, tok = torch.randn(10, generator=generator), torch.rand(10, generator=generator)
    from_tensor = composite_reward(outcome, ifd, tok, kappa=torch.tensor(0.7))
    assert torch.equal(from_tensor, composite_reward(outcome, ifd, tok, kappa=0.7))


def test_intrinsic_mask_and_groups_errors():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match="intrinsic_mask"):
        composite_reward(ok, ok, ok, intrinsic_mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="intrinsic_mask"):
        composite_reward(ok, ok, ok, intrinsic_mask=torch.full((4,), 2))
    with pytest.raises(ValueError, match="kappa"):
        composite_reward(ok, ok, ok, kappa=torch.tensor(0.0))
    with pytest.raises(ValueError, match="groups"):
        intrinsic_group_mask(ok, 2, "some")
    with pytest.raises(ValueError, match="does not divide"):
        intrinsic_group_mask(ok, 3, "mixed")
