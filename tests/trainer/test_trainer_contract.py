"""Contract tests of ISPOTrainer against TRL's GRPOTrainer (CPU, tiny offline model, no hub).

They pin what the subclass relies on in TRL's private hooks: if a TRL release changes them, these fail.
"""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.slow


def _train(trainer_cls, config_cls, model_path, dataset, output_dir, config_kwargs, parity_reward, **overrides):
    args = config_cls(**config_kwargs(output_dir, **overrides))
    trainer = trainer_cls(model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    trainer.train()
    return trainer


def _losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_weights_zero_reproduces_grpo_exactly(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    """Same seed: identical losses at every step and identical parameters after training.

    The ISPO passes still run (diagnostics on), so this also shows they draw no random numbers.
    """
    from trl import GRPOConfig, GRPOTrainer

    from ispo import ISPOConfig, ISPOTrainer

    common = dict(max_steps=3, num_iterations=2, gradient_accumulation_steps=2, per_device_train_batch_size=4)
    grpo = _train(
        GRPOTrainer, GRPOConfig, tiny_model_path, dataset, tmp_path / "grpo", config_kwargs, parity_reward, **common
    )
    ispo = _train(
        ISPOTrainer,
        ISPOConfig,
        tiny_model_path,
        dataset,
        tmp_path / "ispo",
        config_kwargs,
        parity_reward,
        lambda_ifd=0.0,
        lambda_tok=0.0,
        ispo_diagnostics=True,
        **common,
    )
    assert _losses(grpo) == _losses(ispo) and len(_losses(grpo)) == 3
    assert any(loss != 0 for loss in _losses(grpo))
    for (name, p_grpo), (_, p_ispo) in zip(grpo.model.named_parameters(), ispo.model.named_parameters(), strict=True):
        assert torch.equal(p_grpo, p_ispo), name
    records = [json.loads(line) for line in (tmp_path / "ispo" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in (
        "zero_adv_rate/outcome",
        "zero_adv_rate/composite",
        "critical/frac",
        "accuracy",
        "no_answer_rate",
        "entropy/pi_old",
        "completion_length",
        "tok_reward/incorrect",
        "hc/incorrect",
    ):
        assert key in records[-1], key


def _one_batch(trainer, dataset):
    """One generation batch through TRL's pipeline (with the ISPO hooks), as training would see it."""
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); we call the hooks directly
    inputs = [
        dataset[i % len(dataset)]
        for i in range(trainer.args.generation_batch_size // trainer.num_generations)
        for _ in range(trainer.num_generations)
    ]
    return trainer._generate_and_score_completions(inputs)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
def test_loss_and_gradient_equal_hand_computed_surrogate(
    tiny_model_path, dataset, tmp_path, loss_type, config_kwargs, parity_reward
):
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(
        **config_kwargs(tmp_path, critical="entropy", loss_type=loss_type, lambda_tok=0.4, lambda_ifd=0.2)
    )
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    batch = _one_batch(trainer, dataset)
    advantages = batch["advantages"]
    assert advantages.shape == (args.per_device_train_batch_size,)
    assert not torch.allclose(advantages, trainer.last_record.trl_advantages_local)  # ISPO's, not GRPO's
    assert torch.equal(advantages, trainer.last_record.advantages)
    assert list(trainer._logs["advantages"]) == trainer.last_record.advantages.tolist()  # completions table

    model = trainer.model
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}

    # by hand: plain logits, the sampling temperature, log-softmax, clipped surrogate
    model.zero_grad()
    prompt_ids, completion_ids, mask = batch["prompt_ids"], batch["completion_ids"], batch["completion_mask"].float()
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -completion_ids.size(1) - 1 : -1]
    logps = torch.log_softmax(logits / args.temperature, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    ratio = torch.exp(logps - logps.detach())
    adv = advantages.unsqueeze(1)
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - args.epsilon, 1 + args.epsilon) * adv)
    if loss_type == "grpo":
        expected = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    else:
        expected = (per_token * mask).sum() / mask.sum()
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(g.abs().sum() > 0 for g in grads.values())


def test_pi_old_statistics_recorded_while_generating_match_a_forward(
    tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward
):
    """On-policy without vLLM, TRL computes no old log-probs: ISPO records them while generating, measures them
    once against a full forward (fp32: equal), and from then on runs no pi_old forward, drift filter included."""
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(**config_kwargs(tmp_path, temperature=0.7))  # critical="intersection": drift filter on
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    _one_batch(trainer, dataset)  # the measuring batch: recording and forward both run
    metrics = trainer._metrics["train"]
    assert trainer.pi_old_from_generation is True
    assert metrics["ispo/pi_old_from_generation"] == [0.0] and len(metrics["time/ispo_old_logps"]) == 1
    batch = _one_batch(trainer, dataset)
    assert "old_per_token_logps" not in batch
    assert metrics["ispo/pi_old_from_generation"] == [0.0, 1.0] and len(metrics["time/ispo_old_logps"]) == 1
    last = trainer.last_record
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, input_ids, attention_mask, batch["completion_ids"].size(1), compute_entropy=True
        )
    statistics = last.local_statistics
    valid = batch["completion_mask"].bool()
    torch.testing.assert_close(statistics["old_logps"][valid], logps[valid], rtol=0, atol=1e-4)
    torch.testing.assert_close(statistics["entropies"][valid], entropies[valid], rtol=0, atol=1e-4)


