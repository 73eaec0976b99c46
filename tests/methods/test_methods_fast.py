"""Every registered method on a hand-built ``RolloutBatch``, against the plain-loop references of tests/core.

No model, no trainer: each test builds a few groups of small tensors (one unscorable NaN-outcome row
among them), calls the registered function with its options, and compares with the references in
tests/core/core_reference*.py, so a method's maths is checked in milliseconds. ``covers`` ties each test
to the methods it checks; ``test_every_registered_method_has_a_fast_test`` fails for a method without one.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import core_reference as ref
import core_reference_methods as ref_methods
import core_reference_variants as ref_variants
import pytest
import torch

from ispo.methods import (
    IspoOptions,
    MethodOutput,
    NoOptions,
    PacrOptions,
    ProgOptions,
    RlprOptions,
    RolloutBatch,
    RolloutSignals,
    SelfCertaintyOptions,
    ZvpOptions,
    get_method,
    method_names,
)
from ispo.methods.builtin import ispo_rollout_signals, rollout_signals
from ispo.methods.registry import option_config_names

G = 3  # rollouts per prompt
NAN = float("nan")
# three groups: mixed with an unscorable row, all correct, all wrong (the zero-variance kinds)
OUTCOME = [1.0, 0.0, NAN, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
EPS = 1e-4  # the core's eps in group standardisation (a keyword no field reaches)
T, A, K, TP = 12, 4, 3, 5  # completion length, answer length, reasoning steps, prompt length

COVERED: set[str] = set()


def covers(*names: str):
    """Mark a test as the fast test of the methods ``names``."""
    COVERED.update(names)
    return lambda test: test


def make_batch(seed: int = 0, auxiliary: bool = False) -> RolloutBatch:
    """A small batch with every statistic filled, float64, right-padded, deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    n, p = len(OUTCOME), len(OUTCOME) // G

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    outcome = torch.tensor(OUTCOME, dtype=torch.float64)
    aux = rand(n) * 0.2 if auxiliary else torch.zeros(n, dtype=torch.float64)
    valid = ref.random_mask(n, T, g, min_len=1)
    valid[0] = True  # one row without padding
    valid[2, :6] = True
    old_logps = -rand(n, T) * 3
    gold_mask = ref.random_mask(n, A, g, min_len=1)
    gold_mask[5] = False  # no gold answer tokens: unscorable for RLPR
    prompt_mask = ref.random_mask(p, TP, g, min_len=1).repeat_interleave(G, dim=0)
    # PACR: k_i reasoning steps per row (prefixes 0..k_i present), the completion split into them
    steps = torch.randint(0, K + 1, (n,), generator=g)
    steps[0], steps[1], steps[2] = K, 0, 2  # the unscorable row has steps (a process term to leave out)
    step_gold_mask = ref.random_mask(n * (K + 1), A, g, min_len=1).view(n, K + 1, A)
    step_gold_mask &= (torch.arange(K + 1)[None, :] <= steps[:, None])[:, :, None]
    step_ids = torch.full((n, T), -1, dtype=torch.long)
    for i in range(n):
        length, k = int(valid[i].sum()), int(steps[i])
        for t in range(length - 1):  # the last token is the answer: in no step
            if k:
                step_ids[i, t] = min(t * k // max(length - 1, 1), k - 1)
    return RolloutBatch(
        num_generations=G,
        outcome=outcome,
        auxiliary=aux,
        reward=outcome + aux,
        has_answer=torch.tensor([True, False, True, True, True, True, True, True, True]),
        valid=valid,
        old_logps=old_logps,
        entropies=rand(n, T) * 2.5,
        base_logps=old_logps - (rand(n, T) * 0.8 - 0.2),  # drift in [-0.2, 0.6]: some tokens pass 0.3
        answer_logps_with=-rand(n, A) * 2,
        answer_logps_without=-rand(n, A) * 3,
        answer_mask=ref.random_mask(n, A, g),
        gold_logps_with=-rand(n, A) * 2,
        gold_logps_without=-rand(n, A) * 3,
        gold_mask=gold_mask,
        prompt_logps=(-rand(p, TP) * 4).repeat_interleave(G, dim=0),
        prompt_logp_mask=prompt_mask,
        token_self_certainty=rand(n, T) * 3,
        step_gold_logps=-rand(n, K + 1, A) * 3,
        step_gold_mask=step_gold_mask,
        step_ids=step_ids,
    )


def L(tensor):  # noqa: N802 - a tensor as the nested lists the references take
    return tensor.tolist()


def assert_close(actual, expected, atol=1e-6):
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-6, equal_nan=True)


