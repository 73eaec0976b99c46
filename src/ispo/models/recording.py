"""Log-probs and entropies of sampled tokens, recorded while ``transformers`` generates.

Training and evaluation both need, for every generated token, log pi(token | prefix) and (for
training) the entropy of pi(. | prefix), without paying a second full forward over the completions.
Decoding already computes each step's logits, so :class:`GenerationRecorder` reads them as they
pass, by either of two hooks into ``generate``:

- :meth:`GenerationRecorder.hook`: a forward hook on the causal LM (``register_forward_hook(...,
  with_kwargs=True)``), which the trainer uses because TRL calls ``generate`` itself;
- :meth:`GenerationRecorder.logits_processor`: a ``LogitsProcessor`` for ``generate``'s
  ``logits_processor=`` argument, which ``ispo.eval``'s HF backend uses.

Either way, call k sees the logits of completion position k; the token sampled there arrives as the
input of call k + 1 (the last one is read from the completion in :meth:`GenerationRecorder.result`).
Probabilities are taken at ``temperature`` (1: the model's raw distribution); entropies use
``ispo.core.entropy_from_logits`` (docs/algorithm.md, Notation), the formula of the whole project.
Only the latest step's ``(B, V)`` log-softmax is kept, never the ``(B, T, V)`` history. Values equal
a full forward's up to floating-point differences between cached decoding and a full pass.
"""

from __future__ import annotations

import torch

from ispo.core.token_stats import entropy_from_logits


class GenerationRecorder:
    """Records, per decoding step, log pi(sampled token) and the entropy of pi(. | prefix) at ``temperature``."""

    def __init__(self, temperature: float = 1.0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.entropies: list[torch.Tensor] = []  # one (B,) per step
        self.logps: list[torch.Tensor] = []  # one (B,) per step but the last
        self.fed_tokens: list[torch.Tensor] = []  # the token fed back after each step but the last
        self._last_log_probs: torch.Tensor | None = None  # (B, V) of the latest step
        self.failed = False

    def observe(self, logits: torch.Tensor, fed_tokens: torch.Tensor | None) -> None:
        """One decoding step: ``logits`` ``(B, V)`` of this step; ``fed_tokens`` ``(B,)`` are the tokens
        sampled from the previous step's distribution (None at the first step)."""
        if fed_tokens is not None:
            last = self._last_log_probs
            self.logps.append(last.gather(1, fed_tokens.to(last.device).unsqueeze(1)).squeeze(1))
            self.fed_tokens.append(fed_tokens)
        scaled = logits.float() / self.temperature  # (B, V)
        self.entropies.append(entropy_from_logits(scaled))
        self._last_log_probs = torch.log_softmax(scaled, dim=-1)

    def hook(self, module, args, kwargs, output) -> None:
        """Forward hook (``with_kwargs=True``) on the causal LM during ``generate``."""
        if self.failed:
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        logits = getattr(output, "logits", None)
        if logits is None or input_ids is None:
            self.failed = True
            return
        fed = None
        if self._last_log_probs is not None:
            if input_ids.dim() != 2 or input_ids.size(1) != 1 or input_ids.size(0) != self._last_log_probs.size(0):
                self.failed = True  # not plain one-token-per-step decoding: the caller runs a forward instead
                return
            fed = input_ids[:, 0]
        self.observe(logits[:, -1], fed)

    def logits_processor(self):
        """A ``transformers.LogitsProcessor`` that records and leaves the scores unchanged.

        ``generate`` runs processors passed in ``logits_processor=`` before its temperature and top-p
        warpers, so the scores seen here are the model's own.
        """
        from transformers import LogitsProcessor

        recorder = self

        class _Recording(LogitsProcessor):
            def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
                first = recorder._last_log_probs is None
                recorder.observe(scores, None if first else input_ids[:, -1])
                return scores

        return _Recording()

    def result(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor):
        """``(logps, entropies)`` shaped like ``completion_ids`` ``(B, T)`` and zero where ``completion_mask``
        is, or None when the recording does not match these completions (then the caller runs a forward)."""
        steps = len(self.entropies)
        rows, width = completion_ids.shape
        if self.failed or steps == 0 or self._last_log_probs.size(0) != rows:
            return None
        lengths = completion_mask.sum(dim=1)
        if int(lengths.max()) > steps:
            return None
        device = completion_ids.device
        logps = torch.zeros((rows, width), device=device)
        entropies = torch.zeros((rows, width), device=device)
        used = min(steps, width)
        entropies[:, :used] = torch.stack(self.entropies, dim=1)[:, :used].to(device)
        if self.logps:
            fed = torch.stack(self.fed_tokens, dim=1).to(device)  # (B, steps - 1)
            head = min(steps - 1, width)
            valid = completion_mask[:, :head].bool()
            if not torch.equal(fed[:, :head][valid], completion_ids[:, :head][valid]):
                return None  # the recorder saw other tokens than these completions: do not trust it
            logps[:, :head] = torch.stack(self.logps, dim=1)[:, :head].to(device)
        if steps <= width:  # the last step's token is only in the completion
            last = completion_ids[:, steps - 1].clamp(min=0).unsqueeze(1).to(self._last_log_probs.device)
            logps[:, steps - 1] = self._last_log_probs.gather(1, last).squeeze(1).to(device)
        mask = completion_mask.bool()
        return logps * mask, entropies * mask
