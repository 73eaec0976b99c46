import pytest
import torch
from core_reference_methods import answer_token_score as reference_score
from core_reference_methods import confidence_gains as reference_gains
from core_reference_methods import newline_step_boundaries as reference_boundaries
from core_reference_methods import pacr_dense_advantages as reference_dense
from core_reference_methods import pacr_process_advantages as reference_process
from core_reference_methods import pacr_sparse_reward as reference_sparse_reward
from core_reference_methods import pacr_sparse_score as reference_sparse_score
from core_reference_methods import pacr_step_returns as reference_returns
from core_reference_methods import step_ids_from_boundaries as reference_step_ids
from hypothesis import given, settings
from hypothesis import strategies as st

from ispo.core.advantages import group_advantages
from ispo.core.pacr import (
    PROCESS_NORMALISATIONS,
    SPARSE_SCORES,
    confidence_gains,
    newline_step_boundaries,
    pacr_dense_advantages,
    pacr_process_advantages,
    pacr_sparse_reward,
    pacr_sparse_score,
    pacr_step_confidence,
    pacr_step_returns,
    step_ids_from_boundaries,
)

NEWLINES = {1, 2}  # token ids standing for "\n" and ".\n\n"


def _steps(batch, max_steps, generator, min_steps=0):
    """Right-padded step confidences (B, K+1) and their mask, with 0..max_steps steps per row."""
    confidence = -torch.rand(batch, max_steps + 1, generator=generator, dtype=torch.float64) * 8
    num_steps = torch.randint(min_steps, max_steps + 1, (batch,), generator=generator)
    mask = torch.arange(max_steps + 1)[None, :] <= num_steps[:, None]
    return confidence, mask


@settings(max_examples=200, deadline=None)
@given(
    token_ids=st.lists(st.integers(0, 6), max_size=30),
    max_steps=st.one_of(st.none(), st.integers(1, 6)),
    include_tail=st.booleans(),
)
def test_boundaries_match_plain_loop_reference(token_ids, max_steps, include_tail):
    got = newline_step_boundaries(token_ids, NEWLINES, max_steps=max_steps, include_tail=include_tail)
    assert got == reference_boundaries(token_ids, NEWLINES, max_steps, include_tail)
    assert got == sorted(set(got)) and all(1 <= c <= len(token_ids) for c in got)
    if max_steps is not None:
        assert len(got) <= max_steps
    # every step holds at least one non-newline token
    start = 0
    for end in got:
        assert any(t not in NEWLINES for t in token_ids[start:end])
        start = end


def test_boundaries_known_example():
    # "\n a b \n \n c \n d" -> steps "\n a b \n \n" | "c \n" | "d"
    assert newline_step_boundaries([1, 5, 6, 1, 2, 7, 1, 8], NEWLINES) == [5, 7, 8]
    assert newline_step_boundaries([1, 5, 6, 1, 2, 7, 1, 8], NEWLINES, include_tail=False) == [5, 7]
    assert newline_step_boundaries([1, 5, 6, 1, 2, 7, 1, 8], NEWLINES, max_steps=2) == [5, 8]
    assert newline_step_boundaries([], NEWLINES) == []


@settings(max_examples=60, deadline=None)
@given(data=st.data(), length=st.integers(0, 12))
def test_step_ids_match_reference(data, length):
    cut_lists = st.lists(st.integers(1, max(length, 1)), unique=True, max_size=5)
    rows = data.draw(st.lists(cut_lists, min_size=1, max_size=4))
    boundaries = [sorted(c for c in row if c <= length) for row in rows]
    got = step_ids_from_boundaries(boundaries, length)
    assert got.tolist() == reference_step_ids(boundaries, length)


@pytest.mark.parametrize("aggregate", ["sum_log_prob", "mean_log_prob"])
def test_step_confidence_reduces_each_prefix(generator, aggregate):
    logps = -torch.rand(3, 4, 5, generator=generator, dtype=torch.float64) * 3
    mask = torch.rand(3, 4, 5, generator=generator) < 0.7
    mask[:, :, 0] = True
    mask[1, 2:] = False  # row 1 has 2 prefixes (k = 0, 1)
    confidence, step_mask = pacr_step_confidence(logps, mask, aggregate=aggregate)
    flat = reference_score(logps.reshape(12, 5).tolist(), mask.reshape(12, 5).tolist(), aggregate)
    torch.testing.assert_close(confidence, torch.tensor(flat, dtype=torch.float64).view(3, 4))
    assert step_mask.tolist() == [[True] * 4, [True, True, False, False], [True] * 4]
    with pytest.raises(ValueError, match="step_gold_mask"):
        pacr_step_confidence(logps, mask[:, :, :4])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0, 1), mode=st.sampled_from(SPARSE_SCORES))