def test_recording_that_differs_from_a_forward_is_never_trusted(
    tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward, monkeypatch
):
    """Decoding statistics that do not match a full forward (bf16 rounding, simulated): a forward every step."""
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(**config_kwargs(tmp_path, critical="entropy"))
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    from ispo.models.recording import GenerationRecorder

    original = GenerationRecorder.result

    def shifted(self, *args, **kwargs):  # cached bf16 decoding rounds ~0.02 nats away from a full forward
        return tuple(x + 0.02 for x in original(self, *args, **kwargs))

    monkeypatch.setattr(GenerationRecorder, "result", shifted)
    for _ in range(2):
        _one_batch(trainer, dataset)
    metrics = trainer._metrics["train"]
    assert trainer.pi_old_from_generation is False
    assert metrics["ispo/pi_old_from_generation"] == [0.0, 0.0] and len(metrics["time/ispo_old_logps"]) == 2


def test_grad_accumulation_and_num_iterations(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    """generation batch 8 = 2 micro-batches of 4, each reused twice: advantages stay (4,), old log-probs present."""
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(
        **config_kwargs(
            tmp_path,
            critical="entropy",
            per_device_train_batch_size=4,
            gradient_accumulation_steps=2,
            num_iterations=2,
            max_steps=2,
        )
    )
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    seen = []
    original = trainer._compute_loss

    def spy(model, inputs):
        seen.append({k: tuple(v.shape) for k, v in inputs.items() if torch.is_tensor(v)})
        return original(model, inputs)

    trainer._compute_loss = spy
    trainer.train()
    assert len(seen) == 4  # 2 optimizer steps x 2 micro-batches
    for shapes in seen:
        assert shapes["advantages"] == (4,)
        assert shapes["old_per_token_logps"] == shapes["completion_ids"]  # TRL computed them; ISPO reused them
    assert "time/ispo_old_logps" not in trainer.state.log_history[0]  # no second pi_old forward
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())


