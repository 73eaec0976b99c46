"""Vectorised ``ispo.core`` against its plain-loop reference on one seeded batch.

Runs the full per-batch ISPO pipeline with the paper's hyperparameters (per-rollout critical tokens
-> token reward, conditional IFD, composite reward, group advantages) both ways on the same random
inputs, checks they agree, and prints the speed ratio and the peak memory of the vectorised path. Both
are timed in this one run, so machine noise affects them alike.

    python benchmarks/core_throughput.py                     # B=512, T=2048 (the target size)
    python benchmarks/core_throughput.py --batch 64 --length 256
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
import core_reference as reference  # noqa: E402

from ispo import core  # noqa: E402

P = core.paper  # the paper's hyperparameters, the defaults of ispo.core


def make_inputs(batch: int, length: int, answer_length: int, vocab_size: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=generator)
    completion_mask = torch.arange(length)[None, :] < lengths[:, None]
    answer_lengths = torch.randint(0, answer_length + 1, (batch,), generator=generator)
    token_logps = -torch.rand(batch, length, generator=generator) * 5
    # the base policy: within +-0.5 nats of the rollout policy, so that some tokens pass the 0.3-nat drift filter
    base_logps = token_logps - (torch.rand(batch, length, generator=generator) - 0.5)
    return dict(
        token_logps=token_logps,
        base_logps=base_logps,
        entropy=torch.rand(batch, length, generator=generator) * torch.log(torch.tensor(float(vocab_size))),
        completion_mask=completion_mask,
        answer_with=-torch.rand(batch, answer_length, generator=generator) * 3,
        answer_without=-torch.rand(batch, answer_length, generator=generator) * 3,
        answer_mask=torch.arange(answer_length)[None, :] < answer_lengths[:, None],
        outcome=(torch.rand(batch, generator=generator) < 0.4).float(),
    )


def vectorised(x: dict, num_generations: int) -> torch.Tensor:
    critical = core.critical_token_mask(
        x["entropy"],
        x["completion_mask"],
        x["token_logps"],
        x["base_logps"],
        top_frac=P.ENTROPY_TOP_FRAC,
        drift_threshold=P.DRIFT_THRESHOLD,
    )
    token_reward = core.token_directional_reward(
        x["token_logps"],
        x["entropy"],
        critical,
        x["outcome"] >= 0.5,
        alpha=P.ENTROPY_ALPHA,
        beta=P.HINGE_BETA,
        tau_h=P.HINGE_TAU,
    )
    ifd = core.conditional_ifd(x["answer_with"], x["answer_without"], x["answer_mask"])
    rewards = core.composite_reward(x["outcome"], ifd, token_reward, lambda_ifd=P.LAMBDA_IFD, lambda_tok=P.LAMBDA_TOK)
    return core.group_advantages(rewards, num_generations)


def plain_loop(x: dict, num_generations: int) -> list[float]:
    entropy = x["entropy"].tolist()
    logps = x["token_logps"].tolist()
    base = x["base_logps"].tolist()
    mask = x["completion_mask"].tolist()
    critical = reference.critical_token_mask(
        entropy, mask, logps, base, P.ENTROPY_TOP_FRAC, P.DRIFT_THRESHOLD, "intersection"
    )
    outcome = x["outcome"].tolist()
    correct = [r >= 0.5 for r in outcome]
    token_reward = reference.token_directional_reward(
        logps, entropy, critical, correct, P.ENTROPY_ALPHA, P.HINGE_BETA, P.HINGE_TAU
    )
    ifd = reference.conditional_ifd(x["answer_with"].tolist(), x["answer_without"].tolist(), x["answer_mask"].tolist())
    rewards = reference.composite_reward(outcome, ifd, token_reward, P.LAMBDA_IFD, P.LAMBDA_TOK, True)
    return reference.group_advantages(rewards, num_generations, "group", 1e-4)


def time_call(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--answer-length", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--vocab-size", type=int, default=151_936)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the vectorised path")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed runs of the plain loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    x = make_inputs(args.batch, args.length, args.answer_length, args.vocab_size, args.seed)
    print(
        f"B={args.batch} T={args.length} answer_len<={args.answer_length} G={args.num_generations} "
        f"torch threads={torch.get_num_threads()}"
    )

    # Peak memory: growth of the process's peak resident set over the first vectorised call, taken
    # before the plain loop runs (its Python lists would dominate the peak).
    rss_before = _max_rss_bytes()
    fast = vectorised(x, args.num_generations)  # also the warm-up, and the value checked below
    peak_bytes = _max_rss_bytes() - rss_before
    fast_times = time_call(lambda: vectorised(x, args.num_generations), args.repeats)
    loop_result = None

    def run_loop():
        nonlocal loop_result
        loop_result = plain_loop(x, args.num_generations)

    loop_times = time_call(run_loop, args.loop_repeats)
    max_diff = (fast.double() - torch.tensor(loop_result, dtype=torch.float64)).abs().max().item()

    input_bytes = sum(v.numel() * v.element_size() for v in x.values() if isinstance(v, torch.Tensor))

    fast_median, loop_median = statistics.median(fast_times), statistics.median(loop_times)
    print(f"vectorised: median {fast_median * 1e3:.1f} ms over {args.repeats} runs")
    print(f"plain loop: median {loop_median:.2f} s over {args.loop_repeats} run(s)")
    print(f"max |difference| between the two: {max_diff:.2e}")
    print(f"speed ratio (loop / vectorised): {loop_median / fast_median:.0f}x")
    print(
        f"peak memory of the vectorised path (resident-set growth): {peak_bytes / 2**20:.1f} MiB "
        f"(inputs: {input_bytes / 2**20:.1f} MiB)"
    )
    if max_diff > 1e-3:
        raise SystemExit("the vectorised and plain-loop results disagree")


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


if __name__ == "__main__":
    main()