def test_gains_returns_and_sparse_score_match_reference(seed, gamma, mode):
    generator = torch.Generator().manual_seed(seed)
    confidence, mask = _steps(6, 5, generator)
    gains = confidence_gains(confidence, mask)
    expected_gains = reference_gains(confidence.tolist(), mask.tolist())
    torch.testing.assert_close(gains, torch.tensor(expected_gains, dtype=torch.float64))
    returns = pacr_step_returns(gains, mask[:, 1:], gamma=gamma)
    expected = reference_returns(gains.tolist(), mask[:, 1:].tolist(), gamma)
    torch.testing.assert_close(returns, torch.tensor(expected, dtype=torch.float64))
    score = pacr_sparse_score(confidence, mask, mode=mode)
    expected_score = reference_sparse_score(confidence.tolist(), mask.tolist(), mode)
    torch.testing.assert_close(score, torch.tensor(expected_score, dtype=torch.float64))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_dense_sums_to_sparse(seed):
    """Gains telescope to the final-vs-initial rise, and the undiscounted first return equals it."""
    generator = torch.Generator().manual_seed(seed)
    confidence, mask = _steps(8, 6, generator, min_steps=1)
    gains = confidence_gains(confidence, mask)
    rise = pacr_sparse_score(confidence, mask, mode="rise")
    last = mask.sum(dim=1) - 1
    torch.testing.assert_close(gains.sum(dim=1), rise)
    torch.testing.assert_close(rise, confidence.gather(1, last[:, None]).squeeze(1) - confidence[:, 0])
    returns = pacr_step_returns(gains, mask[:, 1:], gamma=1.0)
    torch.testing.assert_close(returns[:, 0], rise)
    torch.testing.assert_close(pacr_sparse_score(confidence, mask, mode="mean_gain") * last, rise)


@pytest.mark.parametrize("normalisation", PROCESS_NORMALISATIONS)
@settings(max_examples=30, deadline=None)
@given(g=st.integers(1, 4), p=st.integers(1, 3), gamma=st.floats(0, 1), seed=st.integers(0, 10_000))
def test_process_advantages_match_reference(normalisation, g, p, gamma, seed):
    generator = torch.Generator().manual_seed(seed)
    confidence, mask = _steps(g * p, 4, generator)
    got = pacr_process_advantages(confidence, mask, g, gamma=gamma, normalisation=normalisation)
    expected = reference_process(confidence.tolist(), mask.tolist(), g, gamma, normalisation, 1e-4)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    if normalisation == "minmax":
        assert ((got >= 0) & (got <= 1)).all()


def _dense_case(generator, g, p, max_steps=4, length=12):
    confidence, mask = _steps(g * p, max_steps, generator)
    boundaries = []
    for row in range(g * p):
        num_steps = int(mask[row].sum()) - 1
        cuts = sorted(torch.randperm(length - 2, generator=generator)[:num_steps].add(1).tolist())
        boundaries.append(cuts)
    step_ids = step_ids_from_boundaries(boundaries, length)
    lengths = torch.randint(length - 2, length + 1, (g * p,), generator=generator)
    completion_mask = torch.arange(length)[None, :] < lengths[:, None]
    outcome = (torch.rand(g * p, generator=generator) < 0.5).double()
    return outcome, confidence, mask, step_ids, completion_mask


@pytest.mark.parametrize("normalisation", PROCESS_NORMALISATIONS)
@settings(max_examples=25, deadline=None)
@given(
    g=st.integers(1, 4),
    p=st.integers(1, 3),
    gamma=st.floats(0, 1),
    lambdas=st.tuples(st.floats(0, 2), st.floats(-1, 1)),
    seed=st.integers(0, 10_000),
)
def test_dense_advantages_match_reference(normalisation, g, p, gamma, lambdas, seed):
    generator = torch.Generator().manual_seed(seed)
    outcome, confidence, mask, step_ids, completion_mask = _dense_case(generator, g, p)
    lambda_o, lambda_p = lambdas
    got = pacr_dense_advantages(
        outcome,
        confidence,
        mask,
        step_ids,
        completion_mask,
        g,
        gamma=gamma,
        lambda_outcome=lambda_o,
        lambda_process=lambda_p,
        normalisation=normalisation,
    )
    expected = reference_dense(
        outcome.tolist(),
        confidence.tolist(),
        mask.tolist(),
        step_ids.tolist(),
        completion_mask.tolist(),
        g,
        gamma,
        lambda_o,
        lambda_p,
        normalisation,
        1e-4,
    )
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    assert (got[~completion_mask] == 0).all()


def test_dense_with_zero_process_weight_is_grpo(generator):
    outcome, confidence, mask, step_ids, completion_mask = _dense_case(generator, 4, 3)
    got = pacr_dense_advantages(outcome, confidence, mask, step_ids, completion_mask, 4, lambda_process=0.0)
    expected = group_advantages(outcome, 4)[:, None].expand_as(got) * completion_mask
    torch.testing.assert_close(got, expected)


