"""The registered methods on fixed rollouts: each against a plain-loop reference from its definition
(docs/methods.md), the forward passes each one runs, and the one-line errors of a bad method config.

The references use only the model's full logits (a plain ``model(input_ids=...)`` call, one rollout at a
time, at the trainer's temperature) and Python loops over rollouts, tokens and groups; nothing from
``ispo.core``. The tiny model's tokenizer is character-level, so text positions are token positions.
"""

from __future__ import annotations

import math
import re
import statistics
from fractions import Fraction

import ispo_fixed_rollouts as fixed
import pytest
import torch
from two_process_rewards import ZERO_VARIANCE_OUTCOMES

pytestmark = pytest.mark.slow

G = fixed.NUM_GENERATIONS
BATCH_SIZE = 8  # per_device_train_batch_size: 12 local rows score in chunks of 8 (+ 4)
TEMPERATURE = 0.7  # not 1, so that a pass ignoring the temperature shows
MARKER = "\\boxed{"
TOLERANCE = dict(rtol=1e-4, atol=1e-4)  # advantages: O(1) after the group standardisation
# Rewards can be small (the tiny model gives every token ~1/V): compared relatively, with float32's absolute floor.
REWARD_TOLERANCE = dict(rtol=1e-4, atol=1e-6)
# A gold answer of several tokens in a group whose rewards are not all clipped to 0, so that the mean of
# probabilities (RLPR's) differs from their geometric mean.
RLPR_PROBLEMS = [("2+3", "5.0"), ("7*6", "42"), ("10-4", "6")]

# Newline-delimited reasoning for PACR (the fixed rollouts have none): runs of newlines, a newline-only
# span at the start, a tail after the last newline, rollouts without reasoning or without an answer.
STEP_COMPLETIONS = [
    "2+3\nthat is 5\n\\boxed{5}",
    "hmm\n\n\nok\n\\boxed{6}",
    "\n\nstart\nno idea",
    "\\boxed{5}",
    "7*6\n=42\n\\boxed{42}",
    "7 times 6\nis 48\n\\boxed{48}",
    "a\nb\nc\nd\n\\boxed{42}",
    "think\n\\boxed{4 2}",
    "\\boxed{6}",
    "10-4\n= 6\n\\boxed{6}",
    "x\ny",
    "10 minus 4\nis 5 \\boxed{5}",
]


@pytest.fixture
def make_trainer(tiny_model_path, tmp_path, config_kwargs):
    from datasets import Dataset

    from ispo import ISPOConfig, ISPOTrainer

    def make(method: str, **overrides):
        overrides.setdefault("per_device_train_batch_size", BATCH_SIZE)
        overrides.setdefault("num_generations", G)
        overrides.setdefault("temperature", TEMPERATURE)
        overrides.setdefault("ispo_diagnostics", False)
        args = ISPOConfig(**config_kwargs(tmp_path / "out", method=method, **overrides))
        trainer = ISPOTrainer(tiny_model_path, args=args, train_dataset=Dataset.from_list(fixed.global_inputs()))
        fixed.perturb(trainer.model)
        return trainer

    return make


def _score(trainer, completions=fixed.COMPLETIONS, **kwargs) -> dict:
    """The trainer's global advantages and composite reward after scoring ``completions`` on one process."""
    fixed.score(trainer, slice(None), completions, **kwargs)
    last = trainer.last_record
    return {"advantages": last.advantages.double(), "composite": last.rewards.double()}


# ----- the plain-loop reference ---------------------------------------------------------------------------


def _encode(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text), "the reference assumes one token per character"
    return ids


