"""Generation backends: batched transformers ``generate`` (default) and vLLM (optional extra).

Both take prompt token ids and return one :class:`Generation` per prompt with the sampled tokens'
log-probabilities under the model's raw distribution (before temperature and top-p), which is what
the answer-confidence statistic reads.

Sampling settings come only from the eval flags: the checkpoint's own ``generation_config``
sampling defaults (top-k 20, repetition penalty 1.05 on some instruct models) are overridden, so
every model is decoded the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from ispo.models.recording import GenerationRecorder


@dataclass(frozen=True)
class Generation:
    token_ids: list[int]  # (T,) generated tokens, the stop token included when one was emitted
    token_logprobs: list[float]  # (T,) log pi(token | prefix), raw model distribution
    text: str  # decoded completion, special tokens skipped
    finish_reason: Literal["stop", "length"]


class Backend(Protocol):
    tokenizer: object

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seeds: Sequence[int],
    ) -> list[Generation]: ...


# Chat-model turn ends that also stop generation, added when the tokenizer knows them.
_EXTRA_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")


def stop_token_ids(tokenizer, generation_config=None) -> list[int]:
    """EOS ids of the checkpoint's generation config and tokenizer, plus known chat turn ends."""
    ids: list[int] = []
    configured = getattr(generation_config, "eos_token_id", None)
    for value in [configured, tokenizer.eos_token_id]:
        ids.extend(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
    vocab = tokenizer.get_vocab()
    ids.extend(vocab[token] for token in _EXTRA_STOP_TOKENS if token in vocab)
    return sorted(set(int(i) for i in ids))


class HFBackend:
    """Batched ``model.generate`` with left padding, on CPU or GPU."""

    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.stop_ids = stop_token_ids(tokenizer, getattr(model, "generation_config", None))
        if not self.stop_ids:
            raise ValueError("the tokenizer has no EOS token; generation could not stop")
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.stop_ids[0])

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
    ) -> HFBackend:
        """Load a hub id or a ``save_pretrained`` folder (an ``ispo train`` checkpoint).

        ``tokenizer`` names another tokenizer source, for a checkpoint saved without one.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
        loaded_tokenizer = AutoTokenizer.from_pretrained(tokenizer or name_or_path, trust_remote_code=trust_remote_code)
        if len(loaded_tokenizer) < 8:  # transformers builds an empty tokenizer for a folder without one
            raise OSError(f"no tokenizer found in {tokenizer or name_or_path}; pass --tokenizer NAME_OR_PATH")
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        ).to(device)
        return cls(model, loaded_tokenizer)

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        temperature: float,
        top_p: float = 1.0,
        max_new_tokens: int,
        seeds: Sequence[int],
    ) -> list[Generation]:
        """One completion per prompt. Sampling is seeded once per call with ``seeds[0]``.

        A CUDA out-of-memory error halves the batch and retries, down to one prompt.
        """
        try:
            return self._generate(prompts, temperature, top_p, max_new_tokens, seeds[0])
        except torch.cuda.OutOfMemoryError:
            if len(prompts) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(prompts) // 2
            kwargs = dict(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
            return self.generate(prompts[:half], seeds=seeds[:half], **kwargs) + self.generate(
                prompts[half:], seeds=seeds[half:], **kwargs
            )

    @torch.no_grad()
    def _generate(self, prompts, temperature, top_p, max_new_tokens, seed) -> list[Generation]:
        from transformers import GenerationConfig, LogitsProcessorList

        device = self.model.device
        prompt_length = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), prompt_length), self.pad_id, dtype=torch.long)  # (B, L)
        attention_mask = torch.zeros_like(input_ids)
        for row, prompt in enumerate(prompts):  # left padding: every prompt ends at column L - 1
            input_ids[row, prompt_length - len(prompt) :] = torch.as_tensor(prompt, dtype=torch.long)
            attention_mask[row, prompt_length - len(prompt) :] = 1
        do_sample = temperature > 0
        # Every knob that a checkpoint's generation_config.json could set is pinned here.
        sampling = dict(temperature=temperature, top_p=top_p, top_k=0, min_p=0.0, typical_p=1.0) if do_sample else {}
        generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_beams=1,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            **sampling,
        )
        recorder = GenerationRecorder(temperature=1.0)  # log-probs of the raw distribution, whatever the sampling
        if do_sample:
            torch.manual_seed(seed)
        sequences = self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=generation_config,
            logits_processor=LogitsProcessorList([recorder.logits_processor()]),
        )  # (B, L + T)
        completions = sequences[:, prompt_length:]  # (B, T)
        recorded = recorder.result(completions, torch.ones_like(completions))
        if recorded is None:
            raise RuntimeError("generate did not decode one token per step; the log-probs cannot be recorded")
        logprobs = recorded[0].cpu()  # (B, T)
        completions = completions.cpu()
        stop_ids = set(self.stop_ids)
        generations = []
        for row in range(completions.shape[0]):
            tokens = completions[row].tolist()
            stop = next((i for i, token in enumerate(tokens) if token in stop_ids), None)
            length = len(tokens) if stop is None else stop + 1
            generations.append(
                Generation(
                    token_ids=tokens[:length],
                    token_logprobs=logprobs[row, :length].tolist(),
                    text=self.tokenizer.decode(tokens[:length], skip_special_tokens=True),
                    finish_reason="length" if stop is None else "stop",
                )
            )
        return generations


class VLLMBackend:
    """vLLM offline inference; needs ``pip install 'ispo[vllm]'`` and a GPU. Imported only when chosen.

    Each prompt gets its own seed, so the n samples of one problem differ and are reproducible.
    Log-probs are vLLM's sampled-token log-probs (``logprobs=0``), which recent vLLM takes from the
    raw model distribution. Not exercised by the test suite (no GPU there).
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "auto",
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        trust_remote_code: bool = False,
    ):
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("--backend vllm needs vLLM: pip install 'ispo[vllm]'") from error
        self.llm = LLM(
            model=name_or_path,
            tokenizer=tokenizer,
            dtype=dtype,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_ids = stop_token_ids(self.tokenizer)

    def generate(self, prompts, *, temperature, top_p=1.0, max_new_tokens, seeds) -> list[Generation]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=temperature,
                top_p=top_p if temperature > 0 else 1.0,
                max_tokens=max_new_tokens,
                logprobs=0,
                seed=int(seed),
                stop_token_ids=self.stop_ids,
                skip_special_tokens=True,
            )
            for seed in seeds
        ]
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        generations = []
        for output in outputs:
            sample = output.outputs[0]
            tokens = list(sample.token_ids)
            logprobs = [p[token].logprob for token, p in zip(tokens, sample.logprobs or [], strict=False)]
            generations.append(
                Generation(
                    token_ids=tokens,
                    token_logprobs=logprobs,
                    text=sample.text,
                    finish_reason="length" if sample.finish_reason == "length" else "stop",
                )
            )
        return generations