def run(name: str, batch: RolloutBatch, options) -> MethodOutput:
    """The registered function itself, with hand-built options (no ISPOConfig)."""
    method = get_method(name)
    assert isinstance(options, method.options_class)
    return method.function(batch, options)


def test_every_registered_method_has_a_fast_test():
    missing = sorted(set(method_names()) - COVERED)
    assert not missing, f"registered method(s) without a fast test in {__file__}: {missing}"


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "entropy_tokens"])
@covers("grpo", "dr_grpo", "entropy_tokens")
def test_grpo_family_leaves_trls_advantages(name):
    out = run(name, make_batch(), NoOptions())
    assert out.rewards is None and out.advantages is None and out.metrics == {}


@pytest.mark.parametrize("name", sorted({"grpo", "ispo", "self_certainty", "rlpr", "zvp", "prog", "pacr"}))
def test_compute_builds_the_options_from_the_config(name):
    """``Method.compute(batch, config)`` is the registered function under ``Method.options(config)``."""
    method = get_method(name)
    options = {
        "grpo": NoOptions(),
        "ispo": ISPO,
        "self_certainty": SelfCertaintyOptions(mode="add", weight=0.5, combine="rewards", scale_rewards="group"),
        "rlpr": RLPR,
        "zvp": ZvpOptions(alpha=0.2, scale_rewards="group"),
        "prog": PROG,
        "pacr": PACR,
    }[name]
    names = option_config_names(method.options_class, method.prefix)
    config = SimpleNamespace(**{names[f.name]: getattr(options, f.name) for f in dataclasses.fields(options)})
    assert method.options(config) == options
    batch = make_batch(auxiliary=True)
    batch.signals = RolloutSignals(ifd=torch.rand(9, dtype=torch.float64), token_reward=-torch.rand(9))
    via_config, direct = method.compute(batch, config), method.function(batch, options)
    for field in ("rewards", "advantages"):
        if getattr(direct, field) is None:
            assert getattr(via_config, field) is None
        else:
            assert_close(getattr(via_config, field), getattr(direct, field), atol=0)


# --- self-certainty -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, combine, scale",
    [("replace", "advantages", "group"), ("replace", "advantages", "none"), ("add", "advantages", "group")]
    + [("add", "rewards", "group"), ("add", "advantages", "none")],
)
@covers("self_certainty")
def test_self_certainty(mode, combine, scale):
    batch = make_batch()
    options = SelfCertaintyOptions(mode=mode, weight=0.7, combine=combine, scale_rewards=scale)
    out = run("self_certainty", batch, options)
    certainty = ref_methods.sequence_self_certainty(L(batch.token_self_certainty), L(batch.valid))
    outcome = L(batch.reward) if mode == "add" else None
    expected = ref_methods.self_certainty_advantages(certainty, G, mode, outcome, 0.7, combine, scale, EPS)
    if mode == "add":  # an unscorable outcome leaves the rollout out; the logged reward stays TRL's
        expected = [0.0 if math.isnan(o) else a for a, o in zip(expected, OUTCOME, strict=True)]
        assert out.rewards is None
    else:  # no verifier: even the NaN-outcome row is scored by its self-certainty
        assert_close(out.rewards, certainty)
    assert_close(out.advantages, expected)
    assert out.metrics["self_certainty/mean"] == pytest.approx(sum(certainty) / len(certainty))


# --- RLPR -----------------------------------------------------------------------------------------------

RLPR = RlprOptions(
    aggregate="mean_prob", debias=True, std_filter=False, filter_beta=0.5, filter_ema=0.99, scale_rewards="group"
)


def rlpr_reference(batch, options):
    score = ref_methods.answer_token_score(L(batch.gold_logps_with), L(batch.gold_mask), options.aggregate)
    without = None
    if options.debias:
        without = ref_methods.answer_token_score(L(batch.gold_logps_without), L(batch.gold_mask), options.aggregate)
    rewards = ref_methods.rlpr_reward(score, without, (0.0, 1.0), None, 0.0)
    rewards = [
        r + a if any(m) else NAN  # no gold answer tokens: unscorable
        for r, a, m in zip(rewards, L(batch.auxiliary), L(batch.gold_mask), strict=True)
    ]
    return rewards, ref.group_advantages(rewards, G, options.scale_rewards, EPS)