def _prompt_ids(tokenizer, row: dict) -> list[int]:
    text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _next_token_logps(model, ids: list[int], temperature: float) -> torch.Tensor:
    """(L, V) float64: log pi(. | ids[:t+1]) at every position t, from the full logits of one plain forward."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.double() / temperature, dim=-1)


def _reasoning(completion: str) -> str:
    """The text before the last answer marker of a completion that ends with an answer, else all of it."""
    marker_at = completion.rfind(MARKER)
    has_answer = marker_at >= 0 and completion.endswith("}") and len(completion) > marker_at + len(MARKER) + 1
    return completion[:marker_at] if has_answer else completion


def _rollouts(trainer, completions) -> list[dict]:
    """Per rollout: prompt ids, completion ids (+ EOS, as generated), reasoning text, gold answer, and the
    next-token log-probs over prompt + completion."""
    tokenizer, model, temperature = trainer.processing_class, trainer.model, trainer.args.temperature
    rollouts = []
    for row, completion in zip(fixed.global_inputs(), completions, strict=True):
        prompt = _prompt_ids(tokenizer, row)
        ids = _encode(tokenizer, completion) + [tokenizer.eos_token_id]
        rollouts.append(
            {
                "prompt": prompt,
                "completion": ids,
                "reasoning": _reasoning(completion),
                "gold": row["answer"],
                "logps": _next_token_logps(model, prompt + ids, temperature),
            }
        )
    return rollouts


def _completion_distributions(rollout) -> list[torch.Tensor]:
    """The (V,) log-prob vector that predicted each completion token, in order."""
    start = len(rollout["prompt"])
    return [rollout["logps"][start + t - 1] for t in range(len(rollout["completion"]))]


def _sampled_logps(rollout) -> list[float]:
    pairs = zip(_completion_distributions(rollout), rollout["completion"], strict=True)
    return [float(dist[token]) for dist, token in pairs]


def _gold_logps(trainer, rollout, reasoning: str, marker: str = MARKER) -> list[float]:
    """log pi(y*_j | prompt, reasoning, marker, y*_<j) for each gold token j."""
    tokenizer = trainer.processing_class
    gold = _encode(tokenizer, rollout["gold"])
    ids = rollout["prompt"] + _encode(tokenizer, reasoning + marker) + gold
    logps = _next_token_logps(trainer.model, ids, trainer.args.temperature)
    start = len(ids) - len(gold)
    return [float(logps[start + j - 1, gold[j]]) for j in range(len(gold))]


def _standardise(values: list[float], scale: str = "group", eps: float = 1e-4) -> list[float]:
    """z_g: (R - group mean) / (group sample std + eps); unscorable (NaN) rows left out and given 0."""
    out = []
    for start in range(0, len(values), G):
        group = values[start : start + G]
        present = [v for v in group if not math.isnan(v)]
        mean = sum(present) / len(present)
        std = statistics.stdev(present)
        for v in group:
            if math.isnan(v):
                out.append(0.0)
            else:
                out.append((v - mean) / (std + eps) if scale == "group" else v - mean)
    return out


def _outcomes() -> list[float]:
    return [math.nan if r is None else float(r) for r in fixed.OUTCOMES]


def _padded(rows: list[list[float]], width: int) -> torch.Tensor:
    return torch.tensor([row + [0.0] * (width - len(row)) for row in rows], dtype=torch.float64)


def _assert_close(actual: torch.Tensor, expected, what: str) -> None:
    expected = torch.as_tensor(expected, dtype=torch.float64)
    tolerance = REWARD_TOLERANCE if what == "composite" else TOLERANCE
    torch.testing.assert_close(actual, expected, **tolerance, equal_nan=True, msg=lambda m: f"{what}: {m}")


# ----- self-certainty -------------------------------------------------------------------------------------


def _reference_self_certainty(rollouts) -> list[float]:
    """SC_i = mean_t KL(U || pi_t) = mean_t sum_j (1/V) log((1/V) / pi_t(j))."""
    values = []
    for rollout in rollouts:
        per_token = []
        for dist in _completion_distributions(rollout):
            size = dist.numel()
            per_token.append(sum((1.0 / size) * (math.log(1.0 / size) - float(lp)) for lp in dist.tolist()))
        values.append(sum(per_token) / len(per_token))
    return values


@pytest.mark.parametrize(("mode", "combine"), [("replace", "advantages"), ("add", "advantages"), ("add", "rewards")])
def test_self_certainty_matches_the_definition(make_trainer, mode, combine):
    overrides = {"self_certainty_mode": mode}
    if mode == "add":
        overrides.update(self_certainty_weight=0.5, self_certainty_combine=combine)
    trainer = make_trainer("self_certainty", **overrides)
    got = _score(trainer)
    certainty = _reference_self_certainty(_rollouts(trainer, fixed.COMPLETIONS))
    outcome, weight = _outcomes(), trainer.args.self_certainty_weight
    if mode == "replace":
        composite, advantages = certainty, _standardise(certainty)
    else:  # the logged reward is the outcome's; an unscorable outcome leaves the rollout out (advantage 0)
        composite = outcome
        standardised = _standardise(certainty)
        if combine == "advantages":
            advantages = [a + weight * s for a, s in zip(_standardise(outcome), standardised, strict=True)]
        else:
            advantages = _standardise([r + weight * s for r, s in zip(outcome, standardised, strict=True)])
        advantages = [0.0 if math.isnan(r) else a for r, a in zip(outcome, advantages, strict=True)]
    assert min(certainty) > 0 and max(certainty) - min(certainty) > 1e-3  # a signal, not a constant
    _assert_close(got["composite"], composite, "composite")
    _assert_close(got["advantages"], advantages, "advantages")


# ----- RLPR -----------------------------------------------------------------------------------------------


def _reference_rlpr(trainer, rollouts, debias: bool, counterfactual_marker: str = MARKER) -> list[float]:
    """r_i = clip(s_i - s'_i, 0, 1), s = mean over gold tokens of pi(y*_k | prompt, reasoning, marker, y*_<k);
    s' the same without the reasoning, after ``counterfactual_marker``."""
    rewards = []
    for rollout in rollouts:
        with_ = _gold_logps(trainer, rollout, rollout["reasoning"])
        score = sum(math.exp(lp) for lp in with_) / len(with_)
        if debias:
            without = _gold_logps(trainer, rollout, "", marker=counterfactual_marker)
            score -= sum(math.exp(lp) for lp in without) / len(without)
        rewards.append(min(max(score, 0.0), 1.0))
    return rewards


@pytest.mark.parametrize("debias", [True, False])
def test_rlpr_matches_the_definition(make_trainer, monkeypatch, debias):
    """s' is scored after prompt + marker, like-for-like with s (a rollout without reasoning gets exactly 0)."""
    monkeypatch.setattr(fixed, "PROBLEMS", RLPR_PROBLEMS)
    trainer = make_trainer("rlpr", rlpr_debias=debias)
    got = _score(trainer)
    rewards = _reference_rlpr(trainer, _rollouts(trainer, fixed.COMPLETIONS), debias)
    assert len(set(rewards)) >= 4  # distinct rewards, so the standardisation is exercised
    _assert_close(got["composite"], rewards, "composite")
    _assert_close(got["advantages"], _standardise(rewards), "advantages")


def test_rlpr_std_filter_follows_its_ema_threshold(make_trainer):
    """Three steps: the first keeps every prompt; each later one filters against beta x the EMA of the mean group
    std of the steps before it (RLPR's order), the EMA starting at the first step's mean and moving by 1 - rho."""
    beta, ratio = 1.0, 0.9
    trainer = make_trainer("rlpr", rlpr_std_filter=True, rlpr_filter_beta=beta, rlpr_filter_ema=ratio)
    ema, kept = None, []
    for completions in (fixed.COMPLETIONS, STEP_COMPLETIONS, fixed.COMPLETIONS):
        got = _score(trainer, completions)
        rewards = _reference_rlpr(trainer, _rollouts(trainer, completions), debias=True)
        stds = [statistics.stdev(rewards[start : start + G]) for start in range(0, len(rewards), G)]
        keep = [True] * len(stds) if ema is None else [std >= beta * ema for std in stds]
        advantages = [a if keep[i // G] else 0.0 for i, a in enumerate(_standardise(rewards))]
        _assert_close(got["composite"], rewards, "composite")
        _assert_close(got["advantages"], advantages, "advantages")
        thresholds = trainer._metrics["train"]["rlpr/std_threshold"]
        if ema is None:
            assert not thresholds  # nothing to filter against on the first step
        else:
            assert thresholds[-1] == pytest.approx(beta * ema, rel=1e-4)
            kept += keep
        step_mean = sum(stds) / len(stds)
        ema = step_mean if ema is None else ratio * ema + (1 - ratio) * step_mean
    assert any(kept) and not all(kept)  # the filter both kept and dropped prompts


# ----- RL-ZVP ---------------------------------------------------------------------------------------------


def test_zvp_matches_the_definition(make_trainer, monkeypatch):
    """Mixed group: GRPO; all correct: alpha H; all wrong: -alpha (max H - H); unscorable rows 0."""
    monkeypatch.setattr(fixed, "OUTCOMES", ZERO_VARIANCE_OUTCOMES)
    alpha = 0.3
    trainer = make_trainer("zvp", zvp_alpha=alpha)
    got = _score(trainer)
    rollouts = _rollouts(trainer, fixed.COMPLETIONS)
    outcome = _outcomes()
    grpo = _standardise(outcome)
    rows = []
    for i, rollout in enumerate(rollouts):
        entropies = [-sum(math.exp(lp) * lp for lp in dist.tolist()) for dist in _completion_distributions(rollout)]
        group = [r for r in outcome[i // G * G : i // G * G + G] if not math.isnan(r)]
        if math.isnan(outcome[i]):
            rows.append([0.0] * len(entropies))
        elif max(group) == min(group) and group[0] > 0:
            rows.append([alpha * h for h in entropies])
        elif max(group) == min(group):
            rows.append([-alpha * (max(entropies) - h) for h in entropies])
        else:
            rows.append([grpo[i]] * len(entropies))
    width = got["advantages"].size(1)
    assert width == max(len(r["completion"]) for r in rollouts)
    _assert_close(got["advantages"], _padded(rows, width), "advantages")
    _assert_close(got["composite"], outcome, "composite")


# ----- ProGRPO --------------------------------------------------------------------------------------------


def _low_probability_confidence(logps: list[float], fraction: float) -> float:
    """exp(mean of the ceil(rho n) smallest log-probs); the ceiling of the exact product rho * n."""
    count = max(1, math.ceil(Fraction(str(fraction)) * len(logps)))
    lowest = sorted(logps)[:count]
    return math.exp(sum(lowest) / count)


@pytest.mark.parametrize("apply_to", ["all", "correct"])
def test_prog_matches_the_definition(make_trainer, monkeypatch, apply_to):
    """A~ = A + alpha (c(q) - c(o|q)) in groups with a correct rollout; c over the least likely tokens."""
    monkeypatch.setattr(fixed, "OUTCOMES", ZERO_VARIANCE_OUTCOMES)  # one group with no correct rollout
    alpha, answer_fraction, prompt_fraction = 0.5, 0.3, 0.5
    trainer = make_trainer(
        "prog",
        prog_alpha=alpha,
        prog_low_prob_fraction=answer_fraction,
        prog_prompt_fraction=prompt_fraction,
        prog_apply_to=apply_to,
    )
    got = _score(trainer)
    rollouts = _rollouts(trainer, fixed.COMPLETIONS)
    outcome = _outcomes()
    advantages = _standardise(outcome)
    shifted = 0
    for i, rollout in enumerate(rollouts):
        prompt = rollout["prompt"]
        prompt_logps = [float(rollout["logps"][t - 1, prompt[t]]) for t in range(1, len(prompt))]
        prompt_confidence = _low_probability_confidence(prompt_logps, prompt_fraction)
        answer_confidence = _low_probability_confidence(_sampled_logps(rollout), answer_fraction)
        group = outcome[i // G * G : i // G * G + G]
        active = any(r >= 0.5 for r in group if not math.isnan(r)) and not math.isnan(outcome[i])
        if active and (apply_to == "all" or outcome[i] >= 0.5):
            advantages[i] += alpha * (prompt_confidence - answer_confidence)
            shifted += 1
    assert shifted >= (5 if apply_to == "correct" else 7)
    _assert_close(got["advantages"], advantages, "advantages")
    _assert_close(got["composite"], outcome, "composite")


# ----- PACR -----------------------------------------------------------------------------------------------


def _step_cuts(reasoning: str) -> list[int]:
    """Where each newline-delimited step ends: after a run of newlines; a newline-only span joins the next
    step; the text after the last newline is a final step."""
    cuts, pending = [], False
    for match in re.finditer(r"([^\n]*)(\n+|$)", reasoning):
        pending = pending or bool(match.group(1))
        if pending and match.end() > (cuts[-1] if cuts else 0):
            cuts.append(match.end())
            pending = False
    return cuts


def _step_confidences(trainer, rollouts) -> list[list[float]]:
    """c_k = log pi(y* | prompt, first k steps, marker), k = 0..K_i, per rollout."""
    result = []
    for rollout in rollouts:
        prefixes = [0, *_step_cuts(rollout["reasoning"])]
        result.append([sum(_gold_logps(trainer, rollout, rollout["reasoning"][:end])) for end in prefixes])
    return result


def test_pacr_step_splitting_of_the_reference():
    assert _step_cuts("2+3\nthat is 5\n") == [4, 14]
    assert _step_cuts("hmm\n\n\nok\n") == [6, 9]
    assert _step_cuts("\n\nstart\nno idea") == [8, 15]
    assert _step_cuts("") == [] and _step_cuts("x") == [1] and _step_cuts("\n\n") == []


def test_pacr_dense_matches_the_definition(make_trainer):
    """A_{i,t} = lambda_O z_g(R)_i + lambda_P A_P (min-max over the group's step returns) for t in step k."""
    gamma, lambda_process = 0.9, 0.5
    trainer = make_trainer("pacr", pacr_gamma=gamma, pacr_lambda_process=lambda_process)
    got = _score(trainer, STEP_COMPLETIONS)
    rollouts = _rollouts(trainer, STEP_COMPLETIONS)
    confidences = _step_confidences(trainer, rollouts)
    returns = []
    for c in confidences:
        gains = [c[k] - c[k - 1] for k in range(1, len(c))]
        returns.append([sum(gamma ** (t - k) * gains[t] for t in range(k, len(gains))) for k in range(len(gains))])
    process = []
    for i, row_returns in enumerate(returns):
        group = [value for r in returns[i // G * G : i // G * G + G] for value in r]
        low, high = min(group, default=0.0), max(group, default=0.0)
        process.append([(value - low) / (high - low) if high > low else 0.0 for value in row_returns])
    outcome_advantage, outcome = _standardise(_outcomes()), _outcomes()
    rows = []
    for i, rollout in enumerate(rollouts):
        cuts = _step_cuts(rollout["reasoning"])
        row = []
        for t in range(len(rollout["completion"])):
            step = next((k for k, end in enumerate(cuts) if t < end), None)
            row.append(outcome_advantage[i] + (lambda_process * process[i][step] if step is not None else 0.0))
        rows.append([0.0] * len(row) if math.isnan(outcome[i]) else row)  # unscorable: left out, as under GRPO
    assert sum(len(r) for r in returns) >= 15 and any(0 < v < 1 for p in process for v in p)
    _assert_close(got["advantages"], _padded(rows, got["advantages"].size(1)), "advantages")
    _assert_close(got["composite"], _outcomes(), "composite")


def test_pacr_sparse_matches_the_definition(make_trainer):
    """R_i = R_o,i + w (c_K - c_0), then GRPO's group advantages."""
    weight = 0.3
    trainer = make_trainer("pacr", pacr_variant="sparse", pacr_sparse_weight=weight)
    got = _score(trainer, STEP_COMPLETIONS)
    confidences = _step_confidences(trainer, _rollouts(trainer, STEP_COMPLETIONS))
    rewards = [r + weight * (c[-1] - c[0]) for r, c in zip(_outcomes(), confidences, strict=True)]
    assert sum(c[-1] != c[0] for c in confidences) >= 8
    _assert_close(got["composite"], rewards, "composite")
    _assert_close(got["advantages"], _standardise(rewards), "advantages")


# ----- GRPO's TRL presets ---------------------------------------------------------------------------------


def test_dr_grpo_sets_trl_loss_and_unscaled_advantages(make_trainer):
    trainer = make_trainer("dr_grpo")
    assert (trainer.args.loss_type, trainer.loss_type) == ("dr_grpo", "dr_grpo")
    assert (trainer.args.scale_rewards, trainer.scale_rewards) == ("none", "none")
    got = _score(trainer)
    _assert_close(got["advantages"], _standardise(_outcomes(), scale="none"), "advantages")


def test_entropy_tokens_sets_trl_top_entropy_quantile(make_trainer):
    trainer = make_trainer("entropy_tokens")
    assert trainer.args.top_entropy_quantile == trainer.top_entropy_quantile == 0.2
    assert trainer.loss_type == "dapo"  # TRL's default loss, untouched
    got = _score(trainer)
    _assert_close(got["advantages"], _standardise(_outcomes()), "advantages")


def test_a_method_setting_conflicting_with_trl_is_one_line(config_kwargs, tmp_path):
    from ispo import ISPOConfig

    with pytest.raises(ValueError) as error:
        ISPOConfig(**config_kwargs(tmp_path, method="dr_grpo", scale_rewards="batch"))
    assert "\n" not in str(error.value)
    assert "ISPOConfig.scale_rewards" in str(error.value) and "'dr_grpo'" in str(error.value)


# ----- only the needed passes run -------------------------------------------------------------------------

N = len(fixed.COMPLETIONS)
PASSES = {  # what each method needs (docs/methods.md), and the ISPO diagnostics' passes
    "grpo": set(),
    "dr_grpo": set(),
    "entropy_tokens": set(),
    "ispo": {"pi_old", "reference", "answer_without_reasoning"},
    "self_certainty": {"token_self_certainty"},
    "rlpr": {"gold_answer"},
    "zvp": {"pi_old"},
    "prog": {"pi_old", "prompt_only"},
    "pacr": {"gold_per_step"},
}
DIAGNOSTIC_PASSES = {"pi_old", "reference", "answer_without_reasoning"}
COUNTERS = ("policy_logps", "policy_forwards", "reference_logps", "reference_forwards")


def _chunks(rows: int) -> int:
    return math.ceil(rows / BATCH_SIZE)


def _expected_forwards(passes: set[str], completions=fixed.COMPLETIONS, max_steps: int = 8) -> dict[str, int]:
    """Calls of TRL's log-prob function and model forwards, per pass, from the chunking by the batch size."""
    answered = sum(1 for c in completions if _reasoning(c) != c)
    prompts = N // G
    prefixes = sum(1 + min(len(_step_cuts(_reasoning(c))), max_steps) for c in completions)
    per_pass = {  # (policy log-prob calls, policy forwards, reference log-prob calls, reference forwards)
        "pi_old": (1, _chunks(N), 0, 0),
        "reference": (0, 0, 1, _chunks(N)),
        "answer_without_reasoning": (_chunks(answered), _chunks(answered), 0, 0),
        "gold_answer": (_chunks(N) + _chunks(prompts), _chunks(N) + _chunks(prompts), 0, 0),
        "prompt_only": (1, _chunks(N), 0, 0),
        "token_self_certainty": (0, _chunks(N), 0, 0),
        "gold_per_step": (_chunks(prefixes), _chunks(prefixes), 0, 0),
    }
    totals = [sum(per_pass[p][k] for p in passes) for k in range(4)]
    return dict(zip(COUNTERS, totals, strict=True))


def _count_forwards(trainer, completions=fixed.COMPLETIONS, **score_kwargs) -> dict[str, int]:
    """Score the fixed rollouts, counting only the forwards of the scoring stages."""
    counts = dict.fromkeys(COUNTERS, 0)
    scoring = []
    reference = trainer.frozen_base
    logps_fn, score_batch = trainer._get_per_token_logps_and_entropies, trainer.score_batch

    def counted_logps(model, *args, **kwargs):
        if scoring:
            counts["reference_logps" if model is reference else "policy_logps"] += 1
        return logps_fn(model, *args, **kwargs)

    def scored(*args, **kwargs):
        scoring.append(True)
        try:
            return score_batch(*args, **kwargs)
        finally:
            scoring.clear()

    def hook(key):
        def count(module, args, kwargs):
            if scoring:
                counts[key] += 1

        return count

    handles = [trainer.model.register_forward_pre_hook(hook("policy_forwards"), with_kwargs=True)]
    if reference is not None:
        handles.append(reference.register_forward_pre_hook(hook("reference_forwards"), with_kwargs=True))
    trainer._get_per_token_logps_and_entropies = counted_logps
    trainer.score_batch = scored
    try:
        fixed.score(trainer, slice(None), completions, **score_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return counts


@pytest.mark.parametrize("diagnostics", [False, True])
@pytest.mark.parametrize("method", sorted(PASSES))
def test_only_the_needed_passes_run(make_trainer, method, diagnostics):
    trainer = make_trainer(method, ispo_diagnostics=diagnostics)
    passes = PASSES[method] | (DIAGNOSTIC_PASSES if diagnostics else set())
    assert {p.value for p in trainer.passes} == passes
    assert (trainer.frozen_base is not None) == ("reference" in passes)
    assert _count_forwards(trainer) == _expected_forwards(passes)


def test_pacr_runs_at_most_max_steps_plus_one_prefixes_per_rollout(make_trainer):
    trainer = make_trainer("pacr", pacr_max_steps=2)
    expected = _expected_forwards({"gold_per_step"}, STEP_COMPLETIONS, max_steps=2)
    assert expected != _expected_forwards({"gold_per_step"}, STEP_COMPLETIONS)  # some rollout has more steps
    assert _count_forwards(trainer, STEP_COMPLETIONS) == expected


def test_zvp_runs_no_forward_when_trl_gave_the_pi_old_statistics(make_trainer):
    trainer = make_trainer("zvp")
    assert _count_forwards(trainer, with_trl_statistics=True) == _expected_forwards(set())


def test_diagnostics_do_not_change_a_method_result(make_trainer):
    without = _score(make_trainer("rlpr", ispo_diagnostics=False))
    with_ = _score(make_trainer("rlpr", ispo_diagnostics=True))
    torch.testing.assert_close(with_["advantages"], without["advantages"], rtol=0, atol=1e-6)


# ----- configuration errors -------------------------------------------------------------------------------


def test_an_unknown_method_is_one_line(config_kwargs, tmp_path):
    from ispo import ISPOConfig

    with pytest.raises(ValueError) as error:
        ISPOConfig(**config_kwargs(tmp_path, method="no_such_method"))
    message = str(error.value)
    assert "\n" not in message and "'no_such_method'" in message
    assert "rlpr" in message and "zvp" in message  # names the registered ones


@pytest.mark.parametrize(
    ("method", "field", "value", "owner"),
    [
        ("rlpr", "zvp_alpha", 0.3, "zvp"),
        ("zvp", "rlpr_debias", False, "rlpr"),
        ("ispo", "pacr_gamma", 0.5, "pacr"),
        ("grpo", "self_certainty_mode", "add", "self_certainty"),
    ],
)
def test_a_field_of_another_method_is_one_line(config_kwargs, tmp_path, method, field, value, owner):
    from ispo import ISPOConfig

    with pytest.raises(ValueError) as error:
        ISPOConfig(**config_kwargs(tmp_path, method=method, **{field: value}))
    message = str(error.value)
    assert "\n" not in message
    assert f"ISPOConfig.{field}" in message and f"{owner!r}" in message and f"{method!r}" in message
