"""The offline demo: warm start, then GRPO, ISPO (or any preset) through the same trainer, evaluation, report.

Every method starts from the same warm-started model and sees the same prompts in the same order with
the same seed and budget; each is ``ISPOTrainer`` with a preset (``ispo.methods.presets``; GRPO keeps
TRL's advantages) and logs the ISPO diagnostics, so the plots compare like with like. The held-out set is fixed
(``ispo.demo.evaluate.EVAL_SEED``), so runs with different ``--seed`` are evaluated on the same
problems.

Output folder::

    DIR/GRPO/{metrics.jsonl, eval.json, run.json}
    DIR/ISPO/{metrics.jsonl, eval.json, run.json}
    DIR/report.md, DIR/training_dynamics.png, DIR/heldout_accuracy.png, DIR/demo.json
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ispo.data.synthetic import generate_problems, to_records
from ispo.demo.evaluate import EvalConfig, evaluate, heldout_problems
from ispo.demo.warmstart import WarmStartConfig, load_warm_start, warm_start



def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class DemoConfig:
    """Settings of ``ispo demo``; the fields with help text are its flags (``_`` -> ``-``)."""

    output_dir: str = field(default="runs/demo", metadata=_help("where to write"))
    steps: int = field(default=100, metadata=_help("RL optimizer steps per method"))
    seed: int = field(default=0, metadata=_help("seed of the RL runs and their data order"))
    prompts_per_step: int = field(default=8, metadata=_help("prompts per RL step"))
    num_generations: int = field(default=8, metadata=_help("rollouts per prompt (the group size)"))
    # 5e-4 degraded GRPO itself in 40 steps (measured)
    learning_rate: float = field(default=1e-4, metadata=_help("RL learning rate (constant)"))
    max_completion_length: int = field(default=96, metadata=_help("RL rollout budget in tokens"))
    temperature: float = field(default=1.0, metadata=_help("RL sampling temperature"))
    # share of RL prompts per difficulty (easy, medium, hard): hard prompts are where GRPO collapses
    difficulty_weights: tuple[float, float, float] = field(
        default=(1 / 3, 1 / 3, 1 / 3), metadata=_help("share of RL prompts per difficulty: easy,medium,hard")
    )
    methods: tuple[str, ...] = field(
        default=("GRPO", "ISPO"),
        metadata=_help(
            "comma-separated presets: GRPO, Dr.GRPO, ISPO (the current defaults), ISPO-paper, or any registered "
            "method (self_certainty, rlpr, zvp, prog, pacr, ...; docs/methods.md)"
        ),
    )
    warmstart: WarmStartConfig = field(default_factory=WarmStartConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # 1 by default, so results do not depend on the machine's core count (float reductions split across
    # threads round differently) and a busy machine is not oversubscribed
    threads: int | None = field(
        default=1, metadata=_help("torch CPU threads (1: reproducible, and tiny matrices gain little from more)")
    )
    rebuild_warm_start: bool = field(default=False, metadata=_help("retrain the warm start even when it is cached"))
    progress: bool = field(default=True, metadata=_help("progress bars"))

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        from ispo.methods.presets import resolve_preset

        if not self.methods:
            raise ValueError("methods: give at least one")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods: each at most once, got {','.join(self.methods)}")
        for method in self.methods:
            resolve_preset(method)  # a one-line ValueError naming the unknown one


def rl_records(config: DemoConfig) -> list[dict]:
    """The RL prompts in training order: train split, interleaved by difficulty, seeded by ``config.seed``."""
    import random

    n_prompts = config.steps * config.prompts_per_step
    names = ("easy", "medium", "hard")
    # distinct prompts up to a pool size the easy split can supply; longer runs cycle through the pool
    pool_size = min(n_prompts, 2000)
    pools = {name: generate_problems(pool_size, name, split="train", seed=1000 + config.seed) for name in names}
    rng = random.Random(f"ispo-demo-rl/{config.seed}")
    taken = {name: 0 for name in names}
    problems = []
    for _ in range(n_prompts):
        name = rng.choices(names, weights=config.difficulty_weights)[0]
        problems.append(pools[name][taken[name] % pool_size])
        taken[name] += 1
    return to_records(problems)


def trainer_config(config: DemoConfig, method: str, output_dir: Path):
    """The ``ISPOConfig`` of ``method`` (a preset name) under the demo's shared budget and settings."""
    from ispo.methods.presets import resolve_preset
    from ispo.trainer import ISPOConfig

    return ISPOConfig(
        output_dir=str(output_dir),
        **resolve_preset(method),
        seed=config.seed,
        data_seed=config.seed,
        max_steps=config.steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        gradient_accumulation_steps=1,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_k=0,
        top_p=1.0,
        beta=0.0,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        shuffle_dataset=False,  # the order of rl_records, identical for both methods
    )


