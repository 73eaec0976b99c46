import math

import pytest
import torch
from core_reference import critical_token_mask as reference_mask
from core_reference import drift_filter as reference_drift
from core_reference import entropy_filter as reference_entropy
from core_reference import random_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core import CRITICAL_MODES, critical_token_mask, drift_filter, entropy_filter
from ispo.core.paper import DRIFT_THRESHOLD, ENTROPY_TOP_FRAC

fractions = st.floats(1e-3, 1.0)


@st.composite
def token_batches(draw, min_len=0):
    """(entropy, mask, logp_policy, logp_base) in float64; entropy rounded now and then to make ties."""
    batch = draw(st.integers(1, 7))
    length = draw(st.integers(1, 40))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    entropy = torch.rand(batch, length, generator=generator, dtype=torch.float64) * 5
    if draw(st.booleans()):
        entropy = (entropy * 2).round() / 2  # ties
    mask = random_mask(batch, length, generator, min_len=min(min_len, length))
    logp_policy = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 3
    logp_base = logp_policy - (torch.rand(batch, length, generator=generator, dtype=torch.float64) - 0.5)
    return entropy, mask, logp_policy, logp_base


# ----- plain-loop references ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(case=token_batches(), top_frac=fractions)
def test_entropy_filter_matches_plain_loop_reference(case, top_frac):
    entropy, mask, _, _ = case
    got = entropy_filter(entropy, mask, top_frac)
    assert got.dtype == torch.bool
    assert got.tolist() == reference_entropy(entropy.tolist(), mask.tolist(), top_frac)


@settings(max_examples=100, deadline=None)
@given(case=token_batches(), threshold=st.sampled_from([0.0, 0.1, 0.3, -0.2]))
def test_drift_filter_matches_plain_loop_reference(case, threshold):
    _, mask, logp_policy, logp_base = case
    got = drift_filter(logp_policy, logp_base, mask, threshold)
    assert got.tolist() == reference_drift(logp_policy.tolist(), logp_base.tolist(), mask.tolist(), threshold)


@pytest.mark.parametrize("mode", CRITICAL_MODES)
@pytest.mark.parametrize("with_base", [True, False])
@settings(max_examples=40, deadline=None)
@given(case=token_batches(), top_frac=fractions, drift_threshold=st.sampled_from([0.0, 0.1, 0.3]))
def test_critical_mask_matches_plain_loop_reference(mode, with_base, case, top_frac, drift_threshold):
    entropy, mask, logp_policy, logp_base = case
    base = logp_base if with_base else None
    got = critical_token_mask(
        entropy, mask, logp_policy, base, top_frac=top_frac, drift_threshold=drift_threshold, mode=mode
    )
    expected = reference_mask(
        entropy.tolist(),
        mask.tolist(),
        logp_policy.tolist(),
        None if base is None else base.tolist(),
        top_frac,
        drift_threshold,
        mode,
    )
    assert got.tolist() == expected


# ----- entropy filter (Eq. 4): per-rollout properties -----------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    batch=st.integers(1, 6),
    length=st.integers(1, 60),
    top_frac=fractions,
    seed=st.integers(0, 2**16),
)
def test_each_row_selects_exactly_ceil_top_frac_n(batch, length, top_frac, seed):
    """Distinct entropies: row i with n_i valid tokens selects exactly ceil(top_frac * n_i) of them."""
    generator = torch.Generator().manual_seed(seed)
    entropy = torch.rand(batch, length, generator=generator, dtype=torch.float64)  # distinct almost surely
    mask = random_mask(batch, length, generator)
    got = entropy_filter(entropy, mask, top_frac)
    for row, n in zip(got, mask.sum(dim=1).tolist(), strict=True):
        assert int(row.sum()) == math.ceil(top_frac * n - 1e-9)


