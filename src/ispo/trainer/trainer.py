"""``ISPOTrainer``: TRL's ``GRPOTrainer`` with the ISPO composite reward and its baselines (docs/algorithm.md).

Hooks overridden, and why (nothing of TRL's is copied; each override calls the parent):

- ``_calculate_rewards``: keeps the gathered ``(N, n_funcs)`` rewards, which TRL does not return.
  What the hooks keep goes into one ``BatchCapture`` per generation batch, handed to ``score_batch``.
- ``_get_per_token_logps_and_entropies``: while TRL scores a fresh generation batch, asks its forward
  for the entropies too (free: TRL's fused head computes them anyway) and keeps the result, so that
  when TRL computes ``old_per_token_logps`` no full-length forward runs twice.
- ``_generate_single_turn``: records pi_old log-probs and entropies while ``transformers`` generates,
  used once they are measured equal to a full forward (fp32), so no extra full-length forward.
- ``_generate_and_score_completions``: after TRL's own, scores the batch in named stages
  (``score_batch``) and, when the method changes them, replaces ``advantages`` by the method's
  (local rows). The loss is TRL's, unchanged.
- ``log``: also appends one JSON object per logging step to ``<output_dir>/metrics.jsonl``.

A step, as data (``score_batch``; one ``RolloutBatch`` record from stage to stage)::

    outcome (R_o + auxiliary rewards)                 _outcome_stage
    -> statistics passes (ispo.trainer.passes)        StatisticsPasses.run, agreed across processes
    -> what crosses processes                         _exchange_stage: per-rollout signals, O(N)
    -> method (ispo.methods, maths in ispo.core)      Method.compute
    -> advantages                                     _advantages_stage
    -> diagnostics (ispo.trainer.diagnostics)         step_diagnostics, a pure function of the record

The result is a ``StepRecord``, kept as ``trainer.last_record``.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import is_peft_model
from trl import GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.trainer.utils import add_fused_lm_head, create_model_from_path, disable_dropout_in_model

from ispo.answers import locate_answer_tokens
from ispo.core import group_advantages
from ispo.methods import MethodOutput, Pass, RolloutBatch, RolloutSignals, get_method
from ispo.methods.builtin import ispo_rollout_signals, ispo_signal_passes
from ispo.models.loading import is_gguf_source, resolve_model
from ispo.models.recording import GenerationRecorder
from ispo.rewards import check_dataset_rows, math_accuracy_reward, resolve_outcome_reward
from ispo.trainer.config import ISPOConfig
from ispo.trainer.diagnostics import step_diagnostics
from ispo.trainer.metrics import MetricsWriter
from ispo.trainer.passes import ForwardPasses, LocalRollouts, StatisticsPasses


@dataclass
class BatchCapture:
    """What TRL's hooks hand over while one generation batch is produced (reset for every batch)."""

    rewards_per_func: torch.Tensor | None = None  # (N, F) gathered by TRL; NaN where a function returned None
    forwards: list = field(default_factory=list)  # TRL's no-grad scoring forwards (their entropies included)
    recorder: GenerationRecorder | None = None  # decoding statistics recorded while generating


@dataclass(frozen=True)
class StepRecord:
    """What one scored batch was trained on: ``ISPOTrainer.last_record`` after each generation batch.

    The public way to read a step's values (tests, callbacks, notebooks); global rows (N = P * G).
    """

    batch: RolloutBatch  # the step's record: outcome, per-rollout signals, gathered statistics
    rewards_per_func: torch.Tensor  # (N, F) every reward function's values (NaN where one returned None)
    rewards: torch.Tensor  # (N,) the reward trained on (ISPO's composite, or TRL's reward for GRPO)
    advantages: torch.Tensor  # (N,) or (N, T) the advantages trained on
    trl_advantages_local: torch.Tensor  # (B,) TRL's own advantages of this process's rows (GRPO's)
    metrics: dict[str, float]  # the diagnostics logged for this batch
    local_statistics: dict[str, torch.Tensor]  # this process's per-token statistics ((B, T): old_logps, ...)


