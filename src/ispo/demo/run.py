"""The offline demo: warm start, then GRPO, ISPO (or any preset) through the same trainer, evaluation, report.

Every method starts from the same warm-started model and sees the same prompts in the same order with
the same seed and budget; each is ``ISPOTrainer`` with a method's ``ISPOConfig`` fields (a preset of
``ispo.methods.presets``, or a mapping of fields on top of one; GRPO keeps TRL's advantages) and logs
the ISPO diagnostics, so the plots compare like with like. The held-out set is fixed
(``ispo.demo.evaluate.EVAL_SEED``) for a task and split (``dev`` for selection, ``test`` for
confirmation), so runs with different ``--seed`` are evaluated on the same problems.

One *cell* (:func:`run_cell`) is one method trained from the warm start and evaluated; ``ispo demo``
runs one cell per method, ``ispo sweep`` (``ispo.study``) one per method and seed.

With ``model`` (``--model smollm2-135m-instruct``, a ``.gguf`` file or a ``save_pretrained`` folder) a
pretrained chat model replaces the tiny one: there is no warm start (the instruct model is every method's
start, and the frozen base of ISPO's drift filter), the task is a chat task (``word_problems`` unless
``task`` is given) rendered by the model's own chat template, and :meth:`DemoConfig.for_model` gives the
budget calibrated for it on 2 CPU cores (docs/study.md, "Real-model testbed (SmolLM2-135M-Instruct):
calibration"; docs/demo.md).

Output folder::

    DIR/GRPO/{metrics.jsonl, eval.json, run.json}
    DIR/ISPO/{metrics.jsonl, eval.json, run.json}
    DIR/report.md, DIR/training_dynamics.png, DIR/heldout_accuracy.png, DIR/demo.json
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ispo.common import first_line, write_json_atomic
from ispo.data.synthetic import DIFFICULTY_NAMES, HELDOUT_SPLITS, HeldoutSplit
from ispo.demo.evaluate import HeldoutEvalConfig, evaluate_heldout, heldout_problems
from ispo.demo.stalled import GroupOutcomeRecorder, measure_stalled
from ispo.demo.warmstart import WarmStartConfig, load_warm_start, warm_start

# A method as the demo and the study take it: a preset name ("GRPO", "ISPO-paper", a registered method),
# or a mapping of ISPOConfig fields, optionally on top of ``preset: NAME``.
MethodSpec = str | Mapping[str, Any]


# the help of the flags ``ispo demo`` and ``ispo sweep`` share (``ispo.study.cli``; each adds its defaults)
TASK_HELP = "task (ispo.data.tasks): arithmetic, branching (tiny model), word_problems (a chat task, with --model)"
MODEL_HELP = (
    "a pretrained chat model to train instead of the tiny warm-started one: smollm2-135m-instruct, a .gguf "
    "file or a save_pretrained folder; no warm start, its calibrated budget, its own tokenizer and chat "
    "template (docs/demo.md)"
)
SPLIT_HELP = "held-out split to evaluate on: dev (selecting methods and settings) or test (confirmation only)"
EVAL_PROBLEMS_HELP = "held-out problems per difficulty (default 200; 20 when --steps < 10)"


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class DemoConfig:
    """Settings of ``ispo demo``; the fields with help text are its flags (``_`` -> ``-``)."""

    output_dir: str = field(default="runs/demo", metadata=_help("where to write"))
    steps: int = field(default=100, metadata=_help("RL optimizer steps per method"))
    seed: int = field(default=0, metadata=_help("seed of the RL runs and their data order"))
    task: str | None = field(
        default=None, metadata=_help(f"{TASK_HELP}; default: arithmetic, or word_problems with --model")
    )
    model: str | None = field(default=None, metadata=_help(MODEL_HELP))
    split: HeldoutSplit = field(default="test", metadata=_help(SPLIT_HELP))
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
            "comma-separated presets: GRPO, Dr.GRPO, ISPO (the paper's), the paper's ablations (+IFD, +token, "
            "ispo_union, ...) or any registered method (self_certainty, rlpr, zvp, prog, pacr, ...; docs/methods.md)"
        ),
    )
    warmstart: WarmStartConfig = field(default_factory=WarmStartConfig)
    eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)
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
        from ispo.data.tasks import is_chat_task

        if self.task is None:
            self.task = REAL_MODEL_TASK if self.model else DEFAULT_TASK
        chat = is_chat_task(self.task)  # a one-line ValueError listing the tasks
        if self.model and not chat:
            raise ValueError(
                f"task {self.task} is for the tiny character model; a pretrained model (--model) needs a chat task: "
                f"{REAL_MODEL_TASK} (docs/demo.md)"
            )
        if chat and not self.model:
            raise ValueError(
                f"task {self.task} is a chat task for a pretrained model: add --model smollm2-135m-instruct "
                "(docs/demo.md)"
            )
        if self.model:
            from ispo.models.loading import check_model_source

            check_model_source(self.model)  # ModelSourceError (a ValueError): one line saying what to do
        if self.warmstart.task != self.task:
            # the warm start follows the task: a task's calibrated one (the default) becomes the chosen
            # task's; a customised one must name the task itself
            if self.warmstart != WarmStartConfig.for_task(self.warmstart.task):
                raise ValueError(f"warmstart.task is {self.warmstart.task!r} but task is {self.task!r}")
            self.warmstart = WarmStartConfig.for_task(self.task)
        if self.split not in HELDOUT_SPLITS:
            raise ValueError(f"split must be one of {', '.join(HELDOUT_SPLITS)}, got {self.split!r}")
        if not self.methods:
            raise ValueError("methods: give at least one")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods: each at most once, got {','.join(self.methods)}")
        for method in self.methods:
            method_fields(method)  # a one-line ValueError naming the unknown one

    @classmethod
    def for_model(cls, model: str, **overrides) -> DemoConfig:
        """The settings of a pretrained chat model: the calibrated budget (``REAL_MODEL_SETTINGS``) and
        evaluation (``REAL_MODEL_EVAL``), with any field overridden."""
        return cls(**{**REAL_MODEL_SETTINGS, "eval": REAL_MODEL_EVAL, "model": model, **overrides})


# ISPOConfig fields the demo sets from DemoConfig for every method alike (the shared budget and run
# settings); a method's own fields may not set them, so every method of a demo or study gets the same.
SHARED_FIELDS: tuple[str, ...] = (
    "output_dir", "seed", "data_seed", "max_steps", "learning_rate", "lr_scheduler_type", "warmup_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "max_completion_length",
    "temperature", "top_k", "top_p", "beta", "use_cpu", "bf16", "logging_steps", "save_strategy", "report_to",
    "disable_tqdm", "dataloader_num_workers", "shuffle_dataset",
)  # fmt: skip


DEFAULT_TASK = "arithmetic"
# the chat task a pretrained model gets without --task
REAL_MODEL_TASK = "word_problems"
# the budget of a pretrained model on 2 CPU cores, fixed by the GRPO-only calibration of docs/study.md
# ("Real-model testbed (SmolLM2-135M-Instruct): calibration"); each is a DemoConfig field
REAL_MODEL_SETTINGS: dict[str, Any] = {
    "steps": 10,
    "prompts_per_step": 4,
    "num_generations": 4,
    "max_completion_length": 96,  # a correct hard solution in the example's style is 71-84 tokens
    "temperature": 0.5,
    "learning_rate": 1e-5,
}
REAL_MODEL_EVAL = HeldoutEvalConfig(
    problems_per_difficulty=32,
    num_samples=2,
    temperature=0.5,
    max_new_tokens=96,
    batch_size=64,
    greedy=False,
    format_compliance=True,
)


def method_fields(spec: MethodSpec) -> dict[str, Any]:
    """The ``ISPOConfig`` fields of a method: the one place a method spec is resolved (demo, study and sweep).

    A preset name gives the preset's fields (``ispo.methods.presets.resolve_preset``). A mapping gives its
    fields on top of ``preset: NAME`` (``{"preset": "ispo_paper", "lambda_tok": 0}`` is the paper's ISPO with
    ``lambda_tok = 0``), or on top of ``ISPOConfig``'s defaults without ``preset``. A mapping's fields are
    checked by name (an ``ISPOConfig`` field, not a removed one, not one of ``SHARED_FIELDS``), and a text
    value of a field that is not text is converted by the field's type, as a flag's text is (``"1e-3"`` is
    0.001: YAML reads it as text). Values are checked when the ``ISPOConfig`` is built (:func:`check_method`).
    Resolved fields resolve to themselves.

    Raises:
        ValueError: one line; for a mapping it starts with the key at fault (``preset: unknown preset ...``,
            ``lamda_tok: unknown ISPOConfig field``).
    """
    from ispo.methods.presets import resolve_preset

    if isinstance(spec, str):
        return resolve_preset(spec)
    if not isinstance(spec, Mapping):
        raise ValueError(f"a method is a preset name or a mapping of ISPOConfig fields, got {spec!r}")
    given = dict(spec)
    preset = given.pop("preset", None)
    fields: dict[str, Any] = {}
    if preset is not None:
        if not isinstance(preset, str):
            raise ValueError(f"preset: expected a preset name, got {preset!r}")
        try:
            fields = resolve_preset(preset)
        except ValueError as error:
            raise ValueError(f"preset: {error}") from None
    return {**fields, **_checked_fields(given)}


def _checked_fields(given: dict) -> dict[str, Any]:
    """A method's own fields, each checked by name and a text value converted by the field's type."""
    if not given:
        return {}
    from ispo.cli_args import flag_fields, parse_value
    from ispo.trainer import ISPOConfig
    from ispo.trainer.config import removed_field_error

    annotations = {item.name: item.annotation for item in flag_fields(ISPOConfig)}
    checked: dict[str, Any] = {}
    for key, value in given.items():
        key = str(key)
        if removed_field_error(key):
            raise ValueError(f"{key}: {removed_field_error(key)}")
        if key not in annotations:
            raise ValueError(f"{key}: unknown ISPOConfig field")
        if key in SHARED_FIELDS:
            raise ValueError(
                f"{key}: set for every method alike (the shared budget of a demo or study), not per method"
            )
        if isinstance(value, str) and annotations[key] is not str:
            value = parse_value(value, annotations[key], flag=key)  # a ValueError starting with the key
        checked[key] = value
    return checked


def rl_records(config: DemoConfig) -> list[dict]:
    """The RL prompts in training order: train split, interleaved by difficulty, seeded by ``config.seed``."""
    import random

    from ispo.data.tasks import get_task

    task = get_task(config.task)
    n_prompts = config.steps * config.prompts_per_step
    names = DIFFICULTY_NAMES  # difficulty_weights are in this order
    # distinct prompts up to a pool size the easy split can supply; longer runs cycle through the pool
    pool_size = min(n_prompts, 2000)
    pools = {name: task.generate_problems(pool_size, name, split="train", seed=1000 + config.seed) for name in names}
    rng = random.Random(f"ispo-demo-rl/{config.seed}")
    taken = {name: 0 for name in names}
    problems = []
    for _ in range(n_prompts):
        name = rng.choices(names, weights=config.difficulty_weights)[0]
        problems.append(pools[name][taken[name] % pool_size])
        taken[name] += 1
    return task.to_records(problems)


def shared_fields(config: DemoConfig, output_dir: Path) -> dict[str, Any]:
    """The ``ISPOConfig`` fields every method of a demo (or study) shares: budget, seed, sampling, logging."""
    return dict(
        output_dir=str(output_dir),
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
        shuffle_dataset=False,  # the order of rl_records, identical for every method
    )


def trainer_config(config: DemoConfig, method: MethodSpec, output_dir: Path):
    """The ``ISPOConfig`` of ``method`` (a preset name or a field mapping) under the demo's shared budget.

    Raises:
        ValueError: one line: what :func:`method_fields` refuses, or a value ``ISPOConfig`` refuses.
    """
    return _ispo_config(config, method_fields(method), output_dir)


def _ispo_config(config: DemoConfig, fields: dict[str, Any], output_dir: Path):
    """The ``ISPOConfig`` of resolved method ``fields`` (from :func:`method_fields`) under the shared budget."""
    from ispo.trainer import ISPOConfig

    try:
        return ISPOConfig(**shared_fields(config, output_dir), **fields)
    except (TypeError, ValueError) as error:
        raise ValueError(first_line(error)) from None


def check_method(config: DemoConfig, fields: dict[str, Any]) -> None:
    """Build the ``ISPOConfig`` of resolved method ``fields`` once (nothing trained); a bad value: ``ValueError``."""
    import tempfile

    quiet_warnings()
    with tempfile.TemporaryDirectory() as folder:
        _ispo_config(config, fields, Path(folder))


def quiet_warnings() -> None:
    """Silence the FutureWarnings a demo user can do nothing about (also while configs are only checked)."""
    import warnings

    # transformers 5 renames gradient_checkpointing -> activation_checkpointing and TRL still uses the old
    # name: a screenful of FutureWarnings per run
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*gradient_checkpointing.*")


def setup_runtime(threads: int | None) -> None:
    """Offline, quiet and with ``threads`` torch threads: the demo's process settings (also each sweep worker's)."""
    import torch

    # offline by construction: nothing may reach for the hub (telemetry included)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    quiet_warnings()
    if threads:
        torch.set_num_threads(threads)


def warm_start_folder(config: DemoConfig, *, force: bool | None = None) -> Path:
    """The cached warm start of the demo's task (``config.warmstart``, trained on first use).

    With ``config.model`` there is no warm start: the pretrained model's folder (a packaged model or a
    ``.gguf`` file converted once and cached, ``ispo.models.loading.resolve_model``) is every method's start.
    """
    if config.model:
        from ispo.models.loading import resolve_model

        return Path(resolve_model(config.model))
    force = config.rebuild_warm_start if force is None else force
    return warm_start(config.warmstart, force=force, progress=config.progress)


def evaluate_folder(config: DemoConfig, model_folder: Path, problems: list) -> dict:
    """Held-out accuracies of the model saved in ``model_folder`` (the warm start: the "before" numbers)."""
    model, tokenizer = load_warm_start(model_folder)
    return evaluate_heldout(model, tokenizer, problems, config.eval, progress=config.progress)


def demo_problems(config: DemoConfig) -> list:
    """The held-out problems a demo or study evaluates on: its task and split, ``eval.problems_per_difficulty`` each."""
    return heldout_problems(config.eval.problems_per_difficulty, config.split, task=config.task)


@dataclass
class CellResult:
    """What one cell (one method trained from the warm start, then evaluated) measured."""

    name: str
    seed: int
    after: dict
    train_seconds: float
    eval_seconds: float


def run_cell(
    config: DemoConfig,
    name: str,
    fields: dict[str, Any],
    model_folder: Path,
    problems: list,
    before: dict,
    run_dir: Path,
) -> CellResult:
    """Train the method of resolved ``fields`` (:func:`method_fields`) from the warm start in ``model_folder``
    and evaluate it on ``problems``.

    Writes ``run_dir/metrics.jsonl`` (one record per step, as the trainer logs it; a stale one is removed
    first), then ``eval.json`` (``before``, ``after``, ``task``, ``split``, and ``stalled``: the paper's Fig. 6
    quantity, ``ispo.demo.stalled``) and last ``run.json``, each
    written to a temporary file and renamed, so a folder with ``run.json`` is a finished cell.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("run.json", "eval.json", "metrics.jsonl"):  # a fresh run, not appended to an old one
        (run_dir / stale).unlink(missing_ok=True)
    trained, tokenizer, train_seconds, groups = train_method(config, fields, model_folder, run_dir)
    t0 = time.perf_counter()
    after = evaluate_heldout(trained, tokenizer, problems, config.eval, progress=config.progress)
    eval_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    start_model, _ = load_warm_start(model_folder)
    stalled = measure_stalled(config, groups, rl_records(config), trained, tokenizer, start_model)
    del start_model
    stalled_seconds = time.perf_counter() - t0
    evaluation = {"before": before, "after": after, "task": config.task, "split": config.split, "stalled": stalled}
    write_json_atomic(run_dir / "eval.json", evaluation)
    info = {
        "name": name,
        "wall_seconds": round(train_seconds, 1),  # training only (ispo report's "wall time")
        "eval_seconds": round(eval_seconds, 1),
        "stalled_seconds": round(stalled_seconds, 1),  # the Fig. 6 measurement (ispo.demo.stalled)
        "seed": config.seed,
        "steps": config.steps,
        "task": config.task,
        "split": config.split,
        "method": _jsonable(fields),
    }
    write_json_atomic(run_dir / "run.json", info)
    return CellResult(name, config.seed, after, train_seconds, eval_seconds)


