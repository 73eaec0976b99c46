"""pi_old log-probs and entropies of the sampled tokens, recorded while ``transformers`` generates.

When TRL does not compute ``old_per_token_logps`` (on-policy training without vLLM), ISPO would need
one more full-length forward to get them. A forward hook on the causal LM during ``generate`` sees
each decoding step's logits instead: the temperature-scaled distribution of completion token k comes
from call k, and the token that was sampled arrives as the input of call k + 1 (the last one is read
from the completion). The values equal a full forward's up to floating-point differences between
cached decoding and a full pass; the loss never uses them (its old log-probs stay TRL's).
"""

from __future__ import annotations

import torch


class GenerationRecorder:
    """Forward hook (``register_forward_hook(recorder.hook, with_kwargs=True)``) recording, per step,
    the entropy of pi_old(. | prefix) and the log-prob of the token generated there."""

    def __init__(self, temperature: float):
        self.temperature = float(temperature)
        self.entropies: list[torch.Tensor] = []  # one (B,) per step
        self.logps: list[torch.Tensor] = []  # one (B,) per step but the last
        self.fed_tokens: list[torch.Tensor] = []  # the token fed back after each step but the last
        self._last_log_probs: torch.Tensor | None = None  # (B, V) of the latest step
        self.failed = False

    def hook(self, module, args, kwargs, output) -> None:
        if self.failed:
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        logits = getattr(output, "logits", None)
        if logits is None or input_ids is None:
            self.failed = True
            return
        if self._last_log_probs is not None:
            if input_ids.dim() != 2 or input_ids.size(1) != 1 or input_ids.size(0) != self._last_log_probs.size(0):
                self.failed = True  # not plain one-token-per-step decoding: fall back to a forward
                return
            token = input_ids[:, 0]
            self.logps.append(self._last_log_probs.gather(1, token.unsqueeze(1)).squeeze(1))
            self.fed_tokens.append(token)
        log_probs = torch.log_softmax(logits[:, -1].float() / self.temperature, dim=-1)  # (B, V)
        probs = log_probs.exp()
        self.entropies.append(-torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs)).sum(-1))
        self._last_log_probs = log_probs

    def result(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor):
        """``(logps, entropies)`` shaped like ``completion_ids`` ``(B, T)``, or None when the recording does not
        match these completions (then the caller runs the forward)."""
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
                return None  # the hook saw other tokens than these completions: do not trust it
            logps[:, :head] = torch.stack(self.logps, dim=1)[:, :head].to(device)
        if steps <= width:  # the last step's token is only in the completion
            last = completion_ids[:, steps - 1].clamp(min=0).unsqueeze(1).to(self._last_log_probs.device)
            logps[:, steps - 1] = self._last_log_probs.gather(1, last).squeeze(1).to(device)
        mask = completion_mask.bool()
        return logps * mask, entropies * mask