def train_method(config: DemoConfig, method: str, model_folder: Path, output_dir: Path):
    """Train one method from the warm start; returns (trained model, tokenizer, wall seconds)."""
    from datasets import Dataset

    from ispo.trainer import ISPOTrainer

    model, tokenizer = load_warm_start(model_folder)
    trainer = ISPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=trainer_config(config, method, output_dir),
        train_dataset=Dataset.from_list(rl_records(config)),
    )
    _quiet_step_logs(trainer)
    started = time.perf_counter()
    trainer.train()
    return trainer.model, tokenizer, time.perf_counter() - started


def _quiet_step_logs(trainer) -> None:
    """Keep the progress bar but not the per-step dict of ~50 metrics (they are in metrics.jsonl)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return None

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
    trainer.pop_callback(PrinterCallback)


def run_demo(config: DemoConfig) -> Path:
    """Run the whole demo; returns the path of ``report.md``."""
    import os

    import torch

    from ispo.report import make_report

    # offline by construction: nothing may reach for the hub (telemetry included)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # transformers 5 renames gradient_checkpointing -> activation_checkpointing and TRL still uses the old
    # name: a screenful of FutureWarnings per run that a demo user can do nothing about
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    t0 = time.perf_counter()
    model_folder = warm_start(config.warmstart, force=config.rebuild_warm_start, progress=config.progress)
    timings["warm_start"] = time.perf_counter() - t0

    problems = heldout_problems(config.eval.problems_per_difficulty)
    model, tokenizer = load_warm_start(model_folder)
    t0 = time.perf_counter()
    before = evaluate(model, tokenizer, problems, config.eval, progress=config.progress)
    timings["eval_before"] = time.perf_counter() - t0
    _print_accuracy("before RL", before)

    run_dirs = []
    for method in config.methods:
        run_dir = out / method
        if (run_dir / "metrics.jsonl").exists():  # a fresh run, not appended to an old one
            (run_dir / "metrics.jsonl").unlink()
        print(f"\n== {method}: {config.steps} steps from the warm start ==", flush=True)
        trained, tokenizer, seconds = train_method(config, method, model_folder, run_dir)
        timings[f"train/{method}"] = seconds
        t0 = time.perf_counter()
        after = evaluate(trained, tokenizer, problems, config.eval, progress=config.progress)
        timings[f"eval/{method}"] = time.perf_counter() - t0
        _print_accuracy(f"{method} after", after)
        (run_dir / "eval.json").write_text(json.dumps({"before": before, "after": after}, indent=2) + "\n")
        (run_dir / "run.json").write_text(
            json.dumps({"name": method, "wall_seconds": round(seconds, 1), "seed": config.seed}, indent=2) + "\n"
        )
        run_dirs.append(run_dir)
        del trained

    report = make_report(run_dirs, out)
    timings["total"] = time.perf_counter() - started
    summary = {"config": _jsonable(asdict(config)), "warm_start_folder": str(model_folder), "seconds": timings}
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {report} (total {timings['total']:.0f} s)", flush=True)
    return report


def _print_accuracy(label: str, results: dict) -> None:
    levels = ("easy", "medium", "hard")
    cells = "  ".join(f"{level} {results.get(f'sampled/{level}', float('nan')):.2f}" for level in levels)
    print(f"held-out accuracy {label}: {cells}", flush=True)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def quick_config(config: DemoConfig) -> DemoConfig:
    """A smaller evaluation for short check runs (``--steps`` of a few)."""
    return replace(config, eval=replace(config.eval, problems_per_difficulty=20, num_samples=1))
