"""The extra forward passes a method can ask for (``ispo.methods.Pass``), run without gradient.

Every pass scores token ids the rollout already has (never re-tokenised text, except the gold answer
and the marker, which have no rollout ids): continuations after the (left-padded) prompt, scored by
TRL's own ``_get_per_token_logps_and_entropies`` so that temperature, fused head, PEFT and sharding
are TRL's. Sharded models (ZeRO-3, FSDP) gather parameters inside every forward, so every process
runs the same number of forwards: ``score_continuations`` pads with one-token dummy forwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter


@dataclass(frozen=True)
class Continuation:
    """Tokens to score after the prompt of ``row``; the log-probs of ``ids[start:end]`` are returned."""

    row: int
    ids: list[int]
    start: int
    end: int


class ForwardPasses:
    """Forward passes on the trainer's model (and reference), in lockstep across processes."""

    def __init__(self, trainer):
        self.trainer = trainer

    @property
    def accelerator(self):
        return self.trainer.accelerator

    @contextmanager
    def inference(self):
        trainer = self.trainer
        with torch.no_grad(), disable_gradient_checkpointing(trainer.model, trainer.args.gradient_checkpointing_kwargs):
            yield

    def rollout_statistics(self, model, input_ids, attention_mask, logits_to_keep, batch_size, *, entropy=True):
        """``(logps, entropies)`` ``(B, T)`` of the completion tokens under ``model`` (entropies None if not asked)."""
        with self.inference():
            logps, entropies, _ = self.trainer._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy=entropy
            )
        return logps, entropies

    def reference_logps(self, source: str, input_ids, attention_mask, logits_to_keep, batch_size) -> torch.Tensor:
        """``(B, T)`` log-probs under pi_ref: ISPO's frozen copy, or the PEFT base with the adapter disabled."""
        trainer = self.trainer
        if source == "adapter":
            model = self.accelerator.unwrap_model(trainer.model)
            with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                logps, _ = self.rollout_statistics(
                    trainer.model, input_ids, attention_mask, logits_to_keep, batch_size, entropy=False
                )
            return logps
        logps, _ = self.rollout_statistics(
            trainer._ispo_ref_model, input_ids, attention_mask, logits_to_keep, batch_size, entropy=False
        )
        return logps

    def score_continuations(
        self, prompt_ids, prompt_mask, continuations: Sequence[Continuation], batch_size: int
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
                pieces.append(self._score(prompt_ids, prompt_mask, part))
            else:  # this process has no more rows: a dummy forward keeps the collectives in step
                pad = self.trainer._ispo_tokenizer.pad_token_id
                self._score(prompt_ids, prompt_mask, [Continuation(0, [pad], 0, 1)])
        if not continuations:
            empty = torch.zeros((0, 1), device=device)
            return empty, empty.bool()
        width = max(piece.size(1) for piece in pieces)
        logps = torch.cat([torch.nn.functional.pad(piece, (0, width - piece.size(1))) for piece in pieces])
        return take_ranges(logps, [(c.start, c.end) for c in continuations])

    def _score(self, prompt_ids, prompt_mask, part: Sequence[Continuation]) -> torch.Tensor:
        """``(R, C)`` log-probs of right-padded continuations after the prompts of their rows."""
        device = prompt_ids.device
        width = max(len(c.ids) for c in part)
        pad = self.trainer._ispo_tokenizer.pad_token_id
        ids = torch.full((len(part), width), pad, dtype=prompt_ids.dtype, device=device)
        mask = torch.zeros((len(part), width), dtype=prompt_mask.dtype, device=device)
        for i, c in enumerate(part):
            ids[i, : len(c.ids)] = torch.tensor(c.ids, dtype=prompt_ids.dtype, device=device)
            mask[i, : len(c.ids)] = 1
        index = torch.tensor([c.row for c in part], device=device)
        input_ids = torch.cat([prompt_ids[index], ids], dim=1)
        attention_mask = torch.cat([prompt_mask[index], mask], dim=1)
        logps, _ = self.rollout_statistics(
            self.trainer.model, input_ids, attention_mask, width, len(part), entropy=False
        )
        return logps

    def prompt_logps(self, prompt_ids, prompt_mask, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, Tp - 1)`` log-probs of each prompt token given the ones before it, and the mask of real tokens.

        The prompts are left-padded; the first real token of each has no context and is not scored.
        """
        width = prompt_ids.size(1)
        logps, _ = self.rollout_statistics(
            self.trainer.model, prompt_ids, prompt_mask, width - 1, batch_size, entropy=False
        )
        mask = prompt_mask[:, 1:].bool() & prompt_mask[:, :-1].bool()
        return logps * mask, mask

    def vocab_logits(self, input_ids, attention_mask, logits_to_keep: int, batch_size: int, reduce) -> torch.Tensor:
        """``reduce(logits)`` over the completion positions, ``logits`` ``(b, T, V)`` at the sampling temperature.

        Runs the model's plain forward (full logits, chunked by ``batch_size`` rows) because TRL's fused head
        returns only per-token log-probs and entropies; ``reduce`` maps ``(b, T, V)`` to ``(b, T)``.
        """
        trainer = self.trainer
        pieces = []
        with self.inference():
            for start in range(0, input_ids.size(0), batch_size):
                rows = slice(start, start + batch_size)
                with self.accelerator.autocast():
                    logits = trainer.model(
                        input_ids=input_ids[rows],
                        attention_mask=attention_mask[rows],
                        logits_to_keep=logits_to_keep + 1,
                    ).logits[:, :-1]
                pieces.append(reduce(logits.float() / trainer.temperature))
        return torch.cat(pieces)

    def any_process(self, flag: bool) -> bool:
        """True when ``flag`` holds on at least one process: decisions to run a forward are taken together."""
        if self.accelerator.num_processes == 1:
            return flag
        return bool(self.accelerator.gather(torch.tensor([float(flag)], device=self.accelerator.device)).max() > 0)

    def all_processes(self, flag: bool) -> bool:
        return not self.any_process(not flag)

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
