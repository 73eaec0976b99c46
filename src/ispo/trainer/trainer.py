"""``ISPOTrainer``: TRL's ``GRPOTrainer`` with the ISPO composite reward and its baselines (docs/algorithm.md).

Hooks overridden, and why (nothing of TRL's is copied; each override calls the parent):

- ``_calculate_rewards``: keeps the gathered ``(N, n_funcs)`` rewards, which TRL does not return.
- ``_get_per_token_logps_and_entropies``: while TRL scores a fresh generation batch, asks its forward
  for the entropies too (free: TRL's fused head computes them anyway) and keeps the result, so that
  when TRL computes ``old_per_token_logps`` no full-length forward runs twice.
- ``_generate_single_turn``: records pi_old log-probs and entropies while ``transformers`` generates,
  used once they are measured equal to a full forward (fp32), so no extra full-length forward.
- ``_generate_and_score_completions``: after TRL's own, scores the batch in named stages
  (``_score_rollouts``) and, when the method changes them, replaces ``advantages`` by the method's
  (local rows). The loss is TRL's, unchanged.
- ``log``: also appends one JSON object per logging step to ``<output_dir>/metrics.jsonl``.

A step, as data (one ``RolloutBatch`` record from stage to stage)::

    outcome (R_o + auxiliary rewards) -> statistics passes the method needs (agreed across processes)
    -> one gather -> method (ispo.methods, maths in ispo.core) -> advantages -> diagnostics
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from accelerate.utils import is_peft_model
from trl import GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.trainer.utils import add_fused_lm_head, create_model_from_path, disable_dropout_in_model

from ispo.answers import ANSWER_MARKERS, AnswerTokens, locate_answer_tokens
from ispo.core import (
    group_advantages,
    newline_step_boundaries,
    step_ids_from_boundaries,
    token_self_certainty,
)
from ispo.methods import MethodOutput, Pass, RolloutBatch, RolloutSignals, get_method
from ispo.methods.builtin import ispo_rollout_signals, ispo_signal_passes
from ispo.models.recording import GenerationRecorder
from ispo.rewards import math_accuracy_reward
from ispo.trainer.config import ISPOConfig
from ispo.trainer.diagnostics import step_diagnostics
from ispo.trainer.metrics import MetricsWriter
from ispo.trainer.passes import Continuation, ForwardPasses, scatter_rows, take_ranges

# Recorded decoding statistics are trusted when they match a full forward this closely: far below the
# drift filter's 0.3 nats and the hinge's 0.3 nats of entropy, so rounding cannot move a critical token.
RECORDING_TOLERANCE = 1e-4


def check_dataset_rows(dataset, name: str, required: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first row of ``dataset`` that lacks a required column value."""
    if isinstance(dataset, dict):  # DatasetDict, or TRL's dict of named eval datasets
        for split, part in dataset.items():
            check_dataset_rows(part, f"{name}[{split!r}]", required)
        return
    if dataset is None or not hasattr(dataset, "column_names") or not hasattr(dataset, "__len__"):
        return  # iterable datasets are not scanned up front
    for column in required:
        if column not in dataset.column_names:
            raise ValueError(
                f"{name} row 0 has no {column!r} column (columns: {dataset.column_names}); "
                f"ISPO datasets need the columns {list(required)}"
            )
        for index, value in enumerate(dataset[column]):
            if value is None or (isinstance(value, (str, list)) and len(value) == 0):
                raise ValueError(f"{name} row {index}: {column!r} is empty")


@dataclass(frozen=True)
class StepRecord:
    """What one scored batch was trained on: ``ISPOTrainer.last_record`` after each generation batch.

    The public way to read a step's values (tests, callbacks, notebooks); global rows (N = P * G).
    """

    batch: RolloutBatch  # the step's record: outcome, per-rollout signals, gathered statistics
    rewards: torch.Tensor  # (N,) the reward trained on (ISPO's composite, or TRL's reward for GRPO)
    advantages: torch.Tensor  # (N,) or (N, T) the advantages trained on
    trl_advantages_local: torch.Tensor  # (B,) TRL's own advantages of this process's rows (GRPO's)
    metrics: dict[str, float]  # the diagnostics logged for this batch
    local_statistics: dict[str, torch.Tensor]  # this process's per-token statistics ((B, T): old_logps, ...)