@pytest.mark.parametrize("aggregate", ["mean_prob", "geometric_mean_prob", "sum_log_prob"])
@pytest.mark.parametrize("debias", [True, False])
@covers("rlpr")
def test_rlpr_reward_and_advantages(aggregate, debias):
    batch = make_batch(auxiliary=True)
    options = dataclasses.replace(RLPR, aggregate=aggregate, debias=debias)
    out = run("rlpr", batch, options)
    rewards, advantages = rlpr_reference(batch, options)
    assert math.isnan(rewards[5])
    assert_close(out.rewards, rewards)
    assert_close(out.advantages, advantages)
    assert batch.state == {}  # no filter, no state


@covers("rlpr")
def test_rlpr_std_filter_over_two_steps():
    options = dataclasses.replace(RLPR, std_filter=True, filter_beta=0.5, filter_ema=0.9)
    batch = make_batch(auxiliary=True)
    out = run("rlpr", batch, options)  # first step: no threshold yet, every prompt kept
    rewards, advantages = rlpr_reference(batch, options)
    assert_close(out.advantages, advantages)
    stds = ref_methods.group_reward_std(rewards, G)
    ema, _ = ref_methods.update_std_threshold(stds, None, 0.9, 0.5)
    assert batch.state["rlpr_std_ema"] == pytest.approx(ema)
    assert "rlpr/kept_prompts" not in out.metrics

    # second step: the threshold is beta x the previous EMA; set it between the groups' stds
    finite = sorted(s for s in stds if not math.isnan(s))
    previous = (finite[0] + finite[-1]) / 2 / 0.5
    batch.state["rlpr_std_ema"] = previous
    out = run("rlpr", batch, options)
    keep = ref_methods.rlpr_std_filter(rewards, G, 0.5 * previous)
    assert 0 < sum(keep) < len(keep)
    assert_close(out.advantages, [a if keep[i // G] else 0.0 for i, a in enumerate(advantages)])
    assert out.metrics["rlpr/kept_prompts"] == pytest.approx(sum(keep) / len(keep))
    assert out.metrics["rlpr/std_threshold"] == pytest.approx(0.5 * previous)
    assert batch.state["rlpr_std_ema"] == pytest.approx(ref_methods.update_std_threshold(stds, previous, 0.9, 0.5)[0])


# --- RL-ZVP ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.1, 0.5])
@covers("zvp")
def test_zvp(alpha):
    batch = make_batch()
    out = run("zvp", batch, ZvpOptions(alpha=alpha, scale_rewards="group"))
    expected = ref_methods.zvp_advantages(L(batch.reward), L(batch.entropies), L(batch.valid), G, alpha, EPS)
    assert_close(out.rewards, batch.reward)
    assert_close(out.advantages, expected)
    assert out.advantages[3:6][batch.valid[3:6]].gt(0).all()  # all-correct group: +alpha H
    assert out.advantages[6:9][batch.valid[6:9]].le(0).all()  # all-wrong group: -alpha (max H - H)


# --- ProGRPO --------------------------------------------------------------------------------------------

PROG = ProgOptions(alpha=0.3, low_prob_fraction=0.2, prompt_fraction=1.0, apply_to="all", scale_rewards="group")


@pytest.mark.parametrize("apply_to", ["all", "correct"])
@pytest.mark.parametrize("fractions", [(0.2, 1.0), (0.5, 0.4)])
@covers("prog")
def test_prog(apply_to, fractions):
    batch = make_batch()
    options = dataclasses.replace(PROG, apply_to=apply_to, low_prob_fraction=fractions[0], prompt_fraction=fractions[1])
    out = run("prog", batch, options)
    answer = ref_methods.low_probability_confidence(L(batch.old_logps), L(batch.valid), fractions[0])
    prompt = ref_methods.low_probability_confidence(L(batch.prompt_logps), L(batch.prompt_logp_mask), fractions[1])
    per_group = prompt[::G]  # the prompt repeats across its group
    expected = ref_methods.prog_advantages(L(batch.reward), answer, per_group, G, 0.3, apply_to, False, EPS)
    assert_close(out.rewards, batch.reward)
    assert_close(out.advantages, expected)
    assert out.metrics["prog/answer_confidence"] == pytest.approx(sum(answer) / len(answer))
    assert out.metrics["prog/prompt_confidence"] == pytest.approx(sum(prompt) / len(prompt))


# --- PACR -----------------------------------------------------------------------------------------------

PACR = PacrOptions(
    variant="dense", gamma=0.9, lambda_process=0.2, sparse_weight=0.1, max_steps=8, scale_rewards="group"
)


def step_confidence(batch):
    """c_k: the gold answer's log-probability after k reasoning steps; present where it has tokens."""
    confidence, mask = [], []
    for logps, masks in zip(L(batch.step_gold_logps), L(batch.step_gold_mask), strict=True):
        confidence.append(ref_methods.answer_token_score(logps, masks, "sum_log_prob"))
        mask.append([any(m) for m in masks])
    return confidence, mask


@pytest.mark.parametrize("gamma, lambda_process", [(1.0, 0.2), (0.9, 0.5), (1.0, 0.0)])
@covers("pacr")
def test_pacr_dense(gamma, lambda_process):
    batch = make_batch()
    out = run("pacr", batch, dataclasses.replace(PACR, gamma=gamma, lambda_process=lambda_process))
    confidence, mask = step_confidence(batch)
    expected = ref_methods.pacr_dense_advantages(
        L(batch.reward),
        confidence,
        mask,
        L(batch.step_ids),
        L(batch.valid),
        G,
        gamma,
        1.0,
        lambda_process,
        "minmax",
        EPS,
    )
    expected[2] = [0.0] * T  # the unscorable row is left out, its process term included
    assert_close(out.rewards, batch.reward)
    assert_close(out.advantages, expected)
    if lambda_process == 0:  # GRPO exactly
        grpo = ref.group_advantages(L(batch.reward), G, "group", EPS)
        assert_close(out.advantages, [[a if m else 0.0 for m in row] for a, row in zip(grpo, L(batch.valid))])


@pytest.mark.parametrize("weight", [0.1, 0.4])
@covers("pacr")
def test_pacr_sparse(weight):
    batch = make_batch(auxiliary=True)
    out = run("pacr", batch, dataclasses.replace(PACR, variant="sparse", sparse_weight=weight))
    confidence, mask = step_confidence(batch)
    expected = ref_methods.pacr_sparse_reward(OUTCOME, confidence, mask, weight, "rise", None)
    expected = [r + a for r, a in zip(expected, L(batch.auxiliary), strict=True)]
    assert math.isnan(expected[2])
    assert out.advantages is None  # the trainer turns the reward into TRL's group advantages
    assert_close(out.rewards, expected)


# --- ISPO: the composite reward (Eq. 8) from the per-rollout signals ----------------------------------------

ISPO = IspoOptions(
    lambda_ifd=0.5,
    lambda_tok=0.1,
    entropy_top_frac=0.1,
    drift_threshold=0.3,
    hinge_tau=0.3,
    entropy_alpha=1.0,
    hinge_beta=1.0,
    critical="intersection",
    ifd_answer="sampled",
    token_credit="sequence",
    intrinsic_scale="group",
    intrinsic_groups="all",
    token_asymmetry=True,
    scale_rewards="group",
)


def with_signals(batch: RolloutBatch, seed: int = 1) -> RolloutBatch:
    g = torch.Generator().manual_seed(seed)
    n = len(OUTCOME)
    ifd = torch.randn(n, generator=g, dtype=torch.float64)
    ifd[1] = 0.0  # no answer: IFD 0
    token_reward = -torch.rand(n, generator=g, dtype=torch.float64) * 2
    token_reward[4] = 0.0  # C empty
    batch.signals = RolloutSignals(ifd=ifd, token_reward=token_reward)
    return batch


@pytest.mark.parametrize(
    "change",
    [{}, {"lambda_ifd": 1.0, "lambda_tok": 0.3}, {"scale_rewards": "none"}, {"scale_rewards": "batch"}]
    + [{"ifd_answer": "reference"}, {"lambda_tok": 0.0}, {"lambda_ifd": 0.0}],
)
@covers("ispo")
def test_ispo_composite_reward_and_group_advantages(change):
    options = dataclasses.replace(ISPO, **change)
    batch = with_signals(make_batch(auxiliary=True))
    ifd, token = L(batch.signals.ifd), L(batch.signals.token_reward)
    if options.lambda_tok == 0:
        batch.signals.token_reward = None  # its pass did not run
    if options.lambda_ifd == 0:
        batch.signals.ifd = None
    out = run("ispo", batch, options)
    rewards = []
    for r_o, s, t, aux in zip(OUTCOME, ifd, token, L(batch.auxiliary), strict=True):
        sign = 2 * r_o - 1 if options.ifd_answer == "sampled" else 1.0  # Eq. 8: outcome-signed IFD
        rewards.append(r_o + options.lambda_ifd * sign * s + options.lambda_tok * t + aux)
    assert rewards[2] != rewards[2]  # the NaN outcome stays NaN: left out of the group statistics
    assert_close(out.rewards, rewards)
    assert_close(out.advantages, ref.group_advantages(rewards, G, options.scale_rewards, EPS))


@covers("ispo")
def test_ispo_with_both_weights_zero_is_grpo():
    batch = with_signals(make_batch())
    out = run("ispo", batch, dataclasses.replace(ISPO, lambda_ifd=0.0, lambda_tok=0.0))
    assert out.rewards is None and out.advantages is None  # TRL's advantages stand


@pytest.mark.parametrize("groups", ["mixed", "uniform"])
@pytest.mark.parametrize("scale", ["group", "outcome_floor", "decoupled"])
@covers("ispo")
def test_ispo_variants_intrinsic_groups_and_scale(groups, scale):
    options = dataclasses.replace(ISPO, intrinsic_groups=groups, intrinsic_scale=scale)
    batch = with_signals(make_batch(auxiliary=True))
    out = run("ispo", batch, options)
    mask = ref_variants.intrinsic_group_mask(OUTCOME, G, groups)
    composite = ref_variants.composite_reward(
        OUTCOME, L(batch.signals.ifd), L(batch.signals.token_reward), 0.5, 0.1, True, mask
    )
    rewards = [c + a for c, a in zip(composite, L(batch.auxiliary), strict=True)]
    if scale == "group":
        advantages = ref.group_advantages(rewards, G, "group", EPS)
    else:
        advantages = ref_variants.intrinsic_advantages(OUTCOME, rewards, G, scale, EPS, 0.2, 3.0)
    assert_close(out.rewards, rewards)
    assert_close(out.advantages, advantages)


@pytest.mark.parametrize("asymmetric", [True, False])
@covers("ispo")
def test_ispo_critical_token_credit(asymmetric):
    """token_credit="critical": the token reward enters as per-token advantages on the critical tokens."""
    options = dataclasses.replace(ISPO, token_credit="critical", token_asymmetry=asymmetric)
    batch = with_signals(make_batch())
    out = run("ispo", batch, options)
    rewards = ref.composite_reward(OUTCOME, L(batch.signals.ifd), L(batch.signals.token_reward), 0.5, 0.0, True)
    sequence = ref.group_advantages(rewards, G, "group", EPS)
    critical = ref.critical_token_mask(
        L(batch.entropies), L(batch.valid), L(batch.old_logps), L(batch.base_logps), 0.1, 0.3, "intersection"
    )
    correct = [o == o and o >= 0.5 for o in OUTCOME]
    scorable = [o == o for o in OUTCOME]
    expected = ref_variants.critical_token_advantages(
        sequence, L(batch.old_logps), L(batch.entropies), critical, correct, G, 0.1, 1.0, 1.0, 0.3, asymmetric, scorable
    )
    assert any(any(row) for row in critical)
    assert_close(out.rewards, rewards, atol=1e-5)
    assert_close(out.advantages, expected, atol=1e-5)


# --- ISPO: the per-rollout signals, computed where the rollouts live ------------------------------------------


def paper_signals_loop(batch: RolloutBatch):
    """The paper's critical tokens and R_token (Eqs. 4-7), one rollout at a time.

    C_i = the top ceil(0.1 n_i) entropies of rollout i AND old_logp - base_logp >= 0.3;
    R_token = mean log p over C (correct), mean(H - max(0, 0.3 - H)) over C (incorrect), 0 if C empty.
    """
    rows = []
    for i, r_o in enumerate(OUTCOME):
        tokens = [t for t in range(T) if batch.valid[i, t]]
        h = {t: float(batch.entropies[i, t]) for t in tokens}
        logp = {t: float(batch.old_logps[i, t]) for t in tokens}
        top = sorted(tokens, key=lambda t: -h[t])[: math.ceil(0.1 * len(tokens) - 1e-9)]  # no float round-up
        drifted = [t for t in tokens if logp[t] - float(batch.base_logps[i, t]) >= 0.3]
        critical = [t for t in top if t in drifted]
        correct = r_o == r_o and r_o >= 0.5
        if not critical:
            token_reward = 0.0
        elif correct:
            token_reward = sum(logp[t] for t in critical) / len(critical)
        else:
            token_reward = sum(h[t] - max(0.0, 0.3 - h[t]) for t in critical) / len(critical)
        rows.append(
            {
                "token_reward": token_reward,
                "num_valid": len(tokens),
                "num_entropy": len(top),
                "num_drift": len(drifted),
                "num_critical": len(critical),
                "critical_entropy_sum": sum(h[t] for t in critical),
                "critical_prob_sum": sum(math.exp(logp[t]) for t in critical),
                "entropy_sum": sum(h.values()),
                "drift_sum": sum(logp[t] - float(batch.base_logps[i, t]) for t in tokens),
            }
        )
    return rows


@covers("ispo")
def test_ispo_rollout_signals_match_the_papers_plain_loop():
    batch = make_batch()
    batch.old_logps[3, :3] = batch.base_logps[3, :3] + 0.5  # a correct row whose top-entropy token drifted
    batch.entropies[3, :3] = 3.0 + torch.arange(3.0, dtype=torch.float64)
    batch.old_logps[7, :3] = batch.base_logps[7, :3] + 0.5  # an incorrect one
    batch.entropies[7, :3] = torch.tensor([3.0, 0.1, 0.2], dtype=torch.float64)
    batch.old_logps[8] = batch.base_logps[8] + 0.4  # an incorrect row, confident everywhere: the hinge bites
    batch.entropies[8] = torch.linspace(0.05, 0.25, T, dtype=torch.float64)
    signals = rollout_signals(batch, ISPO)
    expected = paper_signals_loop(batch)
    for name in expected[0]:
        assert_close(getattr(signals, name), [row[name] for row in expected], atol=1e-5)
    assert sum(row["num_critical"] > 0 for row in expected) >= 2 and expected[3]["num_critical"] > 0
    assert any(row["num_critical"] == 0 for row in expected)
    assert expected[8]["num_critical"] > 0 and expected[8]["critical_entropy_sum"] < 0.3 * expected[8]["num_critical"]
    ifd_mask = (batch.answer_mask & batch.has_answer[:, None]).tolist()
    expected_ifd = ref.conditional_ifd(L(batch.answer_logps_with), L(batch.answer_logps_without), ifd_mask)
    assert expected_ifd[1] == 0.0  # no answer: IFD 0
    assert_close(signals.ifd, expected_ifd)
    # the config-taking entry point the trainer calls is the same function under ISPOConfig's values
    config = SimpleNamespace(**dataclasses.asdict(ISPO))
    via_config = ispo_rollout_signals(batch, config)
    for field in dataclasses.fields(RolloutSignals):
        assert_close(getattr(via_config, field.name), getattr(signals, field.name), atol=0)


@pytest.mark.parametrize("mode", ["entropy", "drift", "union"])
@pytest.mark.parametrize("asymmetric", [True, False])
@covers("ispo")
def test_ispo_rollout_signals_other_modes_match_the_references(mode, asymmetric):
    batch = make_batch(seed=3)
    options = dataclasses.replace(
        ISPO, critical=mode, token_asymmetry=asymmetric, entropy_top_frac=0.3, hinge_beta=0.5, ifd_answer="reference"
    )
    signals = rollout_signals(batch, options)
    critical = ref.critical_token_mask(
        L(batch.entropies), L(batch.valid), L(batch.old_logps), L(batch.base_logps), 0.3, 0.3, mode
    )
    correct = [o == o and o >= 0.5 for o in OUTCOME]
    expected = ref.token_directional_reward(
        L(batch.old_logps), L(batch.entropies), critical, correct, 1.0, 0.5, 0.3, asymmetric
    )
    assert_close(signals.token_reward, expected, atol=1e-5)
    assert_close(signals.num_critical, [sum(row) for row in critical])
    gold_mask = (batch.gold_mask & batch.has_answer[:, None]).tolist()
    assert_close(signals.ifd, ref.conditional_ifd(L(batch.gold_logps_with), L(batch.gold_logps_without), gold_mask))


@covers("ispo")
def test_ispo_rollout_signals_without_a_base_model():
    """No frozen base (critical="entropy" runs no reference pass): every valid token counts as drifted."""
    batch = make_batch()
    batch.base_logps = None
    signals = rollout_signals(batch, dataclasses.replace(ISPO, critical="entropy"))
    high = ref.entropy_filter(L(batch.entropies), L(batch.valid), 0.1)
    assert_close(signals.num_drift, batch.valid.sum(dim=1))
    assert_close(signals.num_critical, [sum(row) for row in high])
    assert signals.drift_sum is None
