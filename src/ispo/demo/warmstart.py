"""Warm start of the demo's tiny model: a short supervised pass on deliberately imperfect solutions.

RL needs a policy that is sometimes right: from random weights every rollout is wrong and GRPO has
nothing to learn from. The warm start fits a tiny Qwen3-style model (character tokenizer over the
task's ``CHARACTERS``) to step-by-step solutions of train-split problems of one synthetic task
(``ispo.data.tasks``: ``arithmetic`` by default, or ``branching``) in which each step is wrong with
probability ``error_rate`` (the task's ``solution_text``). The model then makes mistakes at roughly
that rate per step, so before RL it solves many easy prompts, some medium ones and few hard ones.

Each task has its own calibrated settings: ``WarmStartConfig.for_task(name)`` (the dataclass defaults
are the arithmetic task's). The result is cached under ``<cache>/warmstart/<key>/`` (``$ISPO_CACHE``,
else ``$XDG_CACHE_HOME/ispo``, else ``~/.cache/ispo``), where ``key`` hashes every setting below and
the format version, so a changed setting trains a new model and an unchanged one is reused. A plain
torch loop: seeded, single process, no TRL.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ispo.data.tasks import get_task

FORMAT_VERSION = 2  # 2: Qwen3 architecture (ispo.models.tiny)
DEFAULT_TASK = "arithmetic"


@dataclass(frozen=True)
class WarmStartConfig:
    """Everything that determines the warm-started model (all of it goes into the cache key).

    The defaults are the arithmetic task's; ``WarmStartConfig.for_task(name)`` gives any task's.
    """

    task: str = DEFAULT_TASK  # a name of ispo.data.tasks.TASKS
    # model (a Qwen3ForCausalLM from ispo.models.tiny)
    hidden_size: int = 64
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    # data
    error_rate: float = 0.15  # probability that one solution step is wrong
    problems_per_difficulty: int = 3000  # distinct train-split problems per level
    difficulty_weights: tuple[float, float, float] = (0.3, 0.4, 0.3)  # easy, medium, hard
    # optimisation
    steps: int = 1200
    batch_size: int = 32
    learning_rate: float = 6e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        get_task(self.task)  # a one-line ValueError naming the known tasks

    @classmethod
    def for_task(cls, task: str = DEFAULT_TASK, **overrides) -> WarmStartConfig:
        """The calibrated warm start of ``task`` (``TASK_SETTINGS``), with any field overridden."""
        get_task(task)
        return cls(**{"task": task, **TASK_SETTINGS.get(task, {}), **overrides})

    def key(self) -> str:
        fields = asdict(self)
        if fields["task"] == DEFAULT_TASK:
            # the arithmetic warm starts were cached before tasks existed: their key must not change
            del fields["task"]
        payload = json.dumps({"version": FORMAT_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# Per-task settings that differ from the dataclass defaults (the arithmetic task's), fixed by the
# calibration recorded in docs/study.md ("Task calibration: branching") before any ISPO run on the task.
TASK_SETTINGS: dict[str, dict] = {
    "arithmetic": {},
    # error_rate 0.2 (0.15 for arithmetic): pre-RL sampled dev accuracy 0.54 / 0.27 / 0.08 (easy / medium / hard)
    "branching": {"error_rate": 0.2},
}


def cache_root() -> Path:
    """The user cache folder of this package."""
    if os.environ.get("ISPO_CACHE"):
        return Path(os.environ["ISPO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ispo"


def build_tokenizer(task: str = DEFAULT_TASK):
    """The character tokenizer over ``task``'s characters."""
    from ispo.models.tiny import build_char_tokenizer

    return build_char_tokenizer(get_task(task).CHARACTERS)


def sft_examples(config: WarmStartConfig) -> list[tuple[str, str]]:
    """(prompt, imperfect solution) pairs; ``steps * batch_size`` of them, sampled from the train split."""
    task = get_task(config.task)
    # the arithmetic stream keeps its seed string, so its cached warm start stays what it was
    stream = "" if config.task == DEFAULT_TASK else f"{config.task}/"
    rng = random.Random(f"ispo-warmstart/{stream}{config.seed}")
    pools = [
        task.generate_problems(config.problems_per_difficulty, name, split="train", seed=config.seed)
        for name in task.DIFFICULTIES
    ]
    examples = []
    for _ in range(config.steps * config.batch_size):
        pool = rng.choices(pools, weights=config.difficulty_weights)[0]
        problem = rng.choice(pool)
        examples.append((problem.prompt, task.solution_text(problem, error_rate=config.error_rate, rng=rng)))
    return examples


def encode_batch(tokenizer, pairs: list[tuple[str, str]]):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding), all (B, T)."""
    import torch

    rows, label_rows = [], []
    for prompt, completion in pairs:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt_ids + completion_ids)
        label_rows.append([-100] * len(prompt_ids) + completion_ids)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, label_row) in enumerate(zip(rows, label_rows, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.tensor(label_row)
        attention_mask[i, : len(row)] = 1
    return input_ids, attention_mask, labels


def train_sft(model, tokenizer, config: WarmStartConfig, *, progress: bool = True) -> list[float]:
    """Fit ``model`` in place to the imperfect solutions; returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    examples = sft_examples(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.98)
    )

    def lr_factor(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress_frac = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_frac))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    losses = []
    bar = tqdm(range(config.steps), desc="warm start (SFT)", disable=not progress, unit="step")
    for step in bar:
        batch = examples[step * config.batch_size : (step + 1) * config.batch_size]
        input_ids, attention_mask, labels = encode_batch(tokenizer, batch)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


def warm_start(
    config: WarmStartConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Return the folder of the warm-started model (``from_pretrained``-loadable), training it if not cached."""
    from ispo.models.tiny import build_tiny_model

    config = config or WarmStartConfig()
    folder = Path(cache_dir or cache_root() / "warmstart") / config.key()
    done = folder / "warmstart.json"
    if done.exists() and not force:
        return folder
    tokenizer = build_tokenizer(config.task)
    model = build_tiny_model(
        tokenizer,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        num_kv_heads=config.num_kv_heads,
        max_position_embeddings=256,
        seed=config.seed,
    )
    started = time.perf_counter()
    losses = train_sft(model, tokenizer, config, progress=progress)
    seconds = time.perf_counter() - started
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {
        "config": asdict(config),
        "key": config.key(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 1),
        "loss_first": round(sum(losses[:20]) / len(losses[:20]), 4),
        "loss_last": round(sum(losses[-20:]) / len(losses[-20:]), 4),
    }
    (tmp / "warmstart.json").write_text(json.dumps(info, indent=2) + "\n")
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():  # a forced rebuild: replace the old one
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_warm_start(folder: str | Path):
    """(model, tokenizer) from a warm-start folder, loaded by path as ``ispo eval`` or TRL would."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    return model, tokenizer
