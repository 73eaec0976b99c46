"""The extra forward passes a method can ask for (``ispo.methods.Pass``): built, run without gradient, checked.

``StatisticsPasses.run`` is the trainer's statistics stage: it receives this process's rollouts and
returns the per-token statistics of the passes asked for, as ``RolloutBatch`` fields (local rows).

Every pass scores token ids the rollout already has (never re-tokenised text, except the gold answer
and the marker, which have no rollout ids): continuations after the (left-padded) prompt, scored by
TRL's own ``_get_per_token_logps_and_entropies`` so that temperature, fused head, PEFT and sharding
are TRL's. Sharded models (ZeRO-3, FSDP) gather parameters inside every forward, so every process
runs the same number of forwards: ``score_continuations`` pads with one-token dummy forwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from ispo.answers import ANSWER_MARKERS, AnswerTokens
from ispo.core import newline_step_boundaries, step_ids_from_boundaries, token_self_certainty
from ispo.methods import Pass
from ispo.models.recording import GenerationRecorder

# Recorded decoding statistics are trusted when they match a full forward this closely: far below the
# drift filter's 0.3 nats and the hinge's 0.3 nats of entropy, so rounding cannot move a critical token.
RECORDING_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Continuation:
    """Tokens to score after the prompt of ``row``; the log-probs of ``ids[start:end]`` are returned."""

    row: int
    ids: list[int]
    start: int
    end: int


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


class ForwardPasses:
    """Forward passes without gradient, in lockstep across processes.

    Receives what it needs, never the trainer: the accelerator, TRL's per-token scorer (the trainer's
    ``_get_per_token_logps_and_entropies``, so temperature, fused head, PEFT and sharding are TRL's),
    the pad id, the sampling temperature and the gradient-checkpointing settings. The model to score
    with is an argument of every pass.
    """

    def __init__(self, accelerator, score_fn, *, pad_token_id: int, temperature: float, checkpointing_kwargs=None):
        self.accelerator = accelerator
        self.score_fn = score_fn
        self.pad_token_id = pad_token_id
        self.temperature = temperature
        self.checkpointing_kwargs = checkpointing_kwargs

    @contextmanager
    def inference(self, model):
        with torch.no_grad(), disable_gradient_checkpointing(model, self.checkpointing_kwargs):
            yield

    def rollout_statistics(self, model, input_ids, attention_mask, logits_to_keep, batch_size, *, entropy=True):
        """``(logps, entropies)`` ``(B, T)`` of the completion tokens under ``model`` (entropies None if not asked)."""
        with self.inference(model):
            logps, entropies, _ = self.score_fn(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy=entropy
            )
        return logps, entropies

    def base_logps(self, model, base, input_ids, attention_mask, logits_to_keep, batch_size) -> torch.Tensor:
        """``(B, T)`` log-probs under the frozen base: ``base`` (a frozen copy), or ``model``'s PEFT base with the
        adapter disabled when ``base`` is None."""
        if base is None:
            unwrapped = self.accelerator.unwrap_model(model)
            with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                logps, _ = self.rollout_statistics(
                    model, input_ids, attention_mask, logits_to_keep, batch_size, entropy=False
                )
            return logps
        logps, _ = self.rollout_statistics(base, input_ids, attention_mask, logits_to_keep, batch_size, entropy=False)
        return logps

    def score_continuations(
        self, model, prompt_ids, prompt_mask, continuations: Sequence[Continuation], batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score ``prompt[c.row] + c.ids`` for each continuation and keep the log-probs of ``c.ids[c.start:c.end]``.

        Returns ``(R, A)`` log-probs and the ``(R, A)`` bool mask, scored tokens left-aligned. A process
        with fewer (or no) continuations runs one-token dummy forwards so that all run the same number.
        """
        device = prompt_ids.device
        num_chunks = math.ceil(len(continuations) / batch_size)
        total_chunks = self.max_over_processes(num_chunks)
        pieces = []
        for chunk in range(total_chunks):
            part = continuations[chunk * batch_size : (chunk + 1) * batch_size]
            if part:
                pieces.append(self._score(model, prompt_ids, prompt_mask, part))
            else:  # this process has no more rows: a dummy forward keeps the collectives in step
                self._score(model, prompt_ids, prompt_mask, [Continuation(0, [self.pad_token_id], 0, 1)])
        if not continuations:
            empty = torch.zeros((0, 1), device=device)
            return empty, empty.bool()
        width = max(piece.size(1) for piece in pieces)
        logps = torch.cat([torch.nn.functional.pad(piece, (0, width - piece.size(1))) for piece in pieces])
        return take_ranges(logps, [(c.start, c.end) for c in continuations])

    def _score(self, model, prompt_ids, prompt_mask, part: Sequence[Continuation]) -> torch.Tensor:
        """``(R, C)`` log-probs of right-padded continuations after the prompts of their rows."""
        device = prompt_ids.device
        width = max(len(c.ids) for c in part)
        ids = torch.full((len(part), width), self.pad_token_id, dtype=prompt_ids.dtype, device=device)
        mask = torch.zeros((len(part), width), dtype=prompt_mask.dtype, device=device)
        for i, c in enumerate(part):
            ids[i, : len(c.ids)] = torch.tensor(c.ids, dtype=prompt_ids.dtype, device=device)
            mask[i, : len(c.ids)] = 1
        index = torch.tensor([c.row for c in part], device=device)
        input_ids = torch.cat([prompt_ids[index], ids], dim=1)
        attention_mask = torch.cat([prompt_mask[index], mask], dim=1)
        logps, _ = self.rollout_statistics(model, input_ids, attention_mask, width, len(part), entropy=False)
        return logps

    def prompt_logps(self, model, prompt_ids, prompt_mask, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, Tp - 1)`` log-probs of each prompt token given the ones before it, and the mask of real tokens.

        The prompts are left-padded; the first real token of each has no context and is not scored.
        """
        width = prompt_ids.size(1)
        logps, _ = self.rollout_statistics(model, prompt_ids, prompt_mask, width - 1, batch_size, entropy=False)
        mask = prompt_mask[:, 1:].bool() & prompt_mask[:, :-1].bool()
        return logps * mask, mask

    def vocab_logits(
        self, model, input_ids, attention_mask, logits_to_keep: int, batch_size: int, reduce
    ) -> torch.Tensor:
        """``reduce(logits)`` over the completion positions, ``logits`` ``(b, T, V)`` at the sampling temperature.

        Runs the model's plain forward (full logits, chunked by ``batch_size`` rows) because TRL's fused head
        returns only per-token log-probs and entropies; ``reduce`` maps ``(b, T, V)`` to ``(b, T)``.
        """
        pieces = []
        with self.inference(model):
            for start in range(0, input_ids.size(0), batch_size):
                rows = slice(start, start + batch_size)
                with self.accelerator.autocast():
                    logits = model(
                        input_ids=input_ids[rows],
                        attention_mask=attention_mask[rows],
                        logits_to_keep=logits_to_keep + 1,
                    ).logits[:, :-1]
                pieces.append(reduce(logits.float() / self.temperature))
        return torch.cat(pieces)

    def any_process(self, flag: bool) -> bool:
        """True when ``flag`` holds on at least one process: decisions to run a forward are taken together."""
        if self.accelerator.num_processes == 1:
            return flag
        return bool(self.accelerator.gather(torch.tensor([float(flag)], device=self.accelerator.device)).max() > 0)

    def max_over_processes(self, value: int) -> int:
        if self.accelerator.num_processes == 1:
            return value
        return int(self.accelerator.gather(torch.tensor([value], device=self.accelerator.device)).max())

    def gather_rows(self, values: torch.Tensor, pad_value: int | float = 0) -> torch.Tensor:
        """``(B_local, ...)`` -> ``(N, ...)``: pad every non-row dimension to the widest process, then gather.

        Bool tensors travel as floats (gloo gathers no bool tensors) and come back as bool.
        """
        is_bool = values.dtype == torch.bool
        if is_bool:
            values = values.float()
        for dim in range(1, values.dim()):
            values = self.accelerator.pad_across_processes(values, dim=dim, pad_index=pad_value)
        gathered = self.accelerator.gather(values)
        return gathered.bool() if is_bool else gathered


class StatisticsPasses:
    """The statistics stage of a step: every extra forward a method (and the diagnostics) asks for.

    Receives what it needs as arguments (the forwards, the tokenizer, the frozen base, the answer format)
    and keeps one piece of state across steps: whether the decoding statistics recorded while generating
    have been measured equal to a full forward (``recording_trusted``).
    """

    def __init__(
        self,
        forward: ForwardPasses,
        tokenizer,
        *,
        answer_format: str,
        pacr_max_steps: int,
        base_model=None,
        base_source: str | None = None,
        log: Callable[[str], None] = print,
    ):
        self.forward = forward
        self.tokenizer = tokenizer
        self.answer_format = answer_format
        self.pacr_max_steps = pacr_max_steps
        self.base_model = base_model  # the frozen pi_theta0 when the trainer keeps its own copy
        self.base_source = base_source  # "ispo_ref" | "adapter" | "trl_ref" | None
        self.log = log
        self.recording_trusted: bool | None = None  # None until measured against a full forward
        self._newline_token_ids: set[int] | None = None  # PACR's step delimiters, read off the vocabulary once

    def run(
        self,
        passes: frozenset[Pass] | set[Pass],
        model,
        local: LocalRollouts,
        captured: list,
        recorder: GenerationRecorder | None,
        timings: dict[str, float],
        step: int,
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """``(statistics, metrics)``: ``RolloutBatch`` fields of this process's rows, and scalars to log."""
        statistics: dict[str, torch.Tensor] = {}
        metrics: dict[str, float] = {}
        if passes & {Pass.PI_OLD, Pass.REFERENCE, Pass.ANSWER_WITHOUT_REASONING}:
            statistics["old_logps"], statistics["entropies"] = self._pi_old(
                model, local, captured, recorder, timings, metrics
            )
        if Pass.REFERENCE in passes:
            base_logps = self._base_logps(model, local, timings)
            if base_logps is not None:
                statistics["base_logps"] = base_logps
        if Pass.ANSWER_WITHOUT_REASONING in passes:
            with timed(timings, "time/ispo_counterfactual"):
                statistics.update(self._answer_without_reasoning(model, local, statistics["old_logps"], step))
        if Pass.GOLD_ANSWER in passes:
            with timed(timings, "time/ispo_gold_answer"):
                statistics.update(self._gold_answer(model, local, step))
        if Pass.GOLD_PER_STEP in passes:
            with timed(timings, "time/ispo_gold_per_step"):
                statistics.update(self._gold_per_step(model, local, step))
        if Pass.PROMPT_ONLY in passes:
            with timed(timings, "time/ispo_prompt_only"):
                output = local.output
                statistics["prompt_logps"], statistics["prompt_logp_mask"] = self.forward.prompt_logps(
                    model, output["prompt_ids"], output["prompt_mask"], local.batch_size
                )
        if Pass.SELF_CERTAINTY in passes:
            with timed(timings, "time/ispo_self_certainty"):
                statistics["token_self_certainty"] = self.forward.vocab_logits(
                    model,
                    local.input_ids,
                    local.attention_mask,
                    local.logits_to_keep,
                    local.batch_size,
                    token_self_certainty,
                )
        for name in ("old_logps", "entropies", "base_logps", "token_self_certainty"):
            if name in statistics:
                stop_on_non_finite(f"rollout {name}", statistics[name], local.valid, step)
        return statistics, metrics

    def _pi_old(self, model, local: LocalRollouts, captured: list, recorder, timings: dict, metrics: dict):
        """``(old_logps, entropies)`` ``(B, T)``: TRL's forward when it ran one (entropies captured from it),
        else the statistics recorded while generating once they have been measured equal to a full forward,
        else a full forward. Whether to run the forward is agreed across processes."""
        output = local.output
        old_logps = output.get("old_per_token_logps")
        entropies = next((ent for logps, ent, _ in captured if old_logps is not None and logps is old_logps), None)
        recorded = None
        if entropies is None and old_logps is None and recorder is not None:
            recorded = recorder.result(output["completion_ids"], output["completion_mask"])
        use_recorded = recorded is not None and self.recording_trusted is True
        need_forward = self.forward.any_process(entropies is None and not use_recorded)
        if not need_forward:
            metrics["ispo/pi_old_from_generation"] = float(entropies is None)
            return (old_logps, entropies) if entropies is not None else recorded
        with timed(timings, "time/ispo_old_logps"):
            forward = self.forward.rollout_statistics(
                model, local.input_ids, local.attention_mask, local.logits_to_keep, local.batch_size
            )
        if self.recording_trusted is None:
            self._measure_recording(recorded, forward, local.valid)
        metrics["ispo/pi_old_from_generation"] = 0.0
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
        accelerator = self.forward.accelerator
        verdicts = accelerator.gather(torch.tensor([verdict], device=accelerator.device))
        if bool((verdicts >= 0).all()):
            self.recording_trusted = bool((verdicts == 1).all())
            state = "match" if self.recording_trusted else "do not match"
            self.log(
                f"ISPO: decoding statistics {state} a full forward; pi_old "
                f"{'comes from generation' if self.recording_trusted else 'needs a forward'} from now on"
            )

    def _base_logps(self, model, local: LocalRollouts, timings: dict) -> torch.Tensor | None:
        """(B, T) log-probs of the sampled tokens under the frozen base pi_theta0 (docs/algorithm.md, Eq. 5),
        or None when no base model is available (the drift filter is then off, and the run says so)."""
        base_logps = local.output.get("ref_per_token_logps")
        run = base_logps is None and self.base_source in ("ispo_ref", "adapter")
        if self.forward.any_process(run):
            with timed(timings, "time/ispo_ref_logps"):
                base_logps = self.forward.base_logps(
                    model,
                    self.base_model,
                    local.input_ids,
                    local.attention_mask,
                    local.logits_to_keep,
                    local.batch_size,
                )
        if base_logps is None:
            self.log("ISPO: no frozen base model is available; the drift filter is off (critical = entropy filter)")
        return base_logps

    def _answer_without_reasoning(self, model, local: LocalRollouts, old_logps, step: int) -> dict[str, torch.Tensor]:
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
        without, mask = self.forward.score_continuations(
            model, output["prompt_ids"], output["prompt_mask"], continuations, local.batch_size
        )
        # the with-reasoning term is read off the rollout's own pi_old log-probs, left-aligned like `without`
        answer_ranges = [(local.spans[r].answer_start, local.spans[r].answer_end) for r in rows]
        with_ = take_ranges(old_logps, answer_ranges, rows)[0].to(without.dtype) if rows else torch.zeros_like(without)
        num_rows = len(local.spans)
        with_, mask_all = scatter_rows(with_, mask, rows, num_rows)
        without, _ = scatter_rows(without, mask, rows, num_rows)
        stop_on_non_finite("answer log-probs", with_, mask_all, step)
        stop_on_non_finite("counterfactual answer log-probs", without, mask_all, step)
        return {"answer_logps_with": with_, "answer_logps_without": without, "answer_mask": mask_all}

    def _gold_tokens(self, local: LocalRollouts) -> tuple[list[int], list[list[int]]]:
        """The answer marker's ids and each row's gold answer ids (the only text tokenised here: no rollout
        has ids for them)."""
        tokenizer = self.tokenizer
        marker = tokenizer(ANSWER_MARKERS[self.answer_format], add_special_tokens=False)["input_ids"]
        golds = [tokenizer(str(x["answer"]), add_special_tokens=False)["input_ids"] for x in local.inputs]
        return marker, golds

    def _reasoning(self, local: LocalRollouts, row: int) -> list[int]:
        """The rollout's reasoning ids: before its answer marker, or the whole completion without end tokens."""
        span = local.spans[row]
        if span is not None:
            return local.completion_ids[row][: span.marker_start]
        reasoning = local.completion_ids[row]
        ends = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        while reasoning and reasoning[-1] in ends:
            reasoning = reasoning[:-1]
        return reasoning

    def _gold_answer(self, model, local: LocalRollouts, step: int) -> dict[str, torch.Tensor]:
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
        with_logps, mask = self.forward.score_continuations(model, prompt_ids, prompt_mask, with_cont, local.batch_size)
        # one counterfactual per prompt: rows with the same prompt and gold share it
        first_of: dict[int, int] = {}
        for r in rows:
            same = (p for p in first_of.values() if golds[p] == golds[r] and torch.equal(prompt_ids[p], prompt_ids[r]))
            first_of[r] = next(same, r)
        unique = sorted(set(first_of.values()))
        without_cont = [Continuation(r, marker + golds[r], len(marker), len(marker) + len(golds[r])) for r in unique]
        unique_logps, _ = self.forward.score_continuations(
            model, prompt_ids, prompt_mask, without_cont, local.batch_size
        )
        num_rows = len(local.spans)
        if rows:
            position = {r: i for i, r in enumerate(unique)}
            index = torch.tensor([position[first_of[r]] for r in rows], device=unique_logps.device)
            without_logps = unique_logps[index][:, : with_logps.size(1)]
        else:
            without_logps = with_logps
        with_logps, mask_all = scatter_rows(with_logps, mask, rows, num_rows)
        without_logps, _ = scatter_rows(without_logps, mask, rows, num_rows)
        stop_on_non_finite("gold answer log-probs", with_logps, mask_all, step)
        stop_on_non_finite("gold answer log-probs without the reasoning", without_logps, mask_all, step)
        return {"gold_logps_with": with_logps, "gold_logps_without": without_logps, "gold_mask": mask_all}

    def _gold_per_step(self, model, local: LocalRollouts, step: int) -> dict[str, torch.Tensor]:
        """PACR: the gold answer after prompt + the first k newline-delimited reasoning steps + marker, k = 0..K.

        Returns ``step_gold_logps`` / ``step_gold_mask`` ``(B, K+1, A)`` and ``step_ids`` ``(B, T)``.
        """
        marker, golds = self._gold_tokens(local)
        newline = self._newline_tokens()
        continuations, cuts_per_row, slots = [], [], []
        for r in range(len(golds)):
            reasoning = self._reasoning(local, r)
            cuts = newline_step_boundaries(reasoning, newline, max_steps=self.pacr_max_steps)
            cuts_per_row.append(cuts)
            if not golds[r]:
                continue
            for k, end in enumerate([0, *cuts]):
                ids = reasoning[:end] + marker + golds[r]
                continuations.append(Continuation(r, ids, len(ids) - len(golds[r]), len(ids)))
                slots.append((r, k))
        output = local.output
        logps, mask = self.forward.score_continuations(
            model, output["prompt_ids"], output["prompt_mask"], continuations, local.batch_size
        )
        steps = 1 + max((len(c) for c in cuts_per_row), default=0)
        step_logps = logps.new_zeros((len(golds), steps, logps.size(1)))
        step_mask = torch.zeros_like(step_logps, dtype=torch.bool)
        for i, (r, k) in enumerate(slots):
            step_logps[r, k], step_mask[r, k] = logps[i], mask[i]
        stop_on_non_finite("gold answer log-probs after reasoning steps", step_logps, step_mask, step)
        step_ids = step_ids_from_boundaries(cuts_per_row, local.logits_to_keep).to(logps.device)
        return {"step_gold_logps": step_logps, "step_gold_mask": step_mask, "step_ids": step_ids}

    def _newline_tokens(self) -> set[int]:
        """Ids whose text ends with a newline (merged tokens such as ".\n\n" included), read once."""
        if self._newline_token_ids is None:
            tokenizer = self.tokenizer
            ids = list(range(len(tokenizer)))
            texts = tokenizer.batch_decode([[i] for i in ids])
            self._newline_token_ids = {i for i, text in zip(ids, texts, strict=True) if text.endswith("\n")}
        return self._newline_token_ids


