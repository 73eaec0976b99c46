"""Held-out evaluation of the demo by difficulty: sampled accuracy graded by ``ispo.verify``.

Accuracy is the mean over ``num_samples`` samples per problem at the RL sampling temperature (the
expected outcome reward, "avg@k"), plus greedy pass@1, per difficulty. Grading calls
``ispo.verify.verify_batch`` (gold first), the function the training reward is built on, so reward
and evaluation cannot disagree about what counts as correct.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ispo.data.synthetic import DIFFICULTIES, Problem, generate_problems

EVAL_SEED = 0  # the held-out set is the same for every demo seed, so runs are comparable


@dataclass(frozen=True)
class EvalConfig:
    problems_per_difficulty: int = 200
    num_samples: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 96
    batch_size: int = 256  # sequences generated at once
    greedy: bool = True
    seed: int = 0  # sampling seed


def heldout_problems(n_per_difficulty: int) -> list[Problem]:
    return [
        problem
        for name in DIFFICULTIES
        for problem in generate_problems(n_per_difficulty, name, split="heldout", seed=EVAL_SEED)
    ]


def grade(golds: list[str], completions: list[str]) -> list[bool]:
    from ispo.verify import verify_batch

    return [bool(ok) for ok in verify_batch(golds, completions)]


def generate(model, tokenizer, prompts: list[str], *, do_sample: bool, config: EvalConfig) -> list[str]:
    """Completions (text, special tokens dropped) for ``prompts``, in batches of ``config.batch_size``."""
    import torch

    outputs: list[str] = []
    for start in range(0, len(prompts), config.batch_size):
        chunk = prompts[start : start + config.batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs = dict(max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        if do_sample:
            kwargs.update(do_sample=True, temperature=config.temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        outputs.extend(tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    return outputs


def evaluate(model, tokenizer, problems: list[Problem], config: EvalConfig | None = None, *, progress=True) -> dict:
    """``{"sampled/<difficulty>": acc, "greedy/<difficulty>": acc, ..., "sampled/all": acc}``, accuracies in [0, 1]."""
    import torch
    from tqdm.auto import tqdm

    config = config or EvalConfig()
    was_training = model.training
    model.eval()
    torch.manual_seed(config.seed)
    modes = [("sampled", True, config.num_samples)] + ([("greedy", False, 1)] if config.greedy else [])
    results: dict[str, float] = {}
    bar = tqdm(total=sum(len(problems) * k for _, _, k in modes), desc="eval", disable=not progress, unit="seq")
    for mode, do_sample, k in modes:
        prompts = [p.prompt for p in problems for _ in range(k)]
        golds = [str(p.answer) for p in problems for _ in range(k)]
        completions = []
        for start in range(0, len(prompts), config.batch_size):
            completions += generate(model, tokenizer, prompts[start : start + config.batch_size], do_sample=do_sample, config=config)
            bar.update(len(prompts[start : start + config.batch_size]))
        correct = grade(golds, completions)
        by_level: dict[str, list[bool]] = defaultdict(list)
        for i, ok in enumerate(correct):
            by_level[problems[i // k].difficulty].append(ok)
        for level, oks in by_level.items():
            results[f"{mode}/{level}"] = sum(oks) / len(oks)
        results[f"{mode}/all"] = sum(correct) / len(correct)
    bar.close()
    model.train(was_training)
    return results
