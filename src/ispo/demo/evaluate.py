"""Held-out evaluation of the demo by difficulty: sampled accuracy graded by ``ispo.answers``.

Accuracy is the mean over ``num_samples`` samples per problem at the RL sampling temperature (the
expected outcome reward, "avg@k"), plus greedy pass@1, per difficulty. Generation goes through
``ispo.eval``'s HF backend (``HFBackend``: batched, left-padded ``generate`` with every sampling knob
pinned), the one ``ispo eval`` uses; each batch is seeded from its first sample's
``ispo.eval.runner.sample_seed``, so results are deterministic for a seed and batch size. Grading
calls ``verify_batch`` (gold first), the function the training reward is built on, so reward and
evaluation cannot disagree about what counts as correct. A chat task's prompt (a list of messages) is
rendered by the model's own chat template, as TRL renders it for training; ``format_compliance`` adds
``format/<mode>/<difficulty>``, the share of completions with a parseable answer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ispo.data.synthetic import DIFFICULTY_NAMES, HELDOUT_SPLITS, HeldoutSplit

EVAL_SEED = 0  # the held-out set is the same for every demo seed, so runs are comparable
# the levels of an evaluation's results (``sampled/<level>``): each difficulty, then all of them together
LEVELS: tuple[str, ...] = (*DIFFICULTY_NAMES, "all")


@dataclass(frozen=True)
class HeldoutEvalConfig:
    """How the demo and the study evaluate on held-out problems (``DemoConfig.eval``; not ``ispo eval``'s
    ``ispo.eval.EvalConfig``, which runs the standard benchmarks)."""

    problems_per_difficulty: int = 200
    num_samples: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 96
    batch_size: int = 256  # sequences generated at once
    greedy: bool = True
    seed: int = 0  # sampling seed
    format_compliance: bool = False  # also report the share of completions with a parseable answer


def heldout_problems(n_per_difficulty: int, split: HeldoutSplit = "test", *, task: str = "arithmetic") -> list:
    """``n_per_difficulty`` problems of each difficulty of ``task`` from held-out ``split`` ("dev" or "test").

    Fixed by ``EVAL_SEED``: every run, seed and method of a split is evaluated on the same problems.
    """
    from ispo.data.tasks import get_task

    if split not in HELDOUT_SPLITS:
        raise ValueError(f"split must be one of {', '.join(HELDOUT_SPLITS)}, got {split!r}")
    module = get_task(task)
    return [
        problem
        for name in module.DIFFICULTIES
        for problem in module.generate_problems(n_per_difficulty, name, split=split, seed=EVAL_SEED)
    ]


def prompt_token_ids(tokenizer, prompt) -> list[int]:
    """A plain-text prompt's ids, or a chat's (a list of messages) rendered by the tokenizer's chat template."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False))


def evaluate_heldout(
    model, tokenizer, problems: list, config: HeldoutEvalConfig | None = None, *, progress=True
) -> dict:
    """``{"sampled/<difficulty>": acc, "greedy/<difficulty>": acc, ..., "sampled/all": acc}``, accuracies in [0, 1].

    ``problems`` are a task's (``heldout_problems``): each with ``prompt``, ``answer`` and ``difficulty``.
    """
    from tqdm.auto import tqdm

    from ispo.answers import verify_batch
    from ispo.eval.backends import HFBackend
    from ispo.eval.runner import sample_seed

    config = config or HeldoutEvalConfig()
    was_training = model.training
    backend = HFBackend(model, tokenizer)  # puts the model in eval mode
    prompt_ids = [prompt_token_ids(tokenizer, p.prompt) for p in problems]
    # the seed's key: the arithmetic task's expression (as always), the prompt for a task without one
    keys = [getattr(p, "expression", p.prompt) for p in problems]
    modes = [("sampled", config.temperature, config.num_samples)] + ([("greedy", 0.0, 1)] if config.greedy else [])
    results: dict[str, float] = {}
    bar = tqdm(total=sum(len(problems) * k for _, _, k in modes), desc="eval", disable=not progress, unit="seq")
    for mode, temperature, k in modes:
        samples = [(i, index) for i in range(len(problems)) for index in range(k)]  # (problem, sample index)
        completions: list[str] = []
        for start in range(0, len(samples), config.batch_size):
            batch = samples[start : start + config.batch_size]
            generations = backend.generate(
                [prompt_ids[i] for i, _ in batch],
                temperature=temperature,
                top_p=1.0,
                max_new_tokens=config.max_new_tokens,
                seeds=[sample_seed(config.seed, f"demo/{mode}", keys[i], index) for i, index in batch],
            )
            completions += [generation.text for generation in generations]
            bar.update(len(batch))
        correct = [bool(ok) for ok in verify_batch([str(problems[i].answer) for i, _ in samples], completions)]
        by_level: dict[str, list[bool]] = defaultdict(list)
        for (i, _), ok in zip(samples, correct, strict=True):
            by_level[problems[i].difficulty].append(ok)
        for level, oks in by_level.items():
            results[f"{mode}/{level}"] = sum(oks) / len(oks)
        results[f"{mode}/all"] = sum(correct) / len(correct)
        if config.format_compliance:
            from ispo.answers import extract_answer

            answered: dict[str, list[bool]] = defaultdict(list)
            for (i, _), text in zip(samples, completions, strict=True):
                answered[problems[i].difficulty].append(extract_answer(text) is not None)
            for level, flags in answered.items():
                results[f"format/{mode}/{level}"] = sum(flags) / len(flags)
    bar.close()
    model.train(was_training)
    return results