def take_ranges(logps: torch.Tensor, ranges: list[tuple[int, int]], rows: list[int] | None = None):
    """Gather ``logps[row, start:end]`` for each range into a left-aligned ``(R, A)`` tensor and its mask."""
    rows = list(range(len(ranges))) if rows is None else rows
    width = max([end - start for start, end in ranges], default=1) or 1
    out = torch.zeros((len(ranges), width), dtype=logps.dtype, device=logps.device)
    mask = torch.zeros((len(ranges), width), dtype=torch.bool, device=logps.device)
    for i, (row, (start, end)) in enumerate(zip(rows, ranges, strict=True)):
        out[i, : end - start] = logps[row, start:end]
        mask[i, : end - start] = True
    return out, mask


def scatter_rows(values: torch.Tensor, mask: torch.Tensor, rows: list[int], num_rows: int):
    """Place the ``(R, A)`` ``values``/``mask`` of ``rows`` into ``(num_rows, A)`` tensors (zeros/false elsewhere)."""
    width = values.size(1) if values.dim() == 2 else 1
    out = torch.zeros((num_rows, width), dtype=values.dtype, device=values.device)
    out_mask = torch.zeros((num_rows, width), dtype=torch.bool, device=values.device)
    if rows:
        index = torch.tensor(rows, device=values.device)
        out[index] = values
        out_mask[index] = mask
    return out, out_mask


def stop_on_non_finite(what: str, values: torch.Tensor, valid: torch.Tensor, step: int) -> None:
    """Stop the run, naming the statistic and the step, on a NaN or infinite value at a valid position."""
    if not bool(torch.isfinite(values[valid]).all()):
        raise FloatingPointError(
            f"ISPO: non-finite {what} at step {step}; stopping (check the learning rate, "
            "the dtype and the model's logits)"
        )


class timed:
    """``with timed(timings, key):`` adds the block's wall time to ``timings[key]``."""

    def __init__(self, timings: dict, key: str):
        self.timings, self.key = timings, key

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.key] = self.timings.get(self.key, 0.0) + time.perf_counter() - self.start