def test_dense_permutation_equivariance_within_groups(generator):
    outcome, confidence, mask, step_ids, completion_mask = _dense_case(generator, 4, 3)
    base = pacr_dense_advantages(outcome, confidence, mask, step_ids, completion_mask, 4)
    perm = torch.cat([torch.randperm(4, generator=generator) + 4 * k for k in range(3)])
    permuted = pacr_dense_advantages(
        outcome[perm], confidence[perm], mask[perm], step_ids[perm], completion_mask[perm], 4
    )
    torch.testing.assert_close(permuted, base[perm])


def test_padding_invariance_of_steps(generator):
    confidence, mask = _steps(6, 3, generator)
    base = pacr_process_advantages(confidence, mask, 3)
    padded_confidence = torch.cat([confidence.masked_fill(~mask, float("nan")), torch.full((6, 2), 9.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(6, 2, dtype=torch.bool)], dim=1)
    padded = pacr_process_advantages(padded_confidence, padded_mask, 3)
    torch.testing.assert_close(padded[:, :3], base)
    assert (padded[:, 3:] == 0).all()


def test_ascending_trajectory_gets_the_larger_process_advantage():
    confidence = torch.tensor([[-6.0, -4.0, -2.0, -0.5], [-6.0, -5.5, -6.5, -7.0]])
    mask = torch.ones(2, 4, dtype=torch.bool)
    process = pacr_process_advantages(confidence, mask, 2)
    assert process[0].min() > process[1].max()
    assert pacr_sparse_score(confidence, mask, mode="ascending_fraction").tolist() == [1.0, pytest.approx(1 / 3)]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    weight=st.floats(-1, 1),
    mode=st.sampled_from(SPARSE_SCORES),
    kappa=st.one_of(st.none(), st.floats(0.5, 5)),
)
def test_sparse_reward_matches_reference(seed, weight, mode, kappa):
    generator = torch.Generator().manual_seed(seed)
    confidence, mask = _steps(6, 4, generator)
    outcome = (torch.rand(6, generator=generator) < 0.5).double()
    got = pacr_sparse_reward(outcome, confidence, mask, weight=weight, mode=mode, kappa=kappa)
    expected = reference_sparse_reward(outcome.tolist(), confidence.tolist(), mask.tolist(), weight, mode, kappa)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    if kappa is not None:
        assert ((got - outcome).abs() <= abs(weight) + 1e-12).all()


def test_bad_inputs_name_the_argument():
    confidence, mask = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="max_steps"):
        newline_step_boundaries([1, 2], NEWLINES, max_steps=0)
    with pytest.raises(ValueError, match="boundaries"):
        step_ids_from_boundaries([[3, 2]], 5)
    with pytest.raises(ValueError, match="boundaries"):
        step_ids_from_boundaries([[6]], 5)
    with pytest.raises(ValueError, match="step_mask"):
        confidence_gains(confidence, torch.tensor([[1, 0, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match="step_confidence"):
        confidence_gains(torch.tensor([[0.0, float("nan"), 0.0]]), torch.ones(1, 3))
    with pytest.raises(ValueError, match="mode"):
        pacr_sparse_score(confidence, mask, mode="best")
    with pytest.raises(ValueError, match="gamma"):
        pacr_step_returns(torch.zeros(2, 2), torch.ones(2, 2), gamma=1.5)
    with pytest.raises(ValueError, match="normalisation"):
        pacr_process_advantages(confidence, mask, 2, normalisation="rank")
    with pytest.raises(ValueError, match="divide"):
        pacr_process_advantages(confidence, mask, 3)
    step_ids, completion = torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4)
    with pytest.raises(ValueError, match="step_ids"):
        pacr_dense_advantages(torch.zeros(2), confidence, mask, step_ids.float(), completion, 2)
    with pytest.raises(ValueError, match="step_ids"):
        pacr_dense_advantages(torch.zeros(2), confidence, mask, step_ids + 2, completion, 2)
    with pytest.raises(ValueError, match="completion_mask"):
        pacr_dense_advantages(torch.zeros(2), confidence, mask, step_ids, torch.ones(2, 5), 2)
    with pytest.raises(ValueError, match="rows"):
        pacr_dense_advantages(torch.zeros(3), confidence, mask, step_ids, completion, 1)
    with pytest.raises(ValueError, match="lambda_process"):
        pacr_dense_advantages(torch.zeros(2), confidence, mask, step_ids, completion, 2, lambda_process=float("nan"))
    with pytest.raises(ValueError, match="kappa"):
        pacr_sparse_reward(torch.zeros(2), confidence, mask, kappa=0.0)
    with pytest.raises(ValueError, match="outcome"):
        pacr_sparse_reward(torch.tensor([float("inf"), 0.0]), confidence, mask)
