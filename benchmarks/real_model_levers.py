"""What each cost lever buys on a real model on CPU, and what it costs in fidelity (docs/study.md).

    nice -n 10 python benchmarks/real_model_levers.py --model smollm2-135m-instruct [--rollouts 16]
        [--completion-length 64] [--threads 1]

On ``--rollouts`` sampled completions of the chat task's train prompts (one generation, timed), it times
one policy-gradient step's forward + backward + AdamW step as the trainer runs it (logits only for the
completion tokens) under each lever: fp32 full fine-tuning (the reference), bf16 autocast, LoRA (PEFT,
rank 16 on every linear layer of the blocks), frozen token embeddings (tied to the output head in
SmolLM2, so the head freezes too), and measures bf16 autocast's per-token log-prob difference to fp32
on the same rollouts. Prints one line per lever.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="word_problems")
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--completion-length", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per lever (the median is shown)")
    parser.add_argument("--levers", default="fp32,bf16,lora,frozen_embeddings")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ispo.data.tasks import get_task
    from ispo.demo.evaluate import prompt_token_ids
    from ispo.eval.backends import HFBackend

    try:
        from ispo.models.loading import resolve_model

        path = resolve_model(args.model)
    except ImportError:
        path = args.model
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    task = get_task(args.task)
    levels = list(task.DIFFICULTIES)
    problems = [
        task.generate_problems(args.rollouts, levels[i % len(levels)], split="train", seed=777)[i // len(levels)]
        for i in range(args.rollouts)
    ]
    prompts = [prompt_token_ids(tokenizer, p.prompt) for p in problems]
    tick = time.perf_counter()
    generations = HFBackend(base, tokenizer).generate(
        prompts, temperature=args.temperature, max_new_tokens=args.completion_length, seeds=[0]
    )
    generation_seconds = time.perf_counter() - tick
    # right-padded prompt + completion, as one batch; the loss reads the completion tokens only
    rows = [p + g.token_ids for p, g in zip(prompts, generations, strict=True)]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    completion = torch.zeros_like(input_ids, dtype=torch.bool)
    for i, (prompt, row) in enumerate(zip(prompts, rows, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        completion[i, len(prompt) : len(row)] = True
    keep = width - min(len(p) for p in prompts) + 1  # logits for every completion position (TRL's logits_to_keep)
    targets = input_ids[:, width - keep + 1 :]
    target_mask = completion[:, width - keep + 1 :]
    tokens = int(mask.sum())
    print(
        f"{len(rows)} rollouts, {tokens} tokens ({int(completion.sum())} completion, "
        f"longest row {width}); generation {generation_seconds:.1f}s",
        flush=True,
    )

    def token_logps(model, autocast: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=keep).logits[:, :-1]
        logps = torch.log_softmax(logits.float(), dim=-1)
        return logps.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def step_seconds(model, autocast: bool) -> float:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-7)
        times = []
        for _ in range(args.repeats):
            tick = time.perf_counter()
            loss = -(token_logps(model, autocast) * target_mask).sum() / target_mask.sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - tick)
        return statistics.median(times)

    results = {}
    for lever in args.levers.split(","):
        model = copy.deepcopy(base).train()
        autocast = lever == "bf16"
        if lever == "lora":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(
                model,
                LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM"),
            )
        elif lever == "frozen_embeddings":
            model.get_input_embeddings().weight.requires_grad_(False)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        results[lever] = seconds = step_seconds(model, autocast)
        ratio = seconds / results.get("fp32", seconds)
        print(
            f"{lever:18s} fwd+bwd+AdamW {seconds:6.1f}s  ({ratio:.2f} x fp32)  trainable {trainable / 1e6:.1f}M",
            flush=True,
        )
        del model
    with torch.no_grad():
        model = base.eval()
        fp32 = token_logps(model, False)
        bf16 = token_logps(model, True)
    diff = (bf16 - fp32).abs()[target_mask]
    sequence = ((bf16 - fp32) * target_mask).sum(-1) / target_mask.sum(-1)
    print(
        f"bf16 autocast vs fp32 per-token log-prob |diff|: mean {diff.mean():.4f}, median {diff.median():.4f}, "
        f"p99 {diff.quantile(0.99):.4f}, max {diff.max():.4f} nats; per-sequence mean log-prob diff "
        f"|mean| {sequence.abs().mean():.4f} nats; token prob ratio exp(|diff|) p99 {diff.quantile(0.99).exp():.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