@dataclass
class LocalRollouts:
    """This process's rows of the generation batch, as the statistics passes need them."""

    output: dict[str, Any]
    inputs: list[dict]
    spans: list[AnswerTokens | None]
    completion_ids: list[list[int]]  # without padding
    valid: torch.Tensor  # (B, T) bool
    input_ids: torch.Tensor  # (B, Tp + T)
    attention_mask: torch.Tensor  # (B, Tp + T)
    batch_size: int

    @property
    def logits_to_keep(self) -> int:
        return self.output["completion_ids"].size(1)

    @property
    def num_rows(self) -> int:
        return self.output["completion_ids"].size(0)


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
        self._outcome_index = self._resolve_outcome_reward()

        self._ispo_capture: list | None = None
        self._ispo_recorder: GenerationRecorder | None = None
        self._recording_trusted: bool | None = None  # None until measured against a full forward
        self._ispo_rewards_per_func: torch.Tensor | None = None
        self._ispo_ref_model = None
        self._ispo_tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self._forward = ForwardPasses(self)
        self._method_state: dict[str, Any] = {}  # a method's state across steps (RLPR's EMA threshold)
        self._newline_token_ids: set[int] | None = None  # PACR's step delimiters, read off the vocabulary once
        self._metrics_writer = MetricsWriter(os.path.join(args.output_dir, "metrics.jsonl"))
        self._warned: set[str] = set()
        self.last_record: StepRecord | None = None  # the latest scored batch (public; see StepRecord)
        self._vocab_size = int(self.model.config.get_text_config().vocab_size)
        if own_reference:
            if uses_peft:
                self._drift_source = "adapter"
            else:
                # loading must not move the RNG that sampling uses (weights-0 runs must equal GRPO's)
                with torch.random.fork_rng():
                    self._ispo_ref_model = self._prepare_reference(model, reference_copy)
                self._drift_source = "ispo_ref"
        elif Pass.REFERENCE in self._passes:
            self._drift_source = "trl_ref"
        else:
            self._drift_source = None
        if Pass.PI_OLD in self._passes and not args.needs_drift:
            self._log_once(f"ISPO: critical={args.critical!r} uses no drift filter; no reference model is loaded")

    # ----- set-up -----------------------------------------------------------------------------------

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

    def _resolve_outcome_reward(self) -> int:
        """Index of the reward function whose value is R_o (docs/algorithm.md, "The outcome reward").

        ``args.outcome_reward`` names it (function name or index); by default the only function, else
        ``math_accuracy``. The others are auxiliary: added with their weights to the method's reward, never
        used for the correct/incorrect branch. R_o's own weight must be 1 (it is a 0/1 outcome).
        """
        args, names = self.args, list(self.reward_func_names)
        choice = args.outcome_reward
        if choice is None:
            if len(names) == 1:
                index = 0
            elif "math_accuracy" in names:
                index = names.index("math_accuracy")
            else:
                raise ValueError(
                    f"ISPOConfig.outcome_reward: {len(names)} reward functions {names} and none is 'math_accuracy'; "
                    "name the 0/1 outcome reward (function name or index)"
                )
        elif str(choice).isdigit():
            index = int(choice)
            if index >= len(names):
                raise ValueError(f"ISPOConfig.outcome_reward: index {index} but only {len(names)} reward functions")
        elif choice in names:
            index = names.index(choice)
        else:
            raise ValueError(f"ISPOConfig.outcome_reward: no reward function named {choice!r} (have {names})")
        weight = float(self.reward_weights[index])
        if self._method.uses_outcome and weight != 1.0 and not args.allow_outcome_override:
            raise ValueError(
                f"ISPOConfig.reward_weights: the outcome reward {names[index]!r} must have weight 1, got {weight:g} "
                "(R_o is the 0/1 outcome; scale the auxiliary rewards instead, or set allow_outcome_override=True)"
            )
        if len(names) > 1 and self._method.uses_outcome:
            others = [n for i, n in enumerate(names) if i != index]
            warnings.warn(
                f"ISPO: outcome reward {names[index]!r}; auxiliary rewards {others} are added with their weights to "
                "the trained reward and can reorder correct and incorrect rollouts (outcome dominance holds for R_o "
                "and the intrinsic terms only)",
                stacklevel=3,
            )
        return index

    def _log_once(self, message: str) -> None:
        if self.accelerator.is_main_process and message not in self._warned:
            self._warned.add(message)
            print(message, flush=True)

    # ----- hooks ------------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._ispo_rewards_per_func = rewards_per_func  # (N_global, n_funcs), NaN where a function returned None
        return rewards_per_func

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **kwargs
    ):
        capture = self._ispo_capture
        if capture is None or model is not self.model or torch.is_grad_enabled():
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, **kwargs
            )
        result = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, batch_size, True, **kwargs
        )
        capture.append(result)
        return result

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        args = self.args
        record = (
            Pass.PI_OLD in self._passes
            and self._recording_trusted is not False
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
            self._ispo_recorder = GenerationRecorder(self.temperature)
            handle = model.register_forward_hook(self._ispo_recorder.hook, with_kwargs=True)
        try:
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        finally:
            if handle is not None:
                handle.remove()

    def _generate_and_score_completions(self, inputs):
        self._ispo_capture = []
        self._ispo_rewards_per_func = None
        self._ispo_recorder = None
        try:
            output = super()._generate_and_score_completions(inputs)
            captured = self._ispo_capture
        finally:
            self._ispo_capture = None
        self._score_rollouts(output, inputs, captured)
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)  # adds TRL's averaged metrics (ours included) to `logs`
        if self.is_world_process_zero():
            self._metrics_writer.write(self.state.global_step, logs)

    # ----- the stages -------------------------------------------------------------------------------

    @torch.no_grad()
    def _score_rollouts(self, output: dict[str, Any], inputs: list[dict], captured: list) -> StepRecord:
        """Outcome -> passes -> what crosses processes -> method -> advantages -> diagnostics, for one batch."""
        mode = "train" if self.model.training else "eval"
        start = time.perf_counter()
        timings: dict[str, float] = {}
        local = self._local_rollouts(output, inputs, mode)
        batch = self._outcome_stage(local, mode)
        statistics = self._statistics_stage(local, captured, timings)
        batch = self._exchange_stage(batch, local, statistics)
        result = self._method.compute(batch, self.args)
        rewards, advantages, trl_local = self._advantages_stage(output, batch, result)
        metrics = {**step_diagnostics(batch, rewards, advantages), **result.metrics}
        if self._passes:  # GRPO without diagnostics runs no pass: nothing worth timing
            timings["time/ispo_total"] = time.perf_counter() - start
        for key, value in {**metrics, **timings}.items():
            self._metrics[mode][key].append(value)
        self.last_record = StepRecord(batch, rewards, advantages, trl_local, metrics, statistics)
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
            spans=locate_answer_tokens(self._ispo_tokenizer, ids, args.answer_format),
            completion_ids=ids,
            valid=valid,
            input_ids=torch.cat([output["prompt_ids"], completion_ids], dim=1),
            attention_mask=torch.cat([output["prompt_mask"], completion_mask], dim=1),
            batch_size=args.per_device_train_batch_size if mode == "train" else args.per_device_eval_batch_size,
        )

    def _outcome_stage(self, local: LocalRollouts, mode: str) -> RolloutBatch:
        """R_o, the auxiliary rewards and TRL's summed reward, global rows; R_o outside {0, 1} stops the run."""
        rewards_per_func = self._ispo_rewards_per_func  # (N, F), gathered by TRL
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
            vocab_size=self._vocab_size,
        )

    def _statistics_stage(self, local: LocalRollouts, captured: list, timings: dict) -> dict[str, torch.Tensor]:
        """Run the passes this method (and the diagnostics) need, on local rows; returns RolloutBatch fields."""
        statistics: dict[str, torch.Tensor] = {}
        passes = self._passes
        if passes & {Pass.PI_OLD, Pass.REFERENCE, Pass.ANSWER_WITHOUT_REASONING}:
            statistics["old_logps"], statistics["entropies"] = self._pi_old_statistics(local, captured, timings)
        if Pass.REFERENCE in passes:
            base_logps = self._base_logps(local, timings)
            if base_logps is not None:
                statistics["base_logps"] = base_logps
        if Pass.ANSWER_WITHOUT_REASONING in passes:
            with _timed(timings, "time/ispo_counterfactual"):
                statistics.update(self._answer_without_reasoning(local, statistics["old_logps"]))
        if Pass.GOLD_ANSWER in passes:
            with _timed(timings, "time/ispo_gold_answer"):
                statistics.update(self._gold_answer(local))
        if Pass.GOLD_PER_STEP in passes:
            with _timed(timings, "time/ispo_gold_per_step"):
                statistics.update(self._gold_per_step(local))
        if Pass.PROMPT_ONLY in passes:
            with _timed(timings, "time/ispo_prompt_only"):
                output = local.output
                statistics["prompt_logps"], statistics["prompt_logp_mask"] = self._forward.prompt_logps(
                    output["prompt_ids"], output["prompt_mask"], local.batch_size
                )
        if Pass.SELF_CERTAINTY in passes:
            with _timed(timings, "time/ispo_self_certainty"):
                statistics["token_self_certainty"] = self._forward.vocab_logits(
                    local.input_ids, local.attention_mask, local.logits_to_keep, local.batch_size, token_self_certainty
                )
        for name in ("old_logps", "entropies", "base_logps", "token_self_certainty"):
            if name in statistics:
                self._check_finite(f"rollout {name}", statistics[name], local.valid)
        return statistics

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
            vocab_size=batch.vocab_size,
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

    # ----- the passes -------------------------------------------------------------------------------

    def _pi_old_statistics(self, local: LocalRollouts, captured: list, timings: dict):
        """``(old_logps, entropies)`` ``(B, T)``: TRL's forward when it ran one (entropies captured from it),
        else the statistics recorded while generating once they have been measured equal to a full forward,
        else a full forward. Whether to run the forward is agreed across processes."""
        output = local.output
        old_logps = output.get("old_per_token_logps")
        entropies = next((ent for logps, ent, _ in captured if old_logps is not None and logps is old_logps), None)
        recorded = None
        if entropies is None and old_logps is None and self._ispo_recorder is not None:
            recorded = self._ispo_recorder.result(output["completion_ids"], output["completion_mask"])
        self._ispo_recorder = None
        use_recorded = recorded is not None and self._recording_trusted is True
        need_forward = self._forward.any_process(entropies is None and not use_recorded)
        metrics = self._metrics["train" if self.model.training else "eval"]
        if not need_forward:
            metrics["ispo/pi_old_from_generation"].append(float(entropies is None))
            return (old_logps, entropies) if entropies is not None else recorded
        with _timed(timings, "time/ispo_old_logps"):
            forward = self._forward.rollout_statistics(
                self.model, local.input_ids, local.attention_mask, local.logits_to_keep, local.batch_size
            )
        if self._recording_trusted is None:
            self._measure_recording(recorded, forward, local.valid)
        metrics["ispo/pi_old_from_generation"].append(0.0)
        return forward

    def _measure_recording(self, recorded, forward, valid) -> None:
        """Trust the recorded decoding statistics from now on only if they equal a full forward on every process.

        In fp32 they agree to ~1e-6; in bf16 cached decoding rounds differently (~0.02 nats per token), which
        would bias the IFD's with-reasoning term against its full-forward counterfactual and read as drift.
        """
        if recorded is None:
            verdict = -1.0  # nothing to compare on this process
        else:
            close = all(
                torch.allclose(r[valid].float(), f[valid].float(), rtol=0.0, atol=RECORDING_TOLERANCE)
                for r, f in zip(recorded, forward, strict=True)
            )
            verdict = float(close)
        verdicts = self.accelerator.gather(torch.tensor([verdict], device=self.accelerator.device))
        if bool((verdicts >= 0).all()):
            self._recording_trusted = bool((verdicts == 1).all())
            state = "match" if self._recording_trusted else "do not match"
            self._log_once(
                f"ISPO: decoding statistics {state} a full forward; pi_old "
                f"{'comes from generation' if self._recording_trusted else 'needs a forward'} from now on"
            )

    def _base_logps(self, local: LocalRollouts, timings: dict) -> torch.Tensor | None:
        """(B, T) log-probs of the sampled tokens under the frozen base pi_theta0 (docs/algorithm.md, Eq. 5),
        or None when no base model is available (the drift filter is then off, and the run says so)."""
        base_logps = local.output.get("ref_per_token_logps")
        run = base_logps is None and self._drift_source in ("ispo_ref", "adapter")
        if self._forward.any_process(run):
            with _timed(timings, "time/ispo_ref_logps"):
                base_logps = self._forward.reference_logps(
                    self._drift_source, local.input_ids, local.attention_mask, local.logits_to_keep, local.batch_size
                )
        if base_logps is None:
            self._log_once(
                "ISPO: no frozen base model is available; the drift filter is off (critical = entropy filter)"
            )
        return base_logps

    def _answer_without_reasoning(self, local: LocalRollouts, old_logps) -> dict[str, torch.Tensor]:
        """The rollout's answer tokens with the reasoning (read off ``old_logps``) and after prompt + marker only."""
        rows = [i for i, span in enumerate(local.spans) if span is not None]
        continuations = [
            Continuation(
                row=r,
                ids=local.completion_ids[r][local.spans[r].marker_start : local.spans[r].answer_end],
                start=local.spans[r].answer_start - local.spans[r].marker_start,
                end=local.spans[r].answer_end - local.spans[r].marker_start,
            )
            for r in rows
        ]
        output = local.output
        without, mask = self._forward.score_continuations(
            output["prompt_ids"], output["prompt_mask"], continuations, local.batch_size
        )
        # the with-reasoning term is read off the rollout's own pi_old log-probs, left-aligned like `without`
        answer_ranges = [(local.spans[r].answer_start, local.spans[r].answer_end) for r in rows]
        with_ = take_ranges(old_logps, answer_ranges, rows)[0].to(without.dtype) if rows else torch.zeros_like(without)
        num_rows = len(local.spans)
        with_, mask_all = scatter_rows(with_, mask, rows, num_rows)
        without, _ = scatter_rows(without, mask, rows, num_rows)
        self._check_finite("answer log-probs", with_, mask_all)
        self._check_finite("counterfactual answer log-probs", without, mask_all)
        return {"answer_logps_with": with_, "answer_logps_without": without, "answer_mask": mask_all}

    def _gold_tokens(self, local: LocalRollouts) -> tuple[list[int], list[list[int]]]:
        """The answer marker's ids and each row's gold answer ids (the only text tokenised here: no rollout
        has ids for them)."""
        tokenizer = self._ispo_tokenizer
        marker = tokenizer(ANSWER_MARKERS[self.args.answer_format], add_special_tokens=False)["input_ids"]
        golds = [tokenizer(str(x["answer"]), add_special_tokens=False)["input_ids"] for x in local.inputs]
        return marker, golds

    def _reasoning(self, local: LocalRollouts, row: int) -> list[int]:
        """The rollout's reasoning ids: before its answer marker, or the whole completion without end tokens."""
        span = local.spans[row]
        if span is not None:
            return local.completion_ids[row][: span.marker_start]
        reasoning = local.completion_ids[row]
        ends = {self._ispo_tokenizer.eos_token_id, self._ispo_tokenizer.pad_token_id}
        while reasoning and reasoning[-1] in ends:
            reasoning = reasoning[:-1]
        return reasoning

    def _gold_answer(self, local: LocalRollouts) -> dict[str, torch.Tensor]:
        """The gold answer's tokens after prompt + reasoning + marker (every rollout), and once per prompt after
        prompt + marker only."""
        output = local.output
        marker, golds = self._gold_tokens(local)
        rows = [r for r in range(len(golds)) if golds[r]]
        with_cont = []
        for r in rows:
            ids = self._reasoning(local, r) + marker + golds[r]
            with_cont.append(Continuation(r, ids, len(ids) - len(golds[r]), len(ids)))
        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        with_logps, mask = self._forward.score_continuations(prompt_ids, prompt_mask, with_cont, local.batch_size)
        # one counterfactual per prompt: rows with the same prompt and gold share it
        first_of: dict[int, int] = {}
        for r in rows:
            same = (p for p in first_of.values() if golds[p] == golds[r] and torch.equal(prompt_ids[p], prompt_ids[r]))
            first_of[r] = next(same, r)
        unique = sorted(set(first_of.values()))
        without_cont = [Continuation(r, marker + golds[r], len(marker), len(marker) + len(golds[r])) for r in unique]
        unique_logps, _ = self._forward.score_continuations(prompt_ids, prompt_mask, without_cont, local.batch_size)
        num_rows = len(local.spans)
        if rows:
            position = {r: i for i, r in enumerate(unique)}
            index = torch.tensor([position[first_of[r]] for r in rows], device=unique_logps.device)
            without_logps = unique_logps[index][:, : with_logps.size(1)]
        else:
            without_logps = with_logps
        with_logps, mask_all = scatter_rows(with_logps, mask, rows, num_rows)
        without_logps, _ = scatter_rows(without_logps, mask, rows, num_rows)
        self._check_finite("gold answer log-probs", with_logps, mask_all)
        self._check_finite("gold answer log-probs without the reasoning", without_logps, mask_all)
        return {"gold_logps_with": with_logps, "gold_logps_without": without_logps, "gold_mask": mask_all}

    def _gold_per_step(self, local: LocalRollouts) -> dict[str, torch.Tensor]:
        """PACR: the gold answer after prompt + the first k newline-delimited reasoning steps + marker, k = 0..K.

        Returns ``step_gold_logps`` / ``step_gold_mask`` ``(B, K+1, A)`` and ``step_ids`` ``(B, T)``.
        """
        marker, golds = self._gold_tokens(local)
        newline = self._newline_tokens()
        continuations, cuts_per_row, slots = [], [], []
        for r in range(len(golds)):
            reasoning = self._reasoning(local, r)
            cuts = newline_step_boundaries(reasoning, newline, max_steps=self.args.pacr_max_steps)
            cuts_per_row.append(cuts)
            if not golds[r]:
                continue
            for k, end in enumerate([0, *cuts]):
                ids = reasoning[:end] + marker + golds[r]
                continuations.append(Continuation(r, ids, len(ids) - len(golds[r]), len(ids)))
                slots.append((r, k))
        output = local.output
        logps, mask = self._forward.score_continuations(
            output["prompt_ids"], output["prompt_mask"], continuations, local.batch_size
        )
        steps = 1 + max((len(c) for c in cuts_per_row), default=0)
        step_logps = logps.new_zeros((len(golds), steps, logps.size(1)))
        step_mask = torch.zeros_like(step_logps, dtype=torch.bool)
        for i, (r, k) in enumerate(slots):
            step_logps[r, k], step_mask[r, k] = logps[i], mask[i]
        self._check_finite("gold answer log-probs after reasoning steps", step_logps, step_mask)
        step_ids = step_ids_from_boundaries(cuts_per_row, local.logits_to_keep).to(logps.device)
        return {"step_gold_logps": step_logps, "step_gold_mask": step_mask, "step_ids": step_ids}

    def _newline_tokens(self) -> set[int]:
        """Ids whose text ends with a newline (merged tokens such as ".\n\n" included), read once."""
        if self._newline_token_ids is None:
            tokenizer = self._ispo_tokenizer
            ids = list(range(len(tokenizer)))
            texts = tokenizer.batch_decode([[i] for i in ids])
            self._newline_token_ids = {i for i, text in zip(ids, texts, strict=True) if text.endswith("\n")}
        return self._newline_token_ids

    def _check_finite(self, what: str, values: torch.Tensor, valid: torch.Tensor) -> None:
        if not bool(torch.isfinite(values[valid]).all()):
            raise FloatingPointError(
                f"ISPO: non-finite {what} at step {self.state.global_step}; stopping (check the learning rate, "
                "the dtype and the model's logits)"
            )


class _timed:
    """``with _timed(timings, key):`` adds the block's wall time to ``timings[key]``."""

    def __init__(self, timings: dict, key: str):
        self.timings, self.key = timings, key

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.key] = self.timings.get(self.key, 0.0) + time.perf_counter() - self.start