def train_method(config: DemoConfig, fields: dict[str, Any], model_folder: Path, output_dir: Path):
    """Train one method (resolved ``fields``) from the warm start.

    Returns (trained model, tokenizer, wall seconds, every training group's outcome: ``GroupOutcome``).
    """
    from datasets import Dataset

    from ispo.trainer import ISPOTrainer

    model, tokenizer = load_warm_start(model_folder)
    trainer = ISPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=_ispo_config(config, fields, output_dir),
        train_dataset=Dataset.from_list(rl_records(config)),
    )
    _quiet_step_logs(trainer)
    recorder = GroupOutcomeRecorder(trainer, config.prompts_per_step)
    trainer.add_callback(recorder)
    started = time.perf_counter()
    trainer.train()
    return trainer.model, tokenizer, time.perf_counter() - started, recorder.groups


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
    from ispo.report import make_report

    setup_runtime(config.threads)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    t0 = time.perf_counter()
    model_folder = warm_start_folder(config)
    timings["warm_start"] = time.perf_counter() - t0

    problems = demo_problems(config)
    t0 = time.perf_counter()
    before = evaluate_folder(config, model_folder, problems)
    timings["eval_before"] = time.perf_counter() - t0
    _print_accuracy("before RL", before)

    run_dirs = []
    for method in config.methods:
        run_dir = out / method
        start = config.model or "the warm start"
        print(f"\n== {method}: {config.steps} steps from {start} ==", flush=True)
        result = run_cell(config, method, method_fields(method), model_folder, problems, before, run_dir)
        timings[f"train/{method}"] = result.train_seconds
        timings[f"eval/{method}"] = result.eval_seconds
        _print_accuracy(f"{method} after", result.after)
        run_dirs.append(run_dir)

    report = make_report(run_dirs, out)
    timings["total"] = time.perf_counter() - started
    summary = {"config": _jsonable(asdict(config)), "warm_start_folder": str(model_folder), "seconds": timings}
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwrote {report} (total {timings['total']:.0f} s)", flush=True)
    return report


def _print_accuracy(label: str, results: dict) -> None:
    cells = "  ".join(f"{level} {results.get(f'sampled/{level}', float('nan')):.2f}" for level in DIFFICULTY_NAMES)
    print(f"held-out accuracy {label}: {cells}", flush=True)


def _jsonable(value):
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def quick_config(config: DemoConfig) -> DemoConfig:
    """A smaller evaluation for short check runs (``--steps`` of a few; 8 problems per level for a pretrained model)."""
    problems = 8 if config.model else 20
    return replace(config, eval=replace(config.eval, problems_per_difficulty=problems, num_samples=1))
