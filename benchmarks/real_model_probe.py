"""Pre-RL probe of a real chat model on a chat task: sampled accuracy, format compliance, uniform groups.

    nice -n 10 python benchmarks/real_model_probe.py --model smollm2-135m-instruct [--task word_problems]
        [--prompts 32] [--samples 8] [--temperature 1.0] [--max-new-tokens 96] [--zero-shot] [--dtype bfloat16]

For each level of the task, ``--prompts`` train-split problems (a fixed seed, distinct from the RL
prompts' seeds) are sampled ``--samples`` times each at ``--temperature`` through ``ispo eval``'s HF
backend, with the model's own chat template, and graded by ``ispo.answers.verify_batch`` (the strict
grader of the training reward). Per level it prints: sampled accuracy; format compliance (share of
completions with a parseable ``\\boxed{}`` answer, ``ispo.answers.extract_answer``); the share of
outcome-uniform groups (all samples of a problem right, or all wrong: no signal for GRPO); the mean
completion length; the wall time. ``--zero-shot`` drops the worked example (the instruction stays).
``--json PATH`` also writes the numbers. The calibration this serves is in docs/study.md
("Real-model testbed (SmolLM2-135M-Instruct): calibration").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def load(name: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # a model name such as smollm2-135m-instruct, or a .gguf path (docs/demo.md)
        from ispo.models.loading import resolve_model

        path = resolve_model(name)
    except ImportError:  # an older checkout: a save_pretrained folder only
        path = name
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="word_problems")
    parser.add_argument("--prompts", type=int, default=32, help="problems per level")
    parser.add_argument("--samples", type=int, default=8, help="samples per problem (the group size)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences generated at once")
    parser.add_argument("--levels", default="easy,medium,hard")
    parser.add_argument("--zero-shot", action="store_true", help="no worked example in the chat")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--seed", type=int, default=12345, help="problem seed (RL prompts use 1000 + run seed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--show", type=int, default=0, help="print this many completions per level")
    args = parser.parse_args(argv)

    import torch

    from ispo.answers import extract_answer, verify_batch
    from ispo.data.tasks import get_task
    from ispo.eval.backends import HFBackend
    from ispo.eval.runner import sample_seed

    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    if not getattr(task, "CHAT", False):
        parser.error(f"task {args.task} is not a chat task (docs/demo.md)")
    tick = time.perf_counter()
    model, tokenizer = load(args.model, args.dtype)
    print(f"loaded {args.model} in {time.perf_counter() - tick:.1f}s", flush=True)
    backend = HFBackend(model, tokenizer)
    results = {"settings": vars(args), "levels": {}}
    for level in args.levels.split(","):
        problems = task.generate_problems(args.prompts, level, split="train", seed=args.seed)
        messages = [task.chat_messages(p.question, one_shot=not args.zero_shot) for p in problems]
        prompt_ids = [
            tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=False)
            for m in messages
        ]
        samples = [(i, k) for i in range(len(problems)) for k in range(args.samples)]
        texts, lengths = [], []
        tick = time.perf_counter()
        for start in range(0, len(samples), args.batch_size):
            batch = samples[start : start + args.batch_size]
            generations = backend.generate(
                [prompt_ids[i] for i, _ in batch],
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
                seeds=[sample_seed(args.seed, f"probe/{level}", problems[i].question, k) for i, k in batch],
            )
            texts += [g.text for g in generations]
            lengths += [len(g.token_ids) for g in generations]
        seconds = time.perf_counter() - tick
        correct = [bool(ok) for ok in verify_batch([str(problems[i].answer) for i, _ in samples], texts)]
        formatted = [extract_answer(t) is not None for t in texts]
        groups = [correct[i * args.samples : (i + 1) * args.samples] for i in range(len(problems))]
        uniform = sum(all(g) or not any(g) for g in groups) / len(groups)
        row = {
            "accuracy": sum(correct) / len(correct),
            "format": sum(formatted) / len(formatted),
            "uniform_groups": uniform,
            "all_wrong_groups": sum(not any(g) for g in groups) / len(groups),
            "mean_tokens": statistics.mean(lengths),
            "prompt_tokens": statistics.mean(len(p) for p in prompt_ids),
            "seconds": round(seconds, 1),
        }
        results["levels"][level] = row
        print(
            f"{level:6s} accuracy {row['accuracy']:.3f}  format {row['format']:.3f}  uniform groups "
            f"{row['uniform_groups']:.2f} (all wrong {row['all_wrong_groups']:.2f})  prompt {row['prompt_tokens']:.0f} "
            f"tok, completion {row['mean_tokens']:.0f} tok  {seconds:.0f}s",
            flush=True,
        )
        for i in range(min(args.show, len(texts))):
            print(f"--- [{problems[samples[i][0]].answer}] {texts[i]!r}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