def test_resume_from_checkpoint_continues(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    from ispo import ISPOConfig, ISPOTrainer

    output_dir = tmp_path / "run"
    first = ISPOTrainer(
        tiny_model_path,
        reward_funcs=[parity_reward],
        train_dataset=dataset,
        args=ISPOConfig(**config_kwargs(output_dir, max_steps=2, save_strategy="steps", save_steps=1)),
    )
    first.train()
    # the run "crashed" after step 2; resume from the step-1 checkpoint and run to step 3
    second = ISPOTrainer(
        tiny_model_path,
        reward_funcs=[parity_reward],
        train_dataset=dataset,
        args=ISPOConfig(**config_kwargs(output_dir, max_steps=3, save_strategy="no")),
    )
    second.train(resume_from_checkpoint=str(output_dir / "checkpoint-1"))
    assert second.state.global_step == 3
    steps = [json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_in_memory_model_gets_a_frozen_reference_copy(dataset, tmp_path, config_kwargs, parity_reward):
    """A model object whose `_name_or_path` leads nowhere: drift comes from a frozen copy, not the hub."""
    from ispo import ISPOConfig, ISPOTrainer
    from ispo.models.tiny import build_char_tokenizer, build_tiny_model

    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1)
    model.config._name_or_path = "nowhere/not-a-model"
    args = ISPOConfig(**config_kwargs(tmp_path, max_steps=2))
    trainer = ISPOTrainer(
        model, reward_funcs=[parity_reward], args=args, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    reference = trainer.frozen_base
    assert reference is not None and reference is not trainer.model
    assert all(not p.requires_grad for p in reference.parameters())
    records = [entry for entry in trainer.state.log_history if "drift/enabled" in entry]
    assert records[-1]["drift/enabled"] == 1.0 and records[-1]["drift/mean"] > 0  # the policy moved away from it


def test_missing_answer_fails_at_start_with_row_index(tiny_model_path, tmp_path, config_kwargs, parity_reward):
    from datasets import Dataset

    from ispo import ISPOConfig, ISPOTrainer

    rows = [{"prompt": "1+1?", "answer": "2"}, {"prompt": "2+2?", "answer": ""}, {"prompt": "3+3?", "answer": "6"}]
    args = ISPOConfig(**config_kwargs(tmp_path))
    with pytest.raises(ValueError, match="row 1"):
        ISPOTrainer(tiny_model_path, args=args, train_dataset=Dataset.from_list(rows))
    with pytest.raises(ValueError, match="row 0 has no 'answer'"):
        ISPOTrainer(tiny_model_path, args=args, train_dataset=Dataset.from_list([{"prompt": "1+1?"}]))
    with pytest.raises(TypeError, match="ISPOConfig"):
        from trl import GRPOConfig

        ISPOTrainer(tiny_model_path, args=GRPOConfig(**config_kwargs(tmp_path)), train_dataset=Dataset.from_list(rows))


def test_peft_reference_is_the_adapter_disabled_base(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    peft = pytest.importorskip("peft")
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(**config_kwargs(tmp_path, max_steps=2, learning_rate=5e-2))
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = ISPOTrainer(
        tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset, peft_config=lora
    )
    assert trainer.frozen_base_source == "adapter" and trainer.frozen_base is None
    trainer.train()
    records = [entry for entry in trainer.state.log_history if "drift/enabled" in entry]
    assert records[0]["drift/mean"] < 1e-5  # a fresh adapter is the identity: policy == reference
    assert records[-1]["drift/enabled"] == 1.0 and records[-1]["drift/mean"] > 0


def test_evaluation_logs_the_diagnostics(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(
        **config_kwargs(
            tmp_path, max_steps=1, eval_strategy="steps", eval_steps=1, per_device_eval_batch_size=4, critical="entropy"
        )
    )
    trainer = ISPOTrainer(
        tiny_model_path,
        reward_funcs=[parity_reward],
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(2)),
    )
    trainer.train()
    evaluation = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert evaluation and "eval_zero_adv_rate/composite" in evaluation[-1] and "eval_critical/frac" in evaluation[-1]


def test_grpo_without_diagnostics_runs_no_extra_pass(tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward):
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(**config_kwargs(tmp_path, max_steps=1, lambda_ifd=0.0, lambda_tok=0.0, ispo_diagnostics=False))
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    assert trainer.frozen_base is None
    trainer.train()
    (record,) = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert "zero_adv_rate/outcome" in record and "no_answer_rate" in record
    assert not any(key.startswith(("time/ispo", "hc/", "critical/")) for key in record)


def format_reward(completions, **kwargs):
    """An auxiliary reward: 0.5 for a completion that contains a brace, else 0."""
    return [0.5 * ("{" in (c[0]["content"] if isinstance(c, list) else c)) for c in completions]


def test_outcome_reward_is_named_when_several_functions(
    tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward
):
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(**config_kwargs(tmp_path, critical="entropy"))
    with pytest.raises(ValueError, match="outcome_reward.*none is 'math_accuracy'"):
        ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward, format_reward], args=args, train_dataset=dataset)
    for bad, message in (("nope", "no reward function named 'nope'"), ("5", "index 5")):
        args = ISPOConfig(**config_kwargs(tmp_path, critical="entropy", outcome_reward=bad))
        with pytest.raises(ValueError, match=message):
            ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward, format_reward], args=args, train_dataset=dataset)
    args = ISPOConfig(**config_kwargs(tmp_path, critical="entropy", reward_weights=[2.0]))
    with pytest.raises(ValueError, match="must have weight 1"):
        ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=args, train_dataset=dataset)
    grpo = ISPOConfig(**config_kwargs(tmp_path, method="grpo", reward_weights=[2.0]))  # GRPO trains on TRL's reward
    ISPOTrainer(tiny_model_path, reward_funcs=[parity_reward], args=grpo, train_dataset=dataset)


