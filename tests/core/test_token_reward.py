import math

import pytest
import torch
from core_reference import random_mask
from core_reference import token_directional_reward as reference_reward

from ispo.core import token_directional_reward


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
