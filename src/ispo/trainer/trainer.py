"""``ISPOTrainer``: TRL's ``GRPOTrainer`` with the ISPO composite reward (spec: ../shared/spec/ISPO.md).

Hooks overridden, and why (nothing of TRL's is copied; each override calls the parent):

- ``_calculate_rewards``: keeps the gathered ``(N, n_funcs)`` rewards, which TRL does not return.
- ``_get_per_token_logps_and_entropies``: while TRL scores a fresh generation batch, asks its forward
  for the entropies too (free: TRL's fused head computes them anyway) and keeps the result, so that
  when TRL computes ``old_per_token_logps`` no full-length forward runs twice.
- ``_generate_and_score_completions``: after TRL's own, computes the ISPO signals under pi_old without
  gradient, the composite reward over the global batch, and replaces ``advantages`` by the local slice
  of ``ispo.core.group_advantages``. The loss is TRL's, unchanged.
- ``log``: also appends one JSON object per logging step to ``<output_dir>/metrics.jsonl``.

Departures from the paper (all spec [ours] knobs): see docs/training.md. With ``ifd_answer="reference"``
the with-thinking term needs its own forward (prompt + thinking + marker + gold tokens), one per
rollout; the counterfactual runs once per prompt. Rollouts without an answer get S = 0 in both modes.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import torch
from accelerate.utils import is_peft_model
from trl import GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import add_fused_lm_head, create_model_from_path, disable_dropout_in_model, use_adapter

from ispo.core import (
    composite_reward,
    conditional_ifd,
    critical_token_mask,
    group_advantages,
    group_is_constant,
    masked_mean,
    normalized_entropy,
    token_directional_reward,
    token_drift,
)
from ispo.rewards import math_accuracy_reward
from ispo.trainer.config import ISPOConfig
from ispo.trainer.generation_stats import GenerationRecorder
from ispo.trainer.metrics import MetricsWriter
from ispo.trainer.spans import AnswerTokens, locate_answer_tokens

ANSWER_MARKERS: dict[str, str] = {"boxed": "\\boxed{", "answer_tag": "<answer>"}


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


class ISPOTrainer(GRPOTrainer):
    """Drop-in for ``GRPOTrainer`` that trains on the ISPO composite reward.

    Arguments are ``GRPOTrainer``'s; ``args`` must be an ``ISPOConfig``. Without ``reward_funcs`` the
    outcome reward is ``ispo.rewards.math_accuracy`` on the dataset's ``answer`` column.
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
        required = ["prompt"] + (["answer"] if default_reward or args.ifd_answer == "reference" else [])
        check_dataset_rows(train_dataset, "train_dataset", required)
        check_dataset_rows(eval_dataset, "eval_dataset", required)

        computes_signals = args.ispo_enabled or args.ispo_diagnostics
        own_reference = computes_signals and args.needs_drift and args.beta == 0.0
        uses_peft = kwargs.get("peft_config") is not None or (not isinstance(model, str) and is_peft_model(model))
        # A model passed as an object: copy it before TRL patches its forward; TRL would rebuild it from its
        # `_name_or_path`, which may not exist (a model built in memory).
        reference_copy = None
        if own_reference and not uses_peft and not isinstance(model, str):
            reference_copy = copy.deepcopy(model)

        super().__init__(model, reward_funcs, args, train_dataset, eval_dataset, **kwargs)
        self._check_outcome_reward()

        self._ispo_capture: list | None = None
        self._ispo_recorder: GenerationRecorder | None = None
        self._ispo_rewards_per_func: torch.Tensor | None = None
        self._ispo_ref_model = None
        self._ispo_tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self._metrics_writer = MetricsWriter(os.path.join(args.output_dir, "metrics.jsonl"))
        config = self.model.config
        self._vocab_size = int(config.get_text_config().vocab_size)
        if own_reference:
            if uses_peft:
                self._drift_source = "adapter"
            else:
                # loading must not move the RNG that sampling uses (weights-0 runs must equal GRPO's)
                with torch.random.fork_rng():
                    self._ispo_ref_model = self._prepare_reference(model, reference_copy)
                self._drift_source = "ispo_ref"
        elif args.needs_drift and args.beta != 0.0:
            self._drift_source = "trl_ref"
        else:
            self._drift_source = None
        if computes_signals and not args.needs_drift:
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

    def _check_outcome_reward(self) -> None:
        """Outcome dominance (spec s3) and the correct/incorrect split assume one 0/1 outcome reward.

        Several reward functions, or a weight other than 1, let R_o take values such as 0.5 (a wrong but
        well-formatted answer), which would count as correct and void the dominance guarantee.
        """
        args = self.args
        weights = self.reward_weights.tolist()
        if args.ispo_enabled and not args.allow_outcome_override and (len(weights) != 1 or weights[0] != 1.0):
            raise ValueError(
                f"ISPO needs a single 0/1 outcome reward with weight 1 (got {len(weights)} reward function(s) "
                f"with weights {weights}): the correct/incorrect branch and outcome dominance assume it. "
                "Set allow_outcome_override=True to train on a weighted sum anyway."
            )

    def _log_once(self, message: str) -> None:
        if self.accelerator.is_main_process:
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
        # Not when the drift filter is on: drift compares pi_old with pi_ref, and pi_ref comes from a full
        # forward. Decoding logits differ from a full forward by rounding (about 0.02 nats per token in
        # bf16, above delta_min), so drift would measure that rounding instead of zero where the policy
        # has not moved; a full forward for pi_old keeps both sides on the same path.
        record = (
            (args.ispo_enabled or args.ispo_diagnostics)
            and not args.needs_drift
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
        self._score_ispo(output, inputs, captured)
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)  # adds TRL's averaged metrics (ours included) to `logs`
        if self.is_world_process_zero():
            self._metrics_writer.write(self.state.global_step, logs)

    # ----- the ISPO signals -------------------------------------------------------------------------

    @torch.no_grad()
    def _score_ispo(self, output: dict[str, Any], inputs: list[dict], captured: list) -> None:
        """Compute the composite reward for this generation batch and replace ``output["advantages"]``."""
        args = self.args
        mode = "train" if self.model.training else "eval"
        metrics = self._metrics[mode]
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        device = self.accelerator.device
        start = time.perf_counter()

        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        valid = completion_mask.bool()  # (B, T)
        if "tool_mask" in output:
            valid = valid & output["tool_mask"].bool()
        lengths = completion_mask.sum(dim=1).tolist()
        local_rows = completion_ids.size(0)

        rewards_per_func = self._ispo_rewards_per_func  # (N, F)
        weights = self.reward_weights.to(rewards_per_func.device)
        outcome = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)  # (N,)
        outcome[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
        scorable = ~torch.isnan(outcome)
        correct = scorable & (outcome >= 0.5)

        spans = locate_answer_tokens(
            self._ispo_tokenizer,
            [row[:n] for row, n in zip(completion_ids.tolist(), lengths, strict=True)],
            args.answer_format,
        )
        has_answer = torch.tensor([float(span is not None) for span in spans], device=device)
        has_answer_global = self.accelerator.gather(has_answer).bool()  # gloo gathers no bool tensors

        metrics["zero_adv_rate/outcome"].append(group_is_constant(outcome, num_generations).float().mean().item())
        metrics["accuracy"].append(masked_mean(correct.float(), scorable).item())
        metrics["no_answer_rate"].append((~has_answer_global).float().mean().item())
        lengths_global = self.accelerator.gather(completion_mask.sum(dim=1))
        metrics["completion_length"].append(lengths_global.float().mean().item())

        if not (args.ispo_enabled or args.ispo_diagnostics):
            # GRPO without diagnostics: the composite reward is the outcome, TRL's advantages stand.
            composite_advantages = group_advantages(outcome, num_generations, scale=self.scale_rewards)
            metrics["zero_adv_rate/composite"].append(_zero_advantage_rate(composite_advantages, num_generations))
            return
        if any(key in output for key in ("pixel_values", "image_grid_thw", "token_type_ids", "mm_token_type_ids")):
            raise NotImplementedError("ISPOTrainer computes its signals for text-only models")

        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logits_to_keep = completion_ids.size(1)
        batch_size = args.per_device_train_batch_size if mode == "train" else args.per_device_eval_batch_size
        timings = {}

        # pi_old log-probs and entropies: TRL's when it computed them (entropies captured from that forward)
        # or, when TRL computed none, recorded while generating; a forward only when neither is available
        old_logps = output.get("old_per_token_logps")
        entropies = next((ent for logps, ent, _ in captured if old_logps is not None and logps is old_logps), None)
        if entropies is None and old_logps is None and self._ispo_recorder is not None:
            recorded = self._ispo_recorder.result(completion_ids, completion_mask)
            if recorded is not None:
                old_logps, entropies = recorded
            self._ispo_recorder = None
        from_generation = entropies is not None and "old_per_token_logps" not in output
        metrics["ispo/pi_old_from_generation"].append(float(from_generation))
        if entropies is None:
            tick = time.perf_counter()
            with self._inference_context():
                old_logps, entropies, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy=True
                )
            timings["time/ispo_old_logps"] = time.perf_counter() - tick
        self._check_finite("rollout log-probs under pi_old", old_logps, valid)
        self._check_finite("rollout entropies under pi_old", entropies, valid)

        # pi_ref log-probs for the drift filter
        ref_logps = None
        if args.needs_drift:
            ref_logps = output.get("ref_per_token_logps")
            if ref_logps is None and self._drift_source in ("ispo_ref", "adapter"):
                tick = time.perf_counter()
                ref_logps = self._reference_logps(input_ids, attention_mask, logits_to_keep, batch_size)
                timings["time/ispo_ref_logps"] = time.perf_counter() - tick
            if ref_logps is not None:
                self._check_finite("rollout log-probs under pi_ref", ref_logps, valid)
        drift = None if ref_logps is None else token_drift(old_logps.float(), ref_logps.float())
        metrics["drift/enabled"].append(float(drift is not None))

        # Conditional IFD, per local rollout
        tick = time.perf_counter()
        ifd = self._conditional_ifd(output, inputs, spans, old_logps, batch_size)  # (B_local,)
        timings["time/ispo_counterfactual"] = time.perf_counter() - tick

        # Everything batch-wide runs on the global batch (quantiles, groups), then local rows are kept.
        entropies_g = self._gather_tokens(entropies.float())
        logps_g = self._gather_tokens(old_logps.float())
        valid_g = self._gather_tokens(valid.float()).bool()
        drift_g = None if drift is None else self._gather_tokens(drift)
        ifd_g = self.accelerator.gather(ifd.float())

        norm_entropy = normalized_entropy(entropies_g, self._vocab_size)
        critical = critical_token_mask(
            entropies_g, valid_g, drift_g,
            rho_h=args.rho_h, rho_d=args.rho_d, delta_min=args.delta_min, mode=args.critical,
        )
        token_reward = token_directional_reward(logps_g, norm_entropy, critical, correct, tau=args.tau, eta=args.eta)
        composite = composite_reward(
            outcome,
            ifd_g,
            token_reward,
            lambda_ifd=args.lambda_ifd,
            lambda_tok=args.lambda_tok,
            kappa=args.kappa,
            outcome_conditioned=args.ifd_answer == "sampled",
        )
        composite_advantages = group_advantages(composite, num_generations, scale=self.scale_rewards)
        trl_advantages = output["advantages"]
        if args.ispo_enabled:
            process_slice = slice(
                self.accelerator.process_index * local_rows, (self.accelerator.process_index + 1) * local_rows
            )
            output["advantages"] = composite_advantages[process_slice].to(output["advantages"].dtype)
            # TRL logged its outcome advantages for the completions table; show the ones trained on
            logged = self._logs["advantages"]
            for _ in range(min(len(composite_advantages), len(logged))):
                logged.pop()
            logged.extend(composite_advantages.tolist())
        # the last batch's signals, global rows (for tests and debugging)
        self._ispo_last = {
            "outcome": outcome, "ifd": ifd_g, "token_reward": token_reward, "composite": composite,
            "advantages": composite_advantages, "critical": critical, "trl_advantages_local": trl_advantages,
            "old_logps": logps_g, "entropies": entropies_g, "valid": valid_g,
        }

        incorrect = scorable & ~correct
        probs = logps_g.exp()
        metrics["zero_adv_rate/composite"].append(_zero_advantage_rate(composite_advantages, num_generations))
        for name, rows in (("correct", correct), ("incorrect", incorrect)):
            on_critical = critical & rows.unsqueeze(1)
            metrics[f"hc/{name}"].append(masked_mean(probs, on_critical).item())
            metrics[f"hc/{name}_entropy"].append(masked_mean(norm_entropy, on_critical).item())
            metrics[f"ifd/{name}"].append(masked_mean(ifd_g, rows).item())
            metrics[f"tok_reward/{name}"].append(masked_mean(token_reward, rows).item())
        metrics["critical/frac"].append((critical.sum() / valid_g.sum().clamp(min=1)).item())
        metrics["entropy/pi_old"].append(masked_mean(entropies_g, valid_g).item())
        metrics["entropy/pi_old_normalized"].append(masked_mean(norm_entropy, valid_g).item())
        if drift_g is not None:
            metrics["drift/mean"].append(masked_mean(drift_g, valid_g).item())
        metrics["reward/composite"].append(torch.nanmean(composite).item())
        timings["time/ispo_total"] = time.perf_counter() - start
        for key, seconds in timings.items():
            metrics[key].append(seconds)

    # ----- pieces -----------------------------------------------------------------------------------

    @contextmanager
    def _inference_context(self):
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            yield

    def _check_finite(self, what: str, values: torch.Tensor, valid: torch.Tensor) -> None:
        if not bool(torch.isfinite(values[valid]).all()):
            raise FloatingPointError(
                f"ISPO: non-finite {what} at step {self.state.global_step}; stopping (check the learning rate, "
                "the dtype and the model's logits)"
            )

    def _gather_tokens(self, values: torch.Tensor) -> torch.Tensor:
        """(B_local, T_local) -> (N, T_max): pad the token dimension to the longest process, then gather."""
        padded = self.accelerator.pad_across_processes(values, dim=1, pad_index=0)
        return self.accelerator.gather(padded)

    def _reference_logps(self, input_ids, attention_mask, logits_to_keep, batch_size) -> torch.Tensor:
        with self._inference_context():
            if self._drift_source == "adapter":
                model = self.accelerator.unwrap_model(self.model)
                with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                    logps, _, _ = self._get_per_token_logps_and_entropies(
                        self.model, input_ids, attention_mask, logits_to_keep, batch_size
                    )
            else:
                logps, _, _ = self._get_per_token_logps_and_entropies(
                    self._ispo_ref_model, input_ids, attention_mask, logits_to_keep, batch_size
                )
        return logps

    def _answer_logps(
        self, rows: list[int], prompt_ids, prompt_mask, continuations: list[list[int]], answer_ranges, batch_size
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score ``prompt[row] + continuation`` and return the log-probs of each answer range.

        Returns ``(R, A)`` log-probs and the ``(R, A)`` bool answer mask, answer tokens left-aligned.
        Every process runs the same number of forwards (padding with a one-token dummy), since sharded
        models (ZeRO-3, FSDP) gather parameters collectively inside each forward.
        """
        device = prompt_ids.device
        num_chunks = math.ceil(len(rows) / batch_size)
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.gather(torch.tensor([num_chunks], device=device))
            total_chunks = int(counts.max())
        else:
            total_chunks = num_chunks
        chunks = []
        for chunk in range(total_chunks):
            part = list(range(chunk * batch_size, min((chunk + 1) * batch_size, len(rows))))
            if part:
                chunks.append(self._score_continuations([rows[i] for i in part], prompt_ids, prompt_mask,
                                                        [continuations[i] for i in part]))
            else:  # this process has no more rows: a dummy forward keeps the collectives in step
                self._score_continuations([0], prompt_ids, prompt_mask, [[self._ispo_tokenizer.pad_token_id]])
        if not rows:
            empty = torch.zeros((0, 1), device=device)
            return empty, empty.bool()
        width = max(c.size(1) for c in chunks)
        logps = torch.cat([torch.nn.functional.pad(c, (0, width - c.size(1))) for c in chunks])
        return _take_ranges(logps, answer_ranges)

    def _score_continuations(self, rows, prompt_ids, prompt_mask, continuations) -> torch.Tensor:
        """``(R, C)`` log-probs of right-padded continuations after the (left-padded) prompts of ``rows``."""
        device = prompt_ids.device
        width = max(len(c) for c in continuations)
        cont = torch.full((len(rows), width), self._ispo_tokenizer.pad_token_id, dtype=prompt_ids.dtype, device=device)
        cont_mask = torch.zeros((len(rows), width), dtype=prompt_mask.dtype, device=device)
        for i, ids in enumerate(continuations):
            cont[i, : len(ids)] = torch.tensor(ids, dtype=prompt_ids.dtype, device=device)
            cont_mask[i, : len(ids)] = 1
        index = torch.tensor(rows, device=device)
        input_ids = torch.cat([prompt_ids[index], cont], dim=1)
        attention_mask = torch.cat([prompt_mask[index], cont_mask], dim=1)
        with self._inference_context():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, input_ids, attention_mask, width, len(rows)
            )
        return logps

    def _conditional_ifd(self, output, inputs, spans: list[AnswerTokens | None], old_logps, batch_size) -> torch.Tensor:
        """S_i for the local rollouts (spec s1); 0 where a rollout has no answer."""
        device = old_logps.device
        ifd = torch.zeros(len(spans), device=device)
        if self.args.lambda_ifd == 0 and not self.args.ispo_diagnostics:
            return ifd
        rows = [i for i, span in enumerate(spans) if span is not None]
        completion_ids = output["completion_ids"].tolist()
        prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        if self.args.ifd_answer == "sampled":
            # with thinking: the rollout's own answer-token log-probs; without: prompt + marker + answer
            continuations = [completion_ids[r][spans[r].marker_start : spans[r].answer_end] for r in rows]
            answer_ranges = [
                (spans[r].answer_start - spans[r].marker_start, spans[r].answer_end - spans[r].marker_start)
                for r in rows
            ]
            without_logps, answer_mask = self._answer_logps(
                rows, prompt_ids, prompt_mask, continuations, answer_ranges, batch_size
            )
            if rows:
                own_ranges = [(spans[r].answer_start, spans[r].answer_end) for r in rows]
                with_logps, _ = _take_ranges(old_logps, own_ranges, rows)
        else:
            rows, with_logps, without_logps, answer_mask = self._reference_answer_logps(
                rows, spans, completion_ids, inputs, prompt_ids, prompt_mask, batch_size
            )
        if not rows:
            return ifd
        self._check_finite("answer log-probs", with_logps, answer_mask)
        self._check_finite("counterfactual answer log-probs", without_logps, answer_mask)
        ifd[torch.tensor(rows, device=device)] = conditional_ifd(with_logps.float(), without_logps.float(), answer_mask)
        return ifd

    def _reference_answer_logps(self, rows, spans, completion_ids, inputs, prompt_ids, prompt_mask, batch_size):
        """``ifd_answer="reference"``: score the gold answer's tokens after the rollout's thinking and, once per
        prompt, without it. The marker is the tokenised marker string, the gold is tokenised on its own."""
        tokenizer = self._ispo_tokenizer
        marker = tokenizer(ANSWER_MARKERS[self.args.answer_format], add_special_tokens=False)["input_ids"]
        golds = {r: tokenizer(str(inputs[r]["answer"]), add_special_tokens=False)["input_ids"] for r in rows}
        rows = [r for r in rows if golds[r]]
        with_cont = [completion_ids[r][: spans[r].marker_start] + marker + golds[r] for r in rows]
        with_ranges = [(len(c) - len(golds[r]), len(c)) for c, r in zip(with_cont, rows, strict=True)]
        with_logps, answer_mask = self._answer_logps(rows, prompt_ids, prompt_mask, with_cont, with_ranges, batch_size)
        # one counterfactual per prompt: rows with the same prompt and gold share it
        first_of: dict[int, int] = {}
        for r in rows:
            same = (p for p in first_of.values() if golds[p] == golds[r] and torch.equal(prompt_ids[p], prompt_ids[r]))
            previous = next(same, None)
            first_of[r] = r if previous is None else previous
        unique = sorted(set(first_of.values()))
        without_cont = [marker + golds[r] for r in unique]
        without_ranges = [(len(marker), len(marker) + len(golds[r])) for r in unique]
        unique_logps, _ = self._answer_logps(unique, prompt_ids, prompt_mask, without_cont, without_ranges, batch_size)
        if not rows:
            return rows, with_logps, with_logps, answer_mask
        position = {r: i for i, r in enumerate(unique)}
        without_logps = unique_logps[torch.tensor([position[first_of[r]] for r in rows], device=unique_logps.device)]
        return rows, with_logps, without_logps, answer_mask


def _zero_advantage_rate(advantages: torch.Tensor, num_generations: int) -> float:
    """Share of groups whose advantages are all ~0 (they are centred per group, so constant means zero)."""
    return group_is_constant(advantages, num_generations).float().mean().item()


def _take_ranges(logps: torch.Tensor, ranges: list[tuple[int, int]], rows: list[int] | None = None):
    """Gather ``logps[row, start:end]`` for each range into a left-aligned ``(R, A)`` tensor and its mask."""
    rows = list(range(len(ranges))) if rows is None else rows
    width = max(end - start for start, end in ranges)
    out = torch.zeros((len(ranges), width), dtype=logps.dtype, device=logps.device)
    mask = torch.zeros((len(ranges), width), dtype=torch.bool, device=logps.device)
    for i, (row, (start, end)) in enumerate(zip(rows, ranges, strict=True)):
        out[i, : end - start] = logps[row, start:end]
        mask[i, : end - start] = True
    return out, mask
