"""Step-time overhead of ISPO over GRPO on the same tiny model, data and seed (CPU, offline).

    python benchmarks/step_overhead.py [--rounds 3] [--steps 4] [--max-completion-length 96]

The tiny model is first taught, by a short supervised warm-up, to end with ``\\boxed{answer}``, so
rollouts carry answers and every ISPO pass runs (pi_old log-probs and entropies, pi_ref log-probs
for the drift filter, the counterfactual forward). GRPO (``GRPOTrainer``) and ISPO (``ISPOTrainer``,
spec defaults) then train alternately, ``--steps`` optimizer steps each per round, so that machine
load affects both alike. The learning rate is 0 by default: the full step runs (loss, backward,
optimizer) but the policy stays put, so both trainers sample identical rollouts (ISPO draws no
random numbers) and the step times differ by ISPO's extra work alone. Step time is TRL's ``step_time`` (generation + scoring + loss + backward).
Prints the median ISPO/GRPO step-time ratio and the median time of each extra ISPO pass.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def warm_start(path: Path, rows: list[dict], steps: int, seed: int) -> Path:
    """Save a tiny model that answers in the boxed format (a few seconds of supervised training)."""
    import torch

    from ispo.models.tiny import build_char_tokenizer, build_tiny_model

    torch.manual_seed(seed)
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(tokenizer, hidden_size=64, num_layers=2, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    texts = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        # a short worked line before the box, as reasoning models write (about 50 character tokens)
        texts.append(prompt + f"We compute {row['problem']} step by step: it gives {row['answer']}. "
                     f"So \\boxed{{{row['answer']}}}" + tokenizer.eos_token)
    model.train()
    for step in range(steps):
        batch = tokenizer([texts[(step * 16 + i) % len(texts)] for i in range(16)], return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run(kind: str, model_path: str, dataset, output_dir: str, args) -> list[dict]:
    from trl import GRPOConfig, GRPOTrainer

    from ispo import ISPOConfig, ISPOTrainer
    from ispo.rewards import math_accuracy_reward

    common = dict(
        output_dir=output_dir, use_cpu=True, bf16=False, seed=args.seed, report_to=[], save_strategy="no",
        disable_tqdm=True, logging_steps=1, max_steps=args.steps, learning_rate=args.learning_rate, num_generations=4,
        per_device_train_batch_size=args.batch_size, max_completion_length=args.max_completion_length,
        beta=args.beta,
    )
    if kind == "grpo":
        trainer = GRPOTrainer(model_path, reward_funcs=[math_accuracy_reward()], args=GRPOConfig(**common),
                              train_dataset=dataset)
    else:
        trainer = ISPOTrainer(model_path, args=ISPOConfig(**common), train_dataset=dataset)
    trainer.train()
    return [entry for entry in trainer.state.log_history if "step_time" in entry]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per trainer per round")
    parser.add_argument("--batch-size", type=int, default=16, help="rollouts per step (groups of 4)")
    parser.add_argument("--max-completion-length", type=int, default=96)
    parser.add_argument("--warmup-steps", type=int, default=800, help="supervised warm-up steps of the tiny model")
    parser.add_argument("--beta", type=float, default=0.0, help="KL weight (beta > 0: TRL's reference is shared)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=0.0,
                        help="0 (default): both trainers sample the very same rollouts, so only the extra work differs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier timings)")
    args = parser.parse_args(argv)

    import torch
    from datasets import Dataset

    from ispo.train import synthetic_arithmetic

    torch.set_num_threads(args.threads)
    rows = [
        {"prompt": [{"role": "user", "content": f"{r['problem']}="}], "answer": r["answer"], "problem": r["problem"]}
        for r in synthetic_arithmetic(256, args.seed)
    ]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        model_path = str(warm_start(Path(tmp) / "model", rows, args.warmup_steps, args.seed))
        print(f"warm-up: {time.perf_counter() - tick:.1f}s")
        logs: dict[str, list[dict]] = {"grpo": [], "ispo": []}
        for round_index in range(args.rounds):
            for kind in ("grpo", "ispo"):
                logs[kind] += run(kind, model_path, dataset, str(Path(tmp) / f"{kind}-{round_index}"), args)
    # the first step of each run pays one-off costs (warm caches, lazy init): leave it out of both
    steady = {kind: [e for e in entries if e["step"] > 1] for kind, entries in logs.items()}
    grpo = statistics.median(e["step_time"] for e in steady["grpo"])
    ispo = statistics.median(e["step_time"] for e in steady["ispo"])
    print(f"steps measured: {len(steady['grpo'])} GRPO, {len(steady['ispo'])} ISPO "
          f"(batch {args.batch_size} rollouts, completions <= {args.max_completion_length} tokens, beta {args.beta})")
    print(f"median step time: GRPO {grpo:.3f}s, ISPO {ispo:.3f}s")
    for key in ("time/ispo_old_logps", "time/ispo_ref_logps", "time/ispo_counterfactual", "time/ispo_total"):
        values = [e[key] for e in steady["ispo"] if e.get(key) is not None]
        if values:
            print(f"  {key:28s} median {statistics.median(values) * 1000:8.1f} ms ({statistics.median(values) / grpo:.1%} of a GRPO step)")
    answered = [1 - e["no_answer_rate"] for e in steady["ispo"]]
    lengths = {kind: statistics.mean(e["completions/mean_length"] for e in entries) for kind, entries in steady.items()}
    print(f"  rollouts with an answer: {statistics.mean(answered):.0%}; mean completion length "
          f"{lengths['grpo']:.1f} (GRPO) / {lengths['ispo']:.1f} (ISPO) tokens")
    totals = [e["time/ispo_total"] for e in steady["ispo"] if e.get("time/ispo_total") is not None]
    if totals:  # steadier than the ratio of step times on a shared machine
        print(f"ISPO passes' own time / GRPO step: {1 + statistics.median(totals) / grpo:.3f}")
    print(f"median ISPO/GRPO step-time ratio: {ispo / grpo:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
