"""Step-time overhead of ISPO (or any registered method) over GRPO on the same tiny model, data and seed.

    python benchmarks/step_overhead.py [--method ispo,rlpr,...] [--rounds 3] [--steps 4] [--diagnostics]
    python benchmarks/step_overhead.py --model smollm2-135m-instruct [--rounds 1] [--steps 3]

The tiny model is first taught, by a short supervised warm-up, to end with ``\\boxed{answer}``, so
rollouts carry answers and every ISPO pass runs (pi_old log-probs and entropies, pi_ref log-probs
for the drift filter, the counterfactual forward). GRPO (TRL's ``GRPOTrainer``) and each method
(``ISPOTrainer(method=...)``, defaults) then train in turn, ``--steps`` optimizer steps each per round,
so that machine load affects all alike. Methods other than ISPO run without the ISPO diagnostics
(``ispo_diagnostics=False``) unless ``--diagnostics``: the ratio is then the method's own cost. The
learning rate is 0 by default: the full step runs (loss, backward,
optimizer) but the policy stays put, so both trainers sample identical rollouts (ISPO draws no
random numbers) and the step times differ by ISPO's extra work alone. Step time is TRL's ``step_time``
(generation + scoring + loss + backward).
Prints the median ISPO/GRPO step-time ratio and the median time of each extra ISPO pass.

``--model NAME`` (``smollm2-135m-instruct``, a ``.gguf`` file or a folder) times a real model at its real
shape instead: no warm-up (the instruct model answers in the format of the chat task ``word_problems``,
whose train prompts it gets: docs/study.md, "Real-model testbed (SmolLM2-135M-Instruct): calibration"),
sampled at ``--temperature`` (0.5 there, the testbed's).
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
        texts.append(
            prompt + f"We compute {row['problem']} step by step: it gives {row['answer']}. "
            f"So \\boxed{{{row['answer']}}}" + tokenizer.eos_token
        )
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
    """Train ``kind`` ("grpo" = TRL's GRPOTrainer, else a registered method) and return its step logs."""
    from trl import GRPOConfig, GRPOTrainer

    from ispo import ISPOConfig, ISPOTrainer
    from ispo.rewards import math_accuracy_reward

    common = dict(
        output_dir=output_dir,
        use_cpu=True,
        bf16=False,
        seed=args.seed,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
        max_steps=args.steps,
        learning_rate=args.learning_rate,
        num_generations=args.num_generations,
        temperature=args.temperature,
        per_device_train_batch_size=args.batch_size,
        max_completion_length=args.max_completion_length,
        beta=args.beta,
    )
    if kind == "grpo":
        trainer = GRPOTrainer(
            model_path, reward_funcs=[math_accuracy_reward()], args=GRPOConfig(**common), train_dataset=dataset
        )
    else:
        diagnostics = kind == "ispo" or args.diagnostics
        config = ISPOConfig(**common, method=kind, ispo_diagnostics=diagnostics)
        trainer = ISPOTrainer(model_path, args=config, train_dataset=dataset)
    trainer.train()
    return [entry for entry in trainer.state.log_history if "step_time" in entry]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ispo", help="comma-separated registered methods to time against GRPO")
    parser.add_argument("--diagnostics", action="store_true", help="also run the ISPO diagnostics' passes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per trainer per round")
    parser.add_argument("--batch-size", type=int, default=16, help="rollouts per step (groups of 4)")
    parser.add_argument("--max-completion-length", type=int, default=96)
    parser.add_argument("--warmup-steps", type=int, default=800, help="supervised warm-up steps of the tiny model")
    parser.add_argument("--beta", type=float, default=0.0, help="KL weight (beta > 0: TRL's reference is shared)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.0,
        help="0 (default): both trainers sample the very same rollouts, so only the extra work differs",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier timings)")
    parser.add_argument(
        "--model",
        default=None,
        help="a real chat model (smollm2-135m-instruct, a .gguf file or a folder) on the chat task word_problems, "
        "instead of the warmed-up tiny model",
    )
    parser.add_argument("--num-generations", type=int, default=4, help="rollouts per prompt")
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature (default 1.0; 0.5 with --model)"
    )
    args = parser.parse_args(argv)
    if args.temperature is None:
        args.temperature = 0.5 if args.model else 1.0

    import torch
    from datasets import Dataset

    from ispo.train import synthetic_arithmetic

    torch.set_num_threads(args.threads)
    if args.model:
        return time_real_model(args)
    rows = [
        {"prompt": [{"role": "user", "content": f"{r['problem']}="}], "answer": r["answer"], "problem": r["problem"]}
        for r in synthetic_arithmetic(256, args.seed)
    ]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        model_path = str(warm_start(Path(tmp) / "model", rows, args.warmup_steps, args.seed))
        print(f"warm-up: {time.perf_counter() - tick:.1f}s")
        return time_methods(model_path, dataset, tmp, args)


def time_real_model(args) -> int:
    """The same timing on a real chat model and the chat task's train prompts (no warm-up)."""
    from datasets import Dataset

    from ispo.data.word_problems import generate_mixture, to_records
    from ispo.models.loading import resolve_model

    tick = time.perf_counter()
    model_path = resolve_model(args.model)
    print(f"model {args.model}: {model_path} ({time.perf_counter() - tick:.1f}s)")
    records = to_records(generate_mixture(64, split="train", seed=2000 + args.seed))
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in records])
    with tempfile.TemporaryDirectory() as tmp:
        return time_methods(model_path, dataset, tmp, args)


def time_methods(model_path: str, dataset, tmp: str, args) -> int:
    """GRPO and each method, ``args.rounds`` rounds of ``args.steps`` steps each; prints the ratios."""
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    logs: dict[str, list[dict]] = {kind: [] for kind in ["grpo", *methods]}
    for round_index in range(args.rounds):
        for kind in logs:
            logs[kind] += run(kind, model_path, dataset, str(Path(tmp) / f"{kind}-{round_index}"), args)
    # the first step of each run pays one-off costs (warm caches, lazy init): leave it out of all
    steady = {kind: [e for e in entries if e["step"] > 1] for kind, entries in logs.items()}
    grpo = statistics.median(e["step_time"] for e in steady["grpo"])
    print(
        f"steps measured per trainer: {len(steady['grpo'])} (batch {args.batch_size} rollouts, completions <= "
        f"{args.max_completion_length} tokens, beta {args.beta}); median GRPO step {grpo:.3f}s"
    )
    answered = [1 - e["no_answer_rate"] for kind in methods for e in steady[kind] if "no_answer_rate" in e]
    if answered:
        print(f"rollouts with an answer: {statistics.mean(answered):.0%}")
    for kind in methods:
        step = statistics.median(e["step_time"] for e in steady[kind])
        print(f"{kind}: median step {step:.3f}s, step-time ratio to GRPO {step / grpo:.3f}")
        keys = sorted({key for e in steady[kind] for key in e if key.startswith("time/ispo_")})
        for key in keys:
            values = [e[key] for e in steady[kind] if e.get(key) is not None]
            print(
                f"  {key:30s} median {statistics.median(values) * 1000:8.1f} ms "
                f"({statistics.median(values) / grpo:.1%} of a GRPO step)"
            )
        totals = [e["time/ispo_total"] for e in steady[kind] if e.get("time/ispo_total") is not None]
        if totals:  # steadier than the ratio of step times on a shared machine
            print(f"  passes' own time / GRPO step: {1 + statistics.median(totals) / grpo:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
