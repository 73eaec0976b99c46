import math

import pytest
import torch
from core_reference import dominance_violations as reference_violations
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import composite_reward, dominance_violations

NAN = float("nan")


@st.composite
def groups(draw, values=(0.0, 1.0, 0.0, 1.0, NAN)):
    g = draw(st.integers(1, 8))
    p = draw(st.integers(1, 6))
    outcome = draw(st.lists(st.sampled_from(values), min_size=g * p, max_size=g * p))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    ifd = torch.randn(g * p, generator=generator, dtype=torch.float64) * draw(st.sampled_from([0.1, 1.0, 5.0]))
    token = torch.randn(g * p, generator=generator, dtype=torch.float64)
    return g, torch.tensor(outcome, dtype=torch.float64), ifd, token


def _same(got, expected):
    return (math.isnan(got) and math.isnan(expected)) or math.isclose(got, expected, rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(case=groups(), lambda_ifd=st.floats(0, 2), lambda_tok=st.floats(0, 2))
def test_matches_plain_loop_reference(case, lambda_ifd, lambda_tok):
    g, outcome, ifd, token = case
    composite = composite_reward(outcome, ifd, token, lambda_ifd=lambda_ifd, lambda_tok=lambda_tok)
    got = dominance_violations(outcome, composite, g)
    assert got.dim() == 0
    assert _same(float(got), reference_violations(outcome.tolist(), composite.tolist(), g))


@settings(max_examples=100, deadline=None)
@given(case=groups(values=(0.0, 0.25, 0.5, 1.0, 1.5, NAN)), seed=st.integers(0, 2**16))
def test_matches_reference_on_weighted_outcomes(case, seed):
    g, outcome, _, _ = case
    generator = torch.Generator().manual_seed(seed)
    composite = outcome + torch.randn(outcome.numel(), generator=generator, dtype=torch.float64) * 0.3
    composite = torch.where(torch.isnan(outcome), 1e9, composite)  # unscorable rows: never read
    got = float(dominance_violations(outcome, composite, g))
    assert _same(got, reference_violations(outcome.tolist(), composite.tolist(), g))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@settings(max_examples=100, deadline=None)
@given(case=groups())
def test_zero_at_weights_zero(dtype, case):
    """composite == outcome (GRPO): no mixed group is violated; NaN when there is no mixed group."""
    g, outcome, ifd, token = case
    outcome = outcome.to(dtype)
    composite = composite_reward(outcome, ifd.to(dtype), token.to(dtype), lambda_ifd=0.0, lambda_tok=0.0)
    got = float(dominance_violations(outcome, composite, g))
    grouped = outcome.view(-1, g)
    any_mixed = bool(((grouped == 1).any(dim=1) & (grouped == 0).any(dim=1)).any())
    assert got == 0.0 if any_mixed else math.isnan(got)


def test_known_values():
    outcome = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, NAN], dtype=torch.float64)
    composite = torch.tensor([1.2, 0.1, 0.4, 0.6, 0.5, 0.5, 0.3, -0.2, 0.7, 5.0], dtype=torch.float64)
    # groups of 2: [1.2 > 0.1] ok ; [0.4 < 0.6] violated ; [0.5 = 0.5] a tie: violated ; uniform [0, 0]: not
    # mixed ; [1, NaN]: one scorable outcome, not mixed  -> 2 of 3 mixed groups
    assert float(dominance_violations(outcome, composite, 2)) == pytest.approx(2 / 3)
    # the paper's weights with a correct rollout whose answer ignores its thinking (IFD = -3)
    reward = composite_reward(torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.0]), torch.zeros(2))
    assert float(dominance_violations(torch.tensor([1.0, 0.0]), reward, 2)) == 1.0
    assert math.isnan(float(dominance_violations(torch.zeros(4), torch.zeros(4), 2)))


def test_errors_name_the_argument():
    ok = torch.zeros(4)
    with pytest.raises(ValueError, match="composite"):
        dominance_violations(ok, torch.zeros(3), 2)
    with pytest.raises(ValueError, match="composite"):
        dominance_violations(ok, torch.tensor([0.0, NAN, 0.0, 0.0]), 2)
    with pytest.raises(ValueError, match="does not divide"):
        dominance_violations(ok, ok, 3)
    with pytest.raises(ValueError, match="outcome"):
        dominance_violations(torch.zeros(2, 2), ok, 2)
