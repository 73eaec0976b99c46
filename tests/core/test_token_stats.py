import math

import pytest
import torch

from ispo.core import entropy_from_logits, group_is_constant, masked_mean, normalized_entropy


def test_entropy_matches_definition(generator):
    logits = torch.randn(3, 5, 11, generator=generator, dtype=torch.float64) * 4
    probs = torch.softmax(logits, dim=-1)
    expected = -(probs * probs.log()).sum(-1)
    torch.testing.assert_close(entropy_from_logits(logits), expected.float())


def test_entropy_extremes():
    uniform = torch.zeros(1, 8)
    peaked = torch.tensor([[1e4, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(entropy_from_logits(uniform), torch.tensor([math.log(8)]))
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(normalized_entropy(entropy_from_logits(uniform), 8), torch.tensor([1.0]))
    # -inf logits (masked vocabulary entries) are fine
    masked = torch.tensor([[0.0, 0.0, -float("inf"), -float("inf")]])
    torch.testing.assert_close(entropy_from_logits(masked), torch.tensor([math.log(2)]))


def test_normalized_entropy_rejects_tiny_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        normalized_entropy(torch.zeros(2), 1)


def test_masked_mean():
    assert masked_mean(torch.tensor([1.0, 3.0, 100.0]), torch.tensor([1, 1, 0])).item() == 2.0
    assert torch.isnan(masked_mean(torch.tensor([1.0]), torch.tensor([False])))


def test_group_is_constant():
    values = torch.tensor(
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, float("nan"), 1.0, 1.0, float("nan"), float("nan"), float("nan")]
    )
    assert group_is_constant(values, 3).tolist() == [False, True, True, True]
    with pytest.raises(ValueError, match="divide"):
        group_is_constant(torch.zeros(5), 2)
