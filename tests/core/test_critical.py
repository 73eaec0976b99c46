import pytest
import torch
from core_reference import critical_token_mask as reference_mask
from core_reference import random_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import CRITICAL_MODES, critical_token_mask


@pytest.mark.parametrize("mode", CRITICAL_MODES)
@pytest.mark.parametrize("with_drift", [True, False])
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rho_h=st.floats(0, 1),
    rho_d=st.floats(0, 1),
    delta_min=st.sampled_from([0.0, 1e-3, 0.3]),
)
def test_matches_plain_loop_reference(mode, with_drift, seed, rho_h, rho_d, delta_min):
    generator = torch.Generator().manual_seed(seed)
    entropy = torch.rand(6, 7, generator=generator, dtype=torch.float64)
    drift = torch.rand(6, 7, generator=generator, dtype=torch.float64) if with_drift else None
    mask = random_mask(6, 7, generator)
    got = critical_token_mask(entropy, mask, drift, rho_h=rho_h, rho_d=rho_d, delta_min=delta_min, mode=mode)
    expected = reference_mask(
        entropy.tolist(), mask.tolist(), None if drift is None else drift.tolist(), rho_h, rho_d, delta_min, mode
    )
    assert got.tolist() == expected


@pytest.mark.parametrize("rho_h", [0.05, 0.2, 0.5])
def test_entropy_filter_keeps_about_rho_h(generator, rho_h):
    entropy = torch.rand(64, 100, generator=generator)
    mask = random_mask(64, 100, generator, min_len=10)
    selected = critical_token_mask(entropy, mask, None, rho_h=rho_h, mode="entropy")
    share = selected.sum().item() / mask.sum().item()
    assert abs(share - rho_h) < 0.005


def test_never_selects_padding(generator):
    # padded positions carry the largest values and NaN: neither may leak into the selection
    entropy = torch.rand(8, 12, generator=generator)
    drift = torch.rand(8, 12, generator=generator)
    mask = random_mask(8, 12, generator)
    entropy = entropy.masked_fill(~mask, 1e9)
    drift = drift.masked_fill(~mask, float("nan"))
    for mode in CRITICAL_MODES:
        selected = critical_token_mask(entropy, mask, drift, rho_h=1.0, rho_d=1.0, delta_min=0.0, mode=mode)
        assert not (selected & ~mask).any()


def test_padding_invariance(generator):
    entropy = torch.rand(5, 6, generator=generator)
    drift = torch.rand(5, 6, generator=generator)
    mask = random_mask(5, 6, generator, min_len=1)
    base = critical_token_mask(entropy, mask, drift)
    pad = torch.zeros(5, 4)
    padded = critical_token_mask(
        torch.cat([entropy, pad + 5], 1), torch.cat([mask, pad.bool()], 1), torch.cat([drift, pad + 5], 1)
    )
    assert torch.equal(padded[:, :6], base)
    assert not padded[:, 6:].any()


def test_drift_none_means_all_valid_tokens(generator):
    entropy = torch.rand(4, 10, generator=generator)
    mask = random_mask(4, 10, generator)
    assert torch.equal(critical_token_mask(entropy, mask, None, mode="drift"), mask)
    assert torch.equal(
        critical_token_mask(entropy, mask, None, mode="intersection"),
        critical_token_mask(entropy, mask, None, mode="entropy"),
    )


def test_delta_min_floor():
    entropy = torch.ones(1, 4)
    drift = torch.tensor([[0.0, 1e-5, 0.5, 1.0]])
    selected = critical_token_mask(entropy, torch.ones(1, 4), drift, rho_h=1.0, rho_d=1.0, delta_min=1e-3)
    assert selected.tolist() == [[False, False, True, True]]


def test_all_padding_selects_nothing():
    assert not critical_token_mask(torch.rand(3, 4), torch.zeros(3, 4), torch.rand(3, 4)).any()


def test_errors_name_the_argument():
    entropy = torch.rand(2, 3)
    with pytest.raises(ValueError, match="mode"):
        critical_token_mask(entropy, torch.ones(2, 3), None, mode="both")
    with pytest.raises(ValueError, match="rho_h"):
        critical_token_mask(entropy, torch.ones(2, 3), None, rho_h=1.5)
    with pytest.raises(ValueError, match="drift"):
        critical_token_mask(entropy, torch.ones(2, 3), torch.rand(2, 4))
    with pytest.raises(ValueError, match="entropy"):
        critical_token_mask(torch.full((2, 3), float("nan")), torch.ones(2, 3), None)