def test_float_error_does_not_round_k_up():
    # 0.1 * 30 = 3.0000000000000004 in floating point: k must be 3, not 4
    entropy = torch.arange(30, dtype=torch.float64)[None, :]
    assert int(entropy_filter(entropy, torch.ones(1, 30), 0.1).sum()) == 3
    assert int(entropy_filter(entropy, torch.ones(1, 30), 0.7).sum()) == 21  # 0.7 * 30 = 20.999999999999996


def test_entropy_filter_known_values():
    entropy = torch.tensor(
        [
            [0.5, 2.0, 1.0, 3.0, 0.1, 9.0],  # 5 valid, top 40%: k = 2 -> 3.0 and 2.0
            [1.0, 1.0, 1.0, 0.2, 0.0, 0.0],  # 4 valid, top 40%: k = 2 -> threshold 1.0, all three ties kept
            [4.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # 1 valid: k = 1
            [7.0, 7.0, 7.0, 7.0, 7.0, 7.0],  # no valid token: nothing
        ]
    )
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    got = entropy_filter(entropy, mask, 0.4)
    assert got.tolist() == [
        [False, True, False, True, False, False],
        [True, True, True, False, False, False],
        [True, False, False, False, False, False],
        [False] * 6,
    ]


def test_top_frac_one_selects_every_valid_token(generator):
    entropy = torch.rand(5, 9, generator=generator)
    mask = random_mask(5, 9, generator)
    assert torch.equal(entropy_filter(entropy, mask, 1.0), mask)


@settings(max_examples=60, deadline=None)
@given(case=token_batches(), top_frac=fractions, extra=st.integers(1, 5))
def test_padding_invariance(case, top_frac, extra):
    """Extra padded columns and garbage (huge, NaN) at padded positions change nothing."""
    entropy, mask, logp_policy, logp_base = case
    batch, length = entropy.shape
    base = {
        mode: critical_token_mask(entropy, mask, logp_policy, logp_base, top_frac=top_frac, mode=mode)
        for mode in CRITICAL_MODES
    }

    def pad(values, fill):
        return torch.cat([values.masked_fill(~mask, fill), torch.full((batch, extra), fill, dtype=values.dtype)], 1)

    padded_mask = torch.cat([mask, torch.zeros(batch, extra, dtype=torch.bool)], 1)
    padded = (pad(entropy, 1e9), padded_mask, pad(logp_policy, float("nan")), pad(logp_base, -1e9))
    for mode in CRITICAL_MODES:
        got = critical_token_mask(*padded, top_frac=top_frac, mode=mode)
        assert torch.equal(got[:, :length], base[mode])
        assert not got[:, length:].any()
    assert torch.equal(
        entropy_filter(padded[0], padded_mask, top_frac)[:, :length], entropy_filter(entropy, mask, top_frac)
    )


@settings(max_examples=60, deadline=None)
@given(case=token_batches(), top_frac=fractions, seed=st.integers(0, 2**16))
def test_a_rows_selection_does_not_depend_on_other_rows(case, top_frac, seed):
    entropy, mask, logp_policy, logp_base = case
    base = critical_token_mask(entropy, mask, logp_policy, logp_base, top_frac=top_frac)
    generator = torch.Generator().manual_seed(seed)
    # permuting rows permutes the selection
    perm = torch.randperm(entropy.shape[0], generator=generator)
    permuted = critical_token_mask(entropy[perm], mask[perm], logp_policy[perm], logp_base[perm], top_frac=top_frac)
    assert torch.equal(permuted, base[perm])
    # replacing every other row leaves row 0 unchanged, as does computing row 0 alone
    others = torch.rand(entropy.shape, generator=generator, dtype=torch.float64) * 100
    changed = torch.cat([entropy[:1], others[1:]])
    changed_mask = torch.cat([mask[:1], torch.ones_like(mask[1:])])
    got = critical_token_mask(changed, changed_mask, logp_policy, logp_base, top_frac=top_frac)
    assert torch.equal(got[0], base[0])
    alone = critical_token_mask(entropy[:1], mask[:1], logp_policy[:1], logp_base[:1], top_frac=top_frac)
    assert torch.equal(alone[0], base[0])


def test_never_selects_padding(generator):
    mask = random_mask(8, 12, generator)
    entropy = torch.where(mask, torch.rand(8, 12, generator=generator), torch.full((8, 12), float("nan")))
    logp = torch.where(mask, torch.zeros(8, 12), torch.full((8, 12), float("inf")))
    for mode in CRITICAL_MODES:
        selected = critical_token_mask(entropy, mask, logp, logp - 1.0, top_frac=1.0, drift_threshold=0.0, mode=mode)
        assert not (selected & ~mask).any()


def test_half_precision_matches_float(generator):
    entropy = (torch.rand(6, 50, generator=generator) * 8).to(torch.bfloat16)
    mask = random_mask(6, 50, generator)
    assert torch.equal(entropy_filter(entropy, mask, 0.1), entropy_filter(entropy.float(), mask, 0.1))


# ----- drift filter (Eq. 5) ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(case=token_batches(), threshold=st.floats(1e-6, 5.0))
def test_drift_filter_is_empty_when_the_policy_is_the_base(case, threshold):
    entropy, mask, logp_policy, _ = case
    assert not drift_filter(logp_policy, logp_policy.clone(), mask, threshold).any()
    for mode in ("intersection", "drift"):
        critical = critical_token_mask(
            entropy, mask, logp_policy, logp_policy.clone(), drift_threshold=threshold, mode=mode
        )
        assert not critical.any()  # the first step: no critical token, so R_token = 0
    assert torch.equal(drift_filter(logp_policy, logp_policy.clone(), mask, 0.0), mask)


def test_drift_filter_is_signed_and_fixed():
    logp_policy = torch.tensor([[-1.0, -1.0, -1.0, -1.0, -1.0]])
    logp_base = torch.tensor([[-1.5, -1.25, -1.125, -0.5, -3.0]])  # differences 0.5, 0.25, 0.125, -0.5, 2.0
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    # exactly the threshold passes (>=); a token made less likely never does; padding never does
    assert drift_filter(logp_policy, logp_base, mask, 0.25).tolist() == [[True, True, False, False, False]]
    assert drift_filter(logp_policy, logp_base, mask, 0.3).tolist() == [[True, False, False, False, False]]
    # signed: |difference| would pass the -0.5 token, the paper's filter does not
    assert drift_filter(logp_policy, logp_base, mask, -0.5).tolist() == [[True, True, True, True, False]]


# ----- critical_token_mask ---------------------------------------------------------------------------------


def test_known_values_all_modes():
    # one rollout of 10 tokens: entropy top 20% -> tokens 8, 9; drift >= 0.3 -> tokens 1, 9
    entropy = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 2.0, 3.0]])
    logp_policy = torch.full((1, 10), -1.0)
    logp_base = torch.tensor([[-1.0, -2.0, -1.0, -1.1, -0.5, -1.0, -1.0, -1.0, -1.0, -1.5]])
    mask = torch.ones(1, 10, dtype=torch.bool)

    def selected(mode):
        got = critical_token_mask(entropy, mask, logp_policy, logp_base, top_frac=0.2, mode=mode)
        return got[0].nonzero().flatten().tolist()

    assert selected("entropy") == [8, 9]
    assert selected("drift") == [1, 9]
    assert selected("intersection") == [9]
    assert selected("union") == [1, 8, 9]


