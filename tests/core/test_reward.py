import math

import pytest
import torch
from core_reference import composite_reward as reference_composite
from core_reference_variants import composite_reward as reference_restricted
from core_reference_variants import intrinsic_group_mask as reference_group_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import composite_reward, group_advantages, intrinsic_advantages, intrinsic_group_mask
from ispo.core.paper import LAMBDA_IFD, LAMBDA_TOK


@pytest.mark.parametrize("outcome_conditioned", [True, False])
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    lambda_ifd=st.floats(0, 3),
    lambda_tok=st.floats(0, 3),
    ifd_scale=st.sampled_from([0.3, 10.0]),
)
def test_matches_plain_loop_reference(outcome_conditioned, seed, lambda_ifd, lambda_tok, ifd_scale):
    generator = torch.Generator().manual_seed(seed)
    outcome = (torch.rand(20, generator=generator) < 0.5).double()
    outcome[:3] = torch.tensor([0.37, 1.5, -0.2], dtype=torch.float64)  # weighted rewards: the sign clips R_o
    ifd = torch.randn(20, generator=generator, dtype=torch.float64) * ifd_scale
    tok = torch.where(
        outcome >= 0.5,
        -torch.rand(20, generator=generator, dtype=torch.float64) * 5,  # mean log p <= 0
        torch.rand(20, generator=generator, dtype=torch.float64) * 12 - 0.3,  # alpha H - beta hinge
    )
    expected = reference_composite(
        outcome.tolist(), ifd.tolist(), tok.tolist(), lambda_ifd, lambda_tok, outcome_conditioned
    )
    got = composite_reward(
        outcome, ifd, tok, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok, outcome_conditioned=outcome_conditioned
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_known_values_with_the_papers_weights():
    assert (LAMBDA_IFD, LAMBDA_TOK) == (0.5, 0.1)
    outcome = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    ifd = torch.tensor([0.3, 0.3, -0.2, 4.0], dtype=torch.float64)  # raw, in nats per answer token
    tok = torch.tensor([-1.5, 2.0, 0.0, -0.1], dtype=torch.float64)
    got = composite_reward(outcome, ifd, tok)
    # 1 + 0.5 * 0.3 + 0.1 * (-1.5) = 1.0 ; 0 - 0.5 * 0.3 + 0.1 * 2 = 0.05
    # 1 + 0.5 * (-0.2) + 0 = 0.9       ; 0 - 0.5 * 4 + 0.1 * (-0.1) = -2.01
    torch.testing.assert_close(got, torch.tensor([1.0, 0.05, 0.9, -2.01], dtype=torch.float64))


def test_ifd_enters_raw_and_linear():
    """No bounding function: the IFD term scales with IFD without saturating."""
    outcome = torch.tensor([1.0, 0.0], dtype=torch.float64)
    tok = torch.zeros(2, dtype=torch.float64)
    for scale in (1e-3, 1.0, 100.0):
        ifd = torch.full((2,), scale, dtype=torch.float64)
        term = composite_reward(outcome, ifd, tok, lambda_ifd=0.5) - outcome
        torch.testing.assert_close(term, torch.tensor([0.5, -0.5], dtype=torch.float64) * scale)


def test_the_papers_weights_can_overturn_the_outcome():
    """Outcome dominance is not enforced (docs/algorithm.md, Eq. 8): a correct rollout whose answer ignores its
    thinking (IFD = -3) falls below an incorrect one."""
    reward = composite_reward(torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.0]), torch.zeros(2))
    assert reward[0] < reward[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@settings(max_examples=80, deadline=None)
@given(
    g=st.integers(1, 8),
    p=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    conditioned=st.booleans(),
    groups=st.sampled_from(["all", "mixed", "uniform"]),
)
def test_weights_zero_is_grpo_bit_for_bit(dtype, g, p, seed, conditioned, groups):
    generator = torch.Generator().manual_seed(seed)
    outcome = (torch.rand(g * p, generator=generator) < 0.5).to(dtype)
    outcome[torch.rand(g * p, generator=generator) < 0.15] = float("nan")
    ifd = torch.randn(g * p, generator=generator, dtype=dtype) * 10
    tok = torch.randn(g * p, generator=generator, dtype=dtype) * 5
    mask = intrinsic_group_mask(outcome, g, groups)
    got = composite_reward(
        outcome, ifd, tok, lambda_ifd=0.0, lambda_tok=0.0, outcome_conditioned=conditioned, intrinsic_mask=mask
    )
    assert torch.equal(got.nan_to_num(nan=-7.0), outcome.nan_to_num(nan=-7.0))
    assert got.data_ptr() != outcome.data_ptr()
    assert torch.equal(intrinsic_advantages(outcome, got, g), group_advantages(outcome, g))
    assert torch.equal(group_advantages(got, g), group_advantages(outcome, g))


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
    with pytest.raises(ValueError, match="outcome"):
        composite_reward(torch.tensor([float("inf"), 0.0]), torch.zeros(2), torch.zeros(2))
    for name in ("lambda_ifd", "lambda_tok"):
        for bad in (-0.1, float("nan"), math.inf):
            with pytest.raises(ValueError, match=name):
                composite_reward(torch.zeros(2), torch.zeros(2), torch.zeros(2), **{name: bad})


# ----- intrinsic_groups (docs/algorithm.md, variants [ours]) ----------------------------------------------------------

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
    expected = reference_restricted(values, ifd.tolist(), tok.tolist(), 0.3, 0.2, True, mask.tolist())
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


def test_intrinsic_mask_and_groups_errors():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match="intrinsic_mask"):
        composite_reward(ok, ok, ok, intrinsic_mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="intrinsic_mask"):
        composite_reward(ok, ok, ok, intrinsic_mask=torch.full((4,), 2))
    with pytest.raises(ValueError, match="groups"):
        intrinsic_group_mask(ok, 2, "some")
    with pytest.raises(ValueError, match="does not divide"):
        intrinsic_group_mask(ok, 3, "mixed")
