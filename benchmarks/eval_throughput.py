"""Generated tokens per second of the batched HF eval backend against one prompt at a time.

Both modes use the same prompts, model and greedy settings in the same process, after a warm-up,
and alternate ``--repeats`` times; the best rate of each is kept, which damps the noise of a shared
machine. The printed ratio is the speed-up that batching (left padding) buys here:

    .venv/bin/python benchmarks/eval_throughput.py [--batch-size 16] [--num-prompts 16] [--model PATH]

Without ``--model`` it builds the offline tiny Qwen3 model; prompts are the first MATH-500 problems
when ``shared/data`` is beside the repo (or ``ISPO_DATA_DIR`` is set), synthetic ones otherwise.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from ispo.eval.backends import HFBackend
from ispo.eval.benchmarks import load_benchmark
from ispo.eval.prompts import encode_prompt
from ispo.models.tiny import build_char_tokenizer, build_tiny_model


def problems(count: int) -> list[str]:
    root = Path(os.environ.get("ISPO_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    if (root / "benchmarks" / "math500.jsonl").is_file():
        return [p.problem for p in load_benchmark("math500", data_dir=root / "benchmarks", limit=count)[1]]
    return [f"Compute {i} * {i + 3} and add {i}; what is the result?" for i in range(count)]


def measure(backend: HFBackend, prompts: list[list[int]], batch_size: int, max_new_tokens: int) -> tuple[int, float]:
    """(generated tokens, seconds) for greedy generation of every prompt in batches of ``batch_size``."""
    tokens, start = 0, time.perf_counter()
    for first in range(0, len(prompts), batch_size):
        batch = prompts[first : first + batch_size]
        generations = backend.generate(batch, temperature=0.0, max_new_tokens=max_new_tokens, seeds=[0] * len(batch))
        tokens += sum(len(g.token_ids) for g in generations)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub id or folder; default: the offline tiny model")
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    if args.model:
        backend = HFBackend.from_pretrained(args.model, device=args.device)
    else:
        tokenizer = build_char_tokenizer()
        backend = HFBackend(build_tiny_model(tokenizer, max_position_embeddings=4096), tokenizer)
    prompts = [encode_prompt(backend.tokenizer, problem) for problem in problems(args.num_prompts)]
    measure(backend, prompts[:2], 2, 4)  # warm-up: kernels, allocator

    batched, single = [], []  # (tokens, seconds) per repeat, alternating so both see the same load
    for _ in range(args.repeats):
        batched.append(measure(backend, prompts, args.batch_size, args.max_new_tokens))
        single.append(measure(backend, prompts, 1, args.max_new_tokens))
    batched_tokens, batched_seconds = min(batched, key=lambda m: m[1] / m[0])
    single_tokens, single_seconds = min(single, key=lambda m: m[1] / m[0])
    batched_rate, single_rate = batched_tokens / batched_seconds, single_tokens / single_seconds
    print(
        f"device {backend.model.device}, {len(prompts)} prompts, max_new_tokens {args.max_new_tokens}, "
        f"best of {args.repeats}"
    )
    print(
        f"batch size {args.batch_size:>3}: {batched_tokens} tokens in {batched_seconds:.2f}s "
        f"= {batched_rate:.0f} tokens/s"
    )
    print(f"batch size   1: {single_tokens} tokens in {single_seconds:.2f}s = {single_rate:.0f} tokens/s")
    print(f"batched / single throughput ratio: {batched_rate / single_rate:.2f}x")


if __name__ == "__main__":
    main()