def test_defaults_are_the_papers():
    entropy = torch.arange(20, dtype=torch.float64)[None, :]
    logp_policy = torch.zeros(1, 20, dtype=torch.float64)
    logp_base = torch.full((1, 20), -DRIFT_THRESHOLD, dtype=torch.float64)  # every token drifted by exactly tau_Delta
    got = critical_token_mask(entropy, torch.ones(1, 20), logp_policy, logp_base)
    assert int(got.sum()) == math.ceil(ENTROPY_TOP_FRAC * 20)  # E ∩ D = E: the top 10%
    assert got[0, -2:].all()


def test_no_base_means_the_drift_filter_is_off(generator):
    entropy = torch.rand(4, 10, generator=generator)
    mask = random_mask(4, 10, generator)
    high = entropy_filter(entropy, mask, ENTROPY_TOP_FRAC)
    for logp_policy in (None, -torch.rand(4, 10, generator=generator)):
        assert torch.equal(critical_token_mask(entropy, mask, logp_policy, None), high)
        assert torch.equal(critical_token_mask(entropy, mask, logp_policy, None, mode="entropy"), high)
        assert torch.equal(critical_token_mask(entropy, mask, logp_policy, None, mode="drift"), mask)
        assert torch.equal(critical_token_mask(entropy, mask, logp_policy, None, mode="union"), mask)
    returned = critical_token_mask(entropy, mask, None, None, mode="drift")
    assert returned.data_ptr() != mask.data_ptr()  # a new tensor, never the caller's mask