class ISPOTrainer(GRPOTrainer):
    """Drop-in for ``GRPOTrainer`` that trains with ``args.method`` (ISPO by default).

    Arguments are ``GRPOTrainer``'s; ``args`` must be an ``ISPOConfig``. Without ``reward_funcs`` the
    outcome reward is ``ispo.rewards.math_accuracy`` on the dataset's ``answer`` column. With several
    reward functions, ``args.outcome_reward`` names the 0/1 outcome R_o; the others are auxiliary.
    """

    _tag_names = ["trl", "grpo", "ispo"]
    _name = "ISPO"

    def __init__(
        self,
        model,
        reward_funcs=None,
        args: ISPOConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        **kwargs,
    ):
        if args is None:
            raise ValueError("ISPOTrainer needs args=ISPOConfig(...)")
        if not isinstance(args, ISPOConfig):
            raise TypeError(f"ISPOTrainer needs an ISPOConfig, got {type(args).__name__}")
        if isinstance(model, str) and is_gguf_source(model):  # smollm2-135m-instruct, a .gguf file
            with PartialState().main_process_first():  # one process converts it; the others reuse the copy
                model = resolve_model(model)
        default_reward = reward_funcs is None
        if default_reward:
            reward_funcs = [math_accuracy_reward(args.answer_format)]
        self._method = get_method(args.method)
        self._passes = self._method.passes(args) | (ispo_signal_passes(args) if args.ispo_diagnostics else set())
        # ISPO's per-rollout signals: what the method trains on, or what the diagnostics log
        self._ispo_signals = args.method == "ispo" or args.ispo_diagnostics
        needs_gold = Pass.GOLD_ANSWER in self._passes or Pass.GOLD_PER_STEP in self._passes
        required = ["prompt"] + (["answer"] if default_reward or needs_gold else [])
        check_dataset_rows(train_dataset, "train_dataset", required)
        check_dataset_rows(eval_dataset, "eval_dataset", required)

        own_reference = Pass.REFERENCE in self._passes and args.beta == 0.0
        uses_peft = kwargs.get("peft_config") is not None or (not isinstance(model, str) and is_peft_model(model))
        # A model passed as an object: copy it before TRL patches its forward; TRL would rebuild it from its
        # `_name_or_path`, which may not exist (a model built in memory).
        reference_copy = None
        if own_reference and not uses_peft and not isinstance(model, str):
            reference_copy = copy.deepcopy(model)

        super().__init__(model, reward_funcs, args, train_dataset, eval_dataset, **kwargs)
        self._outcome_index = resolve_outcome_reward(
            list(self.reward_func_names),
            [float(w) for w in self.reward_weights],
            args.outcome_reward,
            uses_outcome=self._method.uses_outcome,
            allow_override=args.allow_outcome_override,
        )

        self._capture: BatchCapture | None = None  # set while TRL generates and scores a batch
        self._tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self._forward = ForwardPasses(
            self.accelerator,
            # looked up at each call, so a wrapper set on the trainer (a test counting forwards) is seen
            lambda *a, **k: self._get_per_token_logps_and_entropies(*a, **k),
            pad_token_id=self._tokenizer.pad_token_id,
            temperature=self.temperature,
            checkpointing_kwargs=args.gradient_checkpointing_kwargs,
        )
        self._method_state: dict[str, Any] = {}  # a method's state across steps (RLPR's EMA threshold)
        self._metrics_writer = MetricsWriter(os.path.join(args.output_dir, "metrics.jsonl"))
        self._warned: set[str] = set()
        self.last_record: StepRecord | None = None  # the latest scored batch (public; see StepRecord)
        base_model, base_source = None, None
        if own_reference:
            if uses_peft:
                base_source = "adapter"
            else:
                # loading must not move the RNG that sampling uses (weights-0 runs must equal GRPO's)
                with torch.random.fork_rng():
                    base_model = self._prepare_reference(model, reference_copy)
                base_source = "ispo_ref"
        elif Pass.REFERENCE in self._passes:
            base_source = "trl_ref"
        self._statistics = StatisticsPasses(
            self._forward,
            self._tokenizer,
            answer_format=args.answer_format,
            pacr_max_steps=args.pacr_max_steps,
            base_model=base_model,
            base_source=base_source,
            log=self._log_once,
        )
        if Pass.PI_OLD in self._passes and not args.needs_drift:
            self._log_once(f"ISPO: critical={args.critical!r} uses no drift filter; no reference model is loaded")

    # ----- set-up -----------------------------------------------------------------------------------

    @property
    def passes(self) -> frozenset[Pass]:
        """The extra passes this trainer runs each step: the method's, plus the diagnostics' when on."""
        return frozenset(self._passes)

    @property
    def frozen_base(self):
        """The frozen base pi_theta0 of the drift filter when the trainer keeps its own copy (beta = 0), else None."""
        return self._statistics.base_model

    @property
    def frozen_base_source(self) -> str | None:
        """Where pi_theta0 comes from: "ispo_ref" (own frozen copy), "adapter" (the PEFT base with the adapter
        disabled), "trl_ref" (TRL's reference model, beta > 0), or None (no drift filter)."""
        return self._statistics.base_source

    @property
    def pi_old_from_generation(self) -> bool | None:
        """Whether pi_old's statistics are read off generation (measured equal to a full forward); None until
        measured."""
        return self._statistics.recording_trusted

    def _prepare_reference(self, model, reference_copy):
        """A frozen pi_ref for the drift filter when TRL loads none (beta = 0), prepared as TRL prepares its own."""
        args = self.args
        if reference_copy is not None:
            reference = reference_copy
        else:
            init_kwargs = dict(args.model_init_kwargs or {})
            if args.distributed_state.distributed_type in ["MULTI_GPU", "DEEPSPEED"]:
                init_kwargs["device_map"] = None
            init_kwargs.setdefault("trust_remote_code", args.trust_remote_code)
            init_kwargs.setdefault("dtype", self.model.dtype)
            reference = create_model_from_path(model, **init_kwargs)
        reference.eval()
        reference.requires_grad_(False)
        if args.disable_dropout:
            disable_dropout_in_model(reference)
        add_fused_lm_head(reference, temperature=self.temperature, cast_lm_head_to_fp32=args.cast_lm_head_to_fp32)
        if self.is_deepspeed_enabled:
            return prepare_deepspeed(reference, self.accelerator)
        if self.is_fsdp_enabled:
            return prepare_fsdp(reference, self.accelerator)
        return self.accelerator.prepare_model(reference, evaluation_mode=True)

    def _log_once(self, message: str) -> None:
        if self.accelerator.is_main_process and message not in self._warned:
            self._warned.add(message)
            print(message, flush=True)

    # ----- hooks ------------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self._capture is not None:
            self._capture.rewards_per_func = rewards_per_func
        return rewards_per_func

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        capture = self._capture
        if capture is None or model is not self.model or torch.is_grad_enabled():
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs
            )
        result = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, batch_size, True, **kwargs
        )
        capture.forwards.append(result)
        return result

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = self.args
        record = (
            Pass.PI_OLD in self._passes
            and self._capture is not None
            and self._statistics.recording_trusted is not False
            and not self.use_vllm
            and not args.use_transformers_continuous_batching
            and not self.tools
            and images is None
        )
        handle = None
        if record:
            model = self.accelerator.unwrap_model(self.model)
            if is_peft_model(model):
                model = model.get_base_model()
            self._capture.recorder = GenerationRecorder(self.temperature)
            handle = model.register_forward_hook(self._capture.recorder.hook, with_kwargs=True)
        try:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        finally:
            if handle is not None:
                handle.remove()

    def _generate_and_score_completions(self, inputs):
        self._capture = capture = BatchCapture()
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._capture = None
        self.score_batch(output, inputs, capture)
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)  # adds TRL's averaged metrics (ours included) to `logs`
        if self.is_world_process_zero():
            self._metrics_writer.write(self.state.global_step, logs)

    # ----- the stages -------------------------------------------------------------------------------

    @torch.no_grad()
    def score_batch(self, output: dict[str, Any], inputs: list[dict], capture: BatchCapture) -> StepRecord:
        """Score one generation batch TRL has produced; replaces ``output["advantages"]`` by the method's.

        Outcome -> passes -> what crosses processes -> method -> advantages -> diagnostics, each a named
        stage whose result is the next one's argument. ``output`` and ``inputs`` are this process's part
        of TRL's batch; ``capture`` what TRL's hooks handed over (its ``rewards_per_func`` is required).
        """
        mode = "train" if self.model.training else "eval"
        start = time.perf_counter()
        timings: dict[str, float] = {}
        local = self._local_rollouts(output, inputs, mode)
        batch = self._outcome_stage(local, capture.rewards_per_func, mode)
        statistics, pass_metrics = self._statistics.run(
            self._passes, self.model, local, capture.forwards, capture.recorder, timings, self.state.global_step
        )
        batch = self._exchange_stage(batch, local, statistics)
        result = self._method.compute(batch, self.args)
        rewards, advantages, trl_local = self._advantages_stage(output, batch, result)
        metrics = {**step_diagnostics(batch, rewards, advantages), **result.metrics, **pass_metrics}
        if self._passes:  # GRPO without diagnostics runs no pass: nothing worth timing
            timings["time/ispo_total"] = time.perf_counter() - start
        for key, value in {**metrics, **timings}.items():
            self._metrics[mode][key].append(value)
        self.last_record = StepRecord(
            batch, capture.rewards_per_func, rewards, advantages, trl_local, metrics, statistics
        )
        return self.last_record

    def _local_rollouts(self, output: dict[str, Any], inputs: list[dict], mode: str) -> LocalRollouts:
        args = self.args
        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        valid = completion_mask.bool()
        if "tool_mask" in output:
            valid = valid & output["tool_mask"].bool()
        lengths = completion_mask.sum(dim=1).tolist()
        ids = [row[:n] for row, n in zip(completion_ids.tolist(), lengths, strict=True)]
        if self._passes and any(key in output for key in ("pixel_values", "image_grid_thw", "token_type_ids")):
            raise NotImplementedError("ISPOTrainer computes its signals for text-only models")
        return LocalRollouts(
            output=output,
            inputs=inputs,
            spans=locate_answer_tokens(self._tokenizer, ids, args.answer_format),
            completion_ids=ids,
            valid=valid,
            input_ids=torch.cat([output["prompt_ids"], completion_ids], dim=1),
            attention_mask=torch.cat([output["prompt_mask"], completion_mask], dim=1),
            batch_size=args.per_device_train_batch_size if mode == "train" else args.per_device_eval_batch_size,
        )

    def _outcome_stage(self, local: LocalRollouts, rewards_per_func: torch.Tensor, mode: str) -> RolloutBatch:
        """R_o, the auxiliary rewards and TRL's summed reward, global rows; R_o outside {0, 1} stops the run.

        ``rewards_per_func`` ``(N, F)``: every reward function's values, gathered by TRL."""
        weights = self.reward_weights.to(rewards_per_func.device)
        outcome = rewards_per_func[:, self._outcome_index].clone()
        if self._method.uses_outcome:
            bad = ~torch.isnan(outcome) & (outcome != 0) & (outcome != 1)
            if bool(bad.any()):
                name = self.reward_func_names[self._outcome_index]
                raise ValueError(
                    f"ISPO: outcome reward {name!r} returned {outcome[bad][0].item():g} "
                    f"at step {self.state.global_step}; "
                    "R_o must be 0 or 1 (None = unscorable); see docs/algorithm.md, 'The outcome reward'"
                )
        weighted = rewards_per_func * weights.unsqueeze(0)
        others = torch.ones(weighted.size(1), dtype=torch.bool, device=weighted.device)
        others[self._outcome_index] = False
        auxiliary = weighted[:, others].nansum(dim=1)
        reward = weighted.nansum(dim=1)
        reward[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # TRL's unscorable rows
        has_answer = torch.tensor([float(s is not None) for s in local.spans], device=self.accelerator.device)
        return RolloutBatch(
            num_generations=self.num_generations if mode == "train" else self.num_generations_eval,
            outcome=outcome,
            auxiliary=auxiliary,
            reward=reward,
            has_answer=self.accelerator.gather(has_answer).bool(),  # gloo gathers no bool tensors
            valid=local.valid,  # local until the gather stage
        )

    def _exchange_stage(self, batch: RolloutBatch, local: LocalRollouts, statistics: dict) -> RolloutBatch:
        """What crosses processes: ISPO's per-rollout signals, computed where the rollouts live, always;
        the per-token statistics only for a method that reads them (``Method.token_statistics``)."""
        gather = self._forward.gather_rows
        rows = self._local_rows(local)
        local_batch = RolloutBatch(
            num_generations=batch.num_generations,
            outcome=batch.outcome[rows],
            auxiliary=batch.auxiliary[rows],
            reward=batch.reward[rows],
            has_answer=batch.has_answer[rows],
            valid=local.valid,
            **statistics,
        )
        signals = ispo_rollout_signals(local_batch, self.args) if self._ispo_signals else RolloutSignals()
        signals.num_valid = local.valid.sum(dim=1).float()
        batch.signals = RolloutSignals(
            **{
                f.name: gather(getattr(signals, f.name))
                for f in fields(signals)
                if getattr(signals, f.name) is not None
            }
        )
        if self._method.token_statistics(self.args):
            batch.valid = gather(local.valid)
            for name, values in statistics.items():
                setattr(batch, name, gather(values, pad_value=-1 if name == "step_ids" else 0))
        else:
            batch.valid = None
        batch.state = self._method_state
        return batch

    def _local_rows(self, local: LocalRollouts) -> slice:
        """This process's rows of the global batch (TRL gives each process a contiguous block)."""
        index = self.accelerator.process_index
        return slice(index * local.num_rows, (index + 1) * local.num_rows)

    def _advantages_stage(self, output: dict[str, Any], batch: RolloutBatch, result: MethodOutput):
        """``(rewards, advantages, TRL's local advantages)``: the global reward and advantages trained on;
        writes this process's rows of the advantages into ``output["advantages"]``."""
        rewards = result.rewards if result.rewards is not None else batch.reward
        advantages = result.advantages
        if advantages is None and result.rewards is not None:
            advantages = group_advantages(result.rewards, batch.num_generations, scale=self.scale_rewards)
        trl_local = output["advantages"]
        if advantages is None:  # TRL's advantages stand (GRPO bit for bit)
            return rewards, group_advantages(batch.reward, batch.num_generations, scale=self.scale_rewards), trl_local
        index, rows = self.accelerator.process_index, len(trl_local)
        local = advantages[index * rows : (index + 1) * rows]
        if local.dim() == 2:  # per-token advantages: the local token width
            local = local[:, : output["completion_ids"].size(1)]
        output["advantages"] = local.to(output["advantages"].dtype)
        if advantages.dim() == 1:
            # TRL logged its outcome advantages for the completions table; show the ones trained on
            logged = self._logs["advantages"]
            for _ in range(min(len(advantages), len(logged))):
                logged.pop()
            logged.extend(advantages.tolist())
        return rewards, advantages, trl_local
