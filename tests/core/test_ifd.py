import math

import pytest
import torch
from core_reference import conditional_ifd as reference_ifd
from core_reference import random_mask
from core_reference_variants import auto_kappa as reference_auto_kappa
from core_reference_variants import ema_update as reference_ema
from core_reference_variants import ifd_saturation as reference_saturation
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import auto_kappa, conditional_ifd, ema_update, ifd_saturation


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


# ----- kappa = "auto" and the saturation diagnostic (docs/algorithm.md §3b) ----------------------------------


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.tuples(st.floats(-20, 20), st.booleans()), min_size=1, max_size=40),
    floor=st.floats(1e-3, 2),
)
def test_auto_kappa_matches_plain_loop_reference(values, floor):
    ifd = torch.tensor([v for v, _ in values], dtype=torch.float64)
    has_answer = torch.tensor([a for _, a in values])
    got = auto_kappa(ifd, has_answer, floor=floor)
    assert got.dim() == 0
    assert math.isclose(float(got), reference_auto_kappa(ifd.tolist(), has_answer.tolist(), floor), rel_tol=1e-12)
    assert float(got) >= floor


def test_auto_kappa_known_values_and_scale_invariance():
    ifd = torch.tensor([0.0, -3.0, 1.0, 2.0, 100.0])
    has_answer = torch.tensor([False, True, True, True, False])
    assert float(auto_kappa(ifd, has_answer)) == 2.0  # median of |S| over {3, 1, 2}
    assert float(auto_kappa(ifd, torch.tensor([0, 1, 1, 1, 1]))) == 2.5  # {3, 1, 2, 100}: mean of the middle two
    assert float(auto_kappa(ifd, torch.zeros(5, dtype=torch.bool), floor=0.3)) == pytest.approx(0.3)
    assert float(auto_kappa(torch.full((5,), 1e-6), torch.ones(5), floor=0.1)) == pytest.approx(0.1)
    # tanh(S / kappa) is unchanged when every S is scaled (above the floor): the point of a data-driven kappa
    scaled = auto_kappa(ifd * 7, has_answer)
    torch.testing.assert_close(torch.tanh(ifd * 7 / scaled), torch.tanh(ifd / auto_kappa(ifd, has_answer)))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.tuples(st.floats(-1, 1), st.booleans()), min_size=1, max_size=40),
    threshold=st.floats(0, 0.999),
)
def test_ifd_saturation_matches_plain_loop_reference(values, threshold):
    bounded = torch.tensor([v for v, _ in values], dtype=torch.float64)
    has_answer = torch.tensor([a for _, a in values])
    got = float(ifd_saturation(bounded, has_answer, threshold=threshold))
    expected = reference_saturation(bounded.tolist(), has_answer.tolist(), threshold)
    assert (math.isnan(got) and math.isnan(expected)) or math.isclose(got, expected, rel_tol=1e-12)


def test_ifd_saturation_known_values():
    bounded = torch.tanh(torch.tensor([10.0, -10.0, 0.5, 0.1, 10.0]))
    has_answer = torch.tensor([1, 1, 1, 1, 0])
    assert float(ifd_saturation(bounded, has_answer)) == 0.5
    assert math.isnan(float(ifd_saturation(bounded, torch.zeros(5))))
    # an automatic kappa desaturates what kappa = 2 saturates
    ifd = torch.tensor([8.0, -9.0, 7.5, 10.0])
    answered = torch.ones(4, dtype=torch.bool)
    assert float(ifd_saturation(torch.tanh(ifd / 2.0), answered)) == 1.0
    assert float(ifd_saturation(torch.tanh(ifd / auto_kappa(ifd, answered)), answered)) == 0.0


def test_ema_update():
    assert ema_update(None, 3.0, 0.9) == 3.0
    assert ema_update(2.0, 4.0, 0.75) == pytest.approx(2.5)
    assert ema_update(2.0, 4.0, 0.0) == 4.0 and ema_update(2.0, 4.0, 1.0) == 2.0
    state, reference = None, None
    for value in (1.0, 2.0, 3.0):
        state = ema_update(state, torch.tensor(value), 0.5)
        reference = reference_ema(reference, value, 0.5)
        assert math.isclose(float(state), reference)
    assert reference == 2.25
    with pytest.raises(ValueError, match="decay"):
        ema_update(1.0, 2.0, 1.5)


def test_auto_kappa_and_saturation_errors_name_the_argument():
    with pytest.raises(ValueError, match="floor"):
        auto_kappa(torch.zeros(3), torch.ones(3), floor=0.0)
    with pytest.raises(ValueError, match="has_answer"):
        auto_kappa(torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="ifd"):
        auto_kappa(torch.tensor([float("nan"), 0.0]), torch.ones(2))
    auto_kappa(torch.tensor([float("nan"), 1.0]), torch.tensor([0, 1]))  # NaN where there is no answer is unread
    with pytest.raises(ValueError, match="threshold"):
        ifd_saturation(torch.zeros(3), torch.ones(3), threshold=1.0)
    with pytest.raises(ValueError, match="bounded_ifd"):
        ifd_saturation(torch.zeros(3, 1), torch.ones(3))