def test_all_padding_selects_nothing():
    logp = torch.zeros(3, 4)
    for mode in CRITICAL_MODES:
        assert not critical_token_mask(torch.rand(3, 4), torch.zeros(3, 4), logp, logp - 1, mode=mode).any()
    assert not entropy_filter(torch.rand(3, 0), torch.zeros(3, 0), 0.5).any()


def test_errors_name_the_argument():
    entropy, ones = torch.rand(2, 3), torch.ones(2, 3)
    logp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="mode"):
        critical_token_mask(entropy, ones, None, None, mode="both")
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="top_frac"):
            critical_token_mask(entropy, ones, None, None, top_frac=bad)
        with pytest.raises(ValueError, match="top_frac"):
            entropy_filter(entropy, ones, bad)
    with pytest.raises(ValueError, match="logp_base"):
        critical_token_mask(entropy, ones, logp, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="logp_policy"):
        critical_token_mask(entropy, ones, None, logp)
    with pytest.raises(ValueError, match="logp_policy"):
        critical_token_mask(entropy, ones, torch.zeros(2, 4), None)
    with pytest.raises(ValueError, match="entropy"):
        critical_token_mask(torch.full((2, 3), float("nan")), ones, None, None)
    with pytest.raises(ValueError, match="entropy"):
        entropy_filter(torch.full((2, 3), float("inf")), ones, 0.5)
    with pytest.raises(ValueError, match="logp_policy"):
        critical_token_mask(entropy, ones, torch.full((2, 3), float("nan")), logp)
    with pytest.raises(ValueError, match="logp_base"):
        drift_filter(logp, torch.full((2, 3), -float("inf")), ones, 0.3)
    with pytest.raises(ValueError, match="drift_threshold"):
        critical_token_mask(entropy, ones, logp, logp, drift_threshold=float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        drift_filter(logp, logp, ones, float("inf"))
    with pytest.raises(ValueError, match="completion_mask"):
        entropy_filter(entropy, torch.full((2, 3), 2), 0.5)


@pytest.mark.parametrize("mode", ["intersection", "entropy", "drift", "union"])
def test_combining_the_filters_gives_the_critical_set(generator, mode):
    """ISPO's per-rollout signals compute E and D once and combine them: the plain-loop reference's set."""
    from ispo.core import combine_filters

    entropy = torch.rand(5, 9, generator=generator) * 3
    valid = torch.rand(5, 9, generator=generator) > 0.2
    policy = -torch.rand(5, 9, generator=generator) * 2
    base = policy - (torch.rand(5, 9, generator=generator) - 0.3)
    high_entropy = entropy_filter(entropy, valid, 0.3)
    for logp_base, drifted in ((base, drift_filter(policy, base, valid, 0.3)), (None, valid)):
        expected = reference_mask(
            entropy.tolist(),
            valid.tolist(),
            policy.tolist(),
            None if logp_base is None else logp_base.tolist(),
            0.3,
            0.3,
            mode,
        )
        assert combine_filters(high_entropy, drifted, mode).tolist() == expected