def test_accuracy_plus_format_reward_trains_and_logs_both(
    tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward
):
    """R_o drives the correct/incorrect branch; the auxiliary reward is added with its weight."""
    from ispo import ISPOConfig, ISPOTrainer
    from ispo.core import composite_reward, group_advantages

    args = ISPOConfig(
        **config_kwargs(tmp_path, critical="entropy", outcome_reward="1", reward_weights=[0.4, 1.0], max_steps=2)
    )
    with pytest.warns(UserWarning, match="auxiliary rewards \\['format_reward'\\]"):
        trainer = ISPOTrainer(
            tiny_model_path, reward_funcs=[format_reward, parity_reward], args=args, train_dataset=dataset
        )
    trainer.train()
    record = [entry for entry in trainer.state.log_history if "loss" in entry][-1]
    assert "rewards/format_reward/mean" in record and "rewards/parity_reward/mean" in record
    last = trainer.last_record
    batch = last.batch
    aux = 0.4 * last.rewards_per_func[:, 0]
    torch.testing.assert_close(batch.auxiliary, aux)
    assert torch.equal(batch.outcome, last.rewards_per_func[:, 1])
    signals = batch.signals
    expected = composite_reward(batch.outcome, signals.ifd, signals.token_reward, lambda_ifd=0.5, lambda_tok=0.1) + aux
    torch.testing.assert_close(last.rewards, expected)
    torch.testing.assert_close(last.advantages, group_advantages(expected, args.num_generations))


def test_outcome_outside_zero_one_stops_with_the_function_and_step(tiny_model_path, dataset, tmp_path, config_kwargs):
    from ispo import ISPOConfig, ISPOTrainer

    def half_reward(completions, **kwargs):
        return [0.5 for _ in completions]

    args = ISPOConfig(**config_kwargs(tmp_path, critical="entropy"))
    trainer = ISPOTrainer(tiny_model_path, reward_funcs=[half_reward], args=args, train_dataset=dataset)
    with pytest.raises(ValueError, match="outcome reward 'half_reward' returned 0.5 at step 0"):
        trainer.train()


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_outcome_advantages_equal_trl_advantages(
    tiny_model_path, dataset, tmp_path, config_kwargs, parity_reward, scale_rewards
):
    """Contract: at weights 0, ISPO's advantages of the outcome reward are the ones TRL computed for the batch.

    ``ispo.core.group_advantages`` mirrors TRL's sum_then_normalize reduction (group mean baseline, unbiased
    NaN-aware std per group or over the batch, eps 1e-4, NaN -> 0); a TRL change to it fails here.
    """
    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(
        **config_kwargs(
            tmp_path,
            critical="entropy",
            lambda_ifd=0.0,
            lambda_tok=0.0,
            scale_rewards=scale_rewards,
            outcome_reward="parity_reward",
        )
    )
    trainer = ISPOTrainer(
        tiny_model_path, reward_funcs=[parity_reward, format_reward], args=args, train_dataset=dataset
    )
    batch = _one_batch(trainer, dataset)
    last = trainer.last_record
    assert bool((last.advantages != 0).any())
    assert torch.equal(batch["advantages"], last.trl_advantages_local)  # weights 0: TRL's stand
    assert torch.equal(last.advantages, last.trl_advantages_local)  # one process: local == global
