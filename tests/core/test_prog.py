import math

import pytest
import torch
from core_reference import random_mask
from core_reference_methods import low_probability_confidence as reference_confidence
from core_reference_methods import prog_advantages as reference_prog
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core.advantages import group_advantages
from ispo.core.prog import low_probability_confidence, prog_advantages


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.01, 1.0))
def test_confidence_matches_plain_loop_reference(seed, fraction):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(6, 11, generator=generator, dtype=torch.float64) * 5
    mask = random_mask(6, 11, generator)
    expected = reference_confidence(logps.tolist(), mask.tolist(), fraction)
    got = low_probability_confidence(logps, mask, low_prob_fraction=fraction)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), equal_nan=True)


def test_confidence_known_values():
    probs = torch.tensor([[0.9, 0.99, 0.2, 0.95, 0.5, 0.97, 0.98, 0.96, 0.99, 0.94]])
    logps, mask = probs.log(), torch.ones(1, 10)
    # 20% of 10 tokens = the two least likely: sqrt(0.2 * 0.5)
    assert low_probability_confidence(logps, mask).item() == pytest.approx(math.sqrt(0.1), rel=1e-5)
    # fraction 1: the geometric mean of all, i.e. the inverse perplexity
    geometric = probs.log().mean().exp().item()
    assert low_probability_confidence(logps, mask, low_prob_fraction=1.0).item() == pytest.approx(geometric, rel=1e-5)
    # a confident sequence with one hesitation scores lower than its plain geometric mean
    assert low_probability_confidence(logps, mask).item() < geometric


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.05, 1.0))
def test_confidence_range_padding_and_order_invariance(seed, fraction):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(5, 8, generator=generator) * 6
    mask = random_mask(5, 8, generator, min_len=1)
    base = low_probability_confidence(logps, mask, low_prob_fraction=fraction)
    assert ((base > 0) & (base <= 1)).all()
    padded = torch.cat([logps.masked_fill(~mask, float("nan")), torch.full((5, 3), -100.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(5, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(low_probability_confidence(padded, padded_mask, low_prob_fraction=fraction), base)
    # only the multiset of valid log-probs matters, not where they sit
    flipped = low_probability_confidence(logps.flip(1), mask.flip(1), low_prob_fraction=fraction)
    torch.testing.assert_close(flipped, base)
    assert torch.isnan(low_probability_confidence(logps[:1], torch.zeros(1, 8))).all()


@pytest.mark.parametrize("apply_to", ["all", "correct"])
@pytest.mark.parametrize("skip_all_correct", [False, True])
@settings(max_examples=25, deadline=None)
@given(g=st.integers(1, 5), p=st.integers(1, 4), alpha=st.floats(-1, 1), seed=st.integers(0, 10_000))
def test_advantages_match_plain_loop_reference(apply_to, skip_all_correct, g, p, alpha, seed):
    generator = torch.Generator().manual_seed(seed)
    rewards = (torch.rand(g * p, generator=generator) < 0.5).double()
    rewards[torch.rand(g * p, generator=generator) < 0.1] = float("nan")
    answer = torch.rand(g * p, generator=generator, dtype=torch.float64)
    prompt = torch.rand(p, generator=generator, dtype=torch.float64)
    got = prog_advantages(rewards, answer, prompt, g, alpha=alpha, apply_to=apply_to, skip_all_correct=skip_all_correct)
    expected = reference_prog(
        rewards.tolist(), answer.tolist(), prompt.tolist(), g, alpha, apply_to, skip_all_correct, 1e-4
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_all_wrong_groups_are_untouched_and_confident_paths_are_damped():
    rewards = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    answer = torch.tensor([0.9, 0.1, 0.9, 0.2, 0.5, 0.5])
    prompt = torch.tensor([0.5, 0.4, 0.4])
    got = prog_advantages(rewards, answer, prompt, 2, alpha=0.2)
    base = group_advantages(rewards, 2)
    assert torch.equal(got[:2], base[:2])  # no correct rollout: plain GRPO (0 here)
    # all-correct group: the over-confident path (0.9) now ranks below the under-explored one (0.2)
    assert got[2] < got[3]
    torch.testing.assert_close(got[2:4], torch.tensor([0.2 * (0.4 - 0.9), 0.2 * (0.4 - 0.2)]))
    unchanged = prog_advantages(rewards, answer, prompt, 2, alpha=0.2, skip_all_correct=True)
    assert torch.equal(unchanged[2:4], base[2:4])
    torch.testing.assert_close(prog_advantages(rewards, answer, prompt, 2, alpha=0.0), base)


def test_prompt_confidence_per_group_or_per_rollout(generator):
    rewards = (torch.rand(12, generator=generator) < 0.5).float()
    answer = torch.rand(12, generator=generator)
    prompt = torch.rand(3, generator=generator)
    torch.testing.assert_close(
        prog_advantages(rewards, answer, prompt.repeat_interleave(4), 4), prog_advantages(rewards, answer, prompt, 4)
    )


def test_permutation_equivariance_within_groups(generator):
    rewards = (torch.rand(12, generator=generator) < 0.5).float()
    answer = torch.rand(12, generator=generator)
    prompt = torch.rand(3, generator=generator)
    base = prog_advantages(rewards, answer, prompt, 4)
    perm = torch.cat([torch.randperm(4, generator=generator) + 4 * k for k in range(3)])
    torch.testing.assert_close(prog_advantages(rewards[perm], answer[perm], prompt, 4), base[perm])


def test_bad_inputs_name_the_argument():
    rewards, answer, prompt = torch.zeros(4), torch.full((4,), 0.5), torch.full((2,), 0.5)
    with pytest.raises(ValueError, match="low_prob_fraction"):
        low_probability_confidence(torch.zeros(1, 3), torch.ones(1, 3), low_prob_fraction=0.0)
    with pytest.raises(ValueError, match="token_logps"):
        low_probability_confidence(torch.full((1, 3), 0.3), torch.ones(1, 3))
    with pytest.raises(ValueError, match="mask"):
        low_probability_confidence(torch.zeros(1, 3), torch.ones(1, 4))
    with pytest.raises(ValueError, match="prompt_confidence"):
        prog_advantages(rewards, answer, torch.full((3,), 0.5), 2)
    with pytest.raises(ValueError, match="answer_confidence"):
        prog_advantages(rewards, torch.full((4,), 1.5), prompt, 2)
    with pytest.raises(ValueError, match="answer_confidence"):
        prog_advantages(rewards, torch.full((3,), 0.5), prompt, 2)
    with pytest.raises(ValueError, match="apply_to"):
        prog_advantages(rewards, answer, prompt, 2, apply_to="wrong")
    with pytest.raises(ValueError, match="alpha"):
        prog_advantages(rewards, answer, prompt, 2, alpha=float("inf"))
