import pytest
import torch
from core_reference import composite_reward as reference_composite
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ispo.core import composite_reward, group_advantages


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
    got = composite_reward(outcome, torch.randn(4, generator=generator), torch.rand(4, generator=generator), lambda_ifd=0, lambda_tok=0)
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
    tok = torch.where(outcome > 0, torch.rand(g, generator=generator, dtype=torch.float64), torch.rand(g, generator=generator, dtype=torch.float64) * 1.3 - 0.3)
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
