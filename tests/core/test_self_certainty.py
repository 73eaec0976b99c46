import math

import pytest
import torch
from core_reference import random_mask
from core_reference_methods import self_certainty_advantages as reference_advantages
from core_reference_methods import sequence_self_certainty as reference_sequence
from core_reference_methods import token_self_certainty as reference_token
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core.advantages import group_advantages
from ispo.core.self_certainty import (
    self_certainty_advantages,
    self_certainty_from_mean_log_prob,
    sequence_self_certainty,
    token_self_certainty,
)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 40), temperature=st.sampled_from([0.6, 1.0, 1.7]))
def test_token_matches_plain_loop_reference(seed, vocab, temperature):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, vocab, generator=generator, dtype=torch.float64) * 5
    expected = torch.tensor(reference_token(logits.tolist(), temperature), dtype=torch.float32)
    torch.testing.assert_close(token_self_certainty(logits, temperature=temperature), expected, atol=2e-5, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 64), spread=st.floats(0.0, 30.0))
def test_non_negative_and_zero_for_uniform(seed, vocab, spread):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, vocab, generator=generator) * spread
    value = token_self_certainty(logits)
    assert (value >= 0).all()
    # any constant shift is the same distribution: uniform logits of any level give exactly 0
    uniform = token_self_certainty(torch.full((2, vocab), 3.7))
    torch.testing.assert_close(uniform, torch.zeros(2), atol=1e-6, rtol=0)


def test_known_value_and_sharpening_raises_it():
    # p = (1/2, 1/4, 1/4): KL(U||p) = -log 3 - (log 1/2 + 2 log 1/4) / 3 = -log 3 + (5/3) log 2
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    assert token_self_certainty(logits).item() == pytest.approx(-math.log(3) + 5 / 3 * math.log(2), abs=1e-6)
    base = torch.tensor([2.0, 0.0, -1.0, 0.5])
    assert token_self_certainty(base * 2) > token_self_certainty(base) > token_self_certainty(base / 2)
    # temperature T on logits z equals passing z / T
    torch.testing.assert_close(token_self_certainty(base, temperature=0.5), token_self_certainty(base * 2))


def test_from_mean_log_prob_agrees_with_logits(generator):
    logits = torch.randn(4, 6, 50, generator=generator, dtype=torch.float64)
    mean_log_prob = torch.log_softmax(logits, dim=-1).mean(dim=-1)
    torch.testing.assert_close(
        self_certainty_from_mean_log_prob(mean_log_prob, 50), token_self_certainty(logits).double(), atol=1e-5, rtol=0
    )


def test_sequence_matches_reference_and_ignores_padding(generator):
    values = torch.rand(7, 9, generator=generator)
    mask = random_mask(7, 9, generator)
    expected = torch.tensor(reference_sequence(values.tolist(), mask.tolist()))
    torch.testing.assert_close(sequence_self_certainty(values, mask), expected)
    garbage = values.masked_fill(~mask, float("nan"))
    padded = torch.cat([garbage, torch.full((7, 3), 1e6)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(7, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(sequence_self_certainty(padded, padded_mask), expected)


case_strategy = st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(0, 10_000))


@pytest.mark.parametrize("mode,combine", [("replace", "advantages"), ("add", "advantages"), ("add", "rewards")])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@settings(max_examples=25, deadline=None)
@given(case=case_strategy, weight=st.floats(-2, 2))
def test_advantages_match_plain_loop_reference(mode, combine, scale, case, weight):
    num_generations, num_prompts, seed = case
    generator = torch.Generator().manual_seed(seed)
    certainty = torch.rand(num_generations * num_prompts, generator=generator, dtype=torch.float64) * 3
    outcome = (torch.rand(num_generations * num_prompts, generator=generator) < 0.5).double()
    got = self_certainty_advantages(
        certainty,
        num_generations,
        mode=mode,
        outcome=None if mode == "replace" else outcome,
        weight=weight,
        combine=combine,
        scale=scale,
    )
    expected = reference_advantages(
        certainty.tolist(), num_generations, mode, outcome.tolist(), weight, combine, scale, 1e-4
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_replace_is_grpo_over_self_certainty_and_permutation_equivariant(generator):
    certainty = torch.rand(12, generator=generator)
    adv = self_certainty_advantages(certainty, 4)
    torch.testing.assert_close(adv, group_advantages(certainty, 4))
    perm = torch.cat([torch.randperm(4, generator=generator) + 4 * k for k in range(3)])
    torch.testing.assert_close(self_certainty_advantages(certainty[perm], 4), adv[perm])
    # the most certain rollout of each group gets the largest advantage
    assert torch.equal(adv.view(3, 4).argmax(1), certainty.view(3, 4).argmax(1))


def test_add_breaks_ties_inside_a_collapsed_group():
    outcome = torch.zeros(4)  # all wrong: GRPO gives nothing
    certainty = torch.tensor([0.1, 0.4, 0.2, 0.3])
    adv = self_certainty_advantages(certainty, 4, mode="add", outcome=outcome, weight=0.5)
    assert torch.equal(adv.argsort(), certainty.argsort())
    assert adv.sum().abs() < 1e-6


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="temperature"):
        token_self_certainty(torch.zeros(3), temperature=0)
    with pytest.raises(ValueError, match="logits"):
        token_self_certainty(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="vocab_size"):
        self_certainty_from_mean_log_prob(torch.zeros(2), 1)
    with pytest.raises(ValueError, match="completion_mask"):
        sequence_self_certainty(torch.zeros(2, 3), torch.full((2, 3), 2))
    with pytest.raises(ValueError, match="token_certainty"):
        sequence_self_certainty(torch.tensor([[float("nan"), 0.0]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="mode"):
        self_certainty_advantages(torch.zeros(4), 2, mode="mix")
    with pytest.raises(ValueError, match="outcome"):
        self_certainty_advantages(torch.zeros(4), 2, mode="add")
    with pytest.raises(ValueError, match="outcome"):
        self_certainty_advantages(torch.zeros(4), 2, outcome=torch.zeros(4))
    with pytest.raises(ValueError, match="combine"):
        self_certainty_advantages(torch.zeros(4), 2, mode="add", outcome=torch.zeros(4), combine="sum")
    with pytest.raises(ValueError, match="self_certainty"):
        self_certainty_advantages(torch.tensor([1.0, float("inf")]), 2)
    with pytest.raises(ValueError, match="outcome"):
        self_certainty_advantages(torch.zeros(4), 2, mode="add", outcome=torch.zeros(6))
