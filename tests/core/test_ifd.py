import pytest
import torch
from core_reference import conditional_ifd as reference_ifd
from core_reference import random_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import conditional_ifd


def test_matches_plain_loop_reference(generator):
    with_ = -torch.rand(16, 9, generator=generator) * 3
    without = -torch.rand(16, 9, generator=generator) * 3
    mask = random_mask(16, 9, generator)
    expected = reference_ifd(with_.tolist(), without.tolist(), mask.tolist())
    torch.testing.assert_close(conditional_ifd(with_, without, mask), torch.tensor(expected))


def test_known_value_and_empty_row():
    with_ = torch.tensor([[-0.1, -0.2, -5.0], [-1.0, -1.0, -1.0]])
    without = torch.tensor([[-1.1, -0.7, 0.0], [-2.0, -2.0, -2.0]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    torch.testing.assert_close(conditional_ifd(with_, without, mask), torch.tensor([0.75, 0.0]))


def test_padding_invariance(generator):
    with_ = -torch.rand(4, 5, generator=generator)
    without = -torch.rand(4, 5, generator=generator)
    mask = random_mask(4, 5, generator, min_len=1)
    base = conditional_ifd(with_, without, mask)
    # garbage (even non-finite) values at padded positions and extra padding columns change nothing
    padded_with = torch.cat([with_.masked_fill(~mask, float("nan")), torch.full((4, 3), -99.0)], dim=1)
    padded_without = torch.cat([without.masked_fill(~mask, float("-inf")), torch.full((4, 3), 7.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(conditional_ifd(padded_with, padded_without, padded_mask), base)


def test_integer_mask_equals_bool_mask(generator):
    with_ = -torch.rand(3, 4, generator=generator)
    without = -torch.rand(3, 4, generator=generator)
    mask = random_mask(3, 4, generator)
    torch.testing.assert_close(conditional_ifd(with_, without, mask.long()), conditional_ifd(with_, without, mask))


def test_errors_name_the_argument():
    ok = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logps_without"):
        conditional_ifd(ok, torch.zeros(2, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="logps_with"):
        conditional_ifd(torch.tensor([[float("nan"), 0.0, 0.0]] * 2), ok, torch.ones(2, 3))
    with pytest.raises(ValueError, match="answer_mask"):
        conditional_ifd(ok, ok, torch.full((2, 3), 2))


@settings(max_examples=80, deadline=None)
@given(
    batch=st.integers(1, 6),
    length=st.integers(1, 12),
    shift=st.floats(-5, 5),
    seed=st.integers(0, 2**16),
)
def test_properties(batch, length, shift, seed):
    """IFD = 0 when the thinking changes nothing; a constant per-token gain c gives IFD = c on rows with an
    answer (the per-answer-token mean, no bound); rows without an answer stay 0."""
    generator = torch.Generator().manual_seed(seed)
    without = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 10
    mask = random_mask(batch, length, generator)
    assert torch.equal(conditional_ifd(without.clone(), without, mask), torch.zeros(batch, dtype=torch.float64))
    got = conditional_ifd(without + shift, without, mask)
    expected = torch.where(mask.any(dim=1), shift, 0.0).to(torch.float64)
    torch.testing.assert_close(got, expected)
