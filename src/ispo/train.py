"""``ispo train --config RECIPE.yaml [--field value ...]``: train with ISPO (or GRPO: weights 0) from a recipe.

A recipe is a serialised configuration: one flat YAML mapping whose keys are the fields of
``RecipeArgs`` (model, dataset, prompt) and of ``ISPOConfig`` (every GRPO/ISPO/Trainer knob). Each of
those fields is also a ``--field value`` flag that overrides the recipe, converted by the field's type
(``--lambda_ifd 0.1``, ``--use_vllm true``, ``--report_to '[wandb]'``; see ``ispo.cli_args``). Help
text comes from the dataclasses, written once.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ispo.cli_args import FlagField, add_flags, flag_fields, parse_value
from ispo.models.loading import ModelSourceError, check_model_source, first_line, is_gguf_source
from ispo.models.loading import resolve_model as resolve_model_source

SYNTHETIC_ARITHMETIC = "synthetic_arithmetic"
REMOVED_PREFIX = "removed_field__"  # argparse destination of a flag naming a removed ISPOConfig field
DEFAULT_TEMPLATE = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{}."


@dataclass
class RecipeArgs:
    """What to train and on which data; everything else is an ``ISPOConfig`` field."""

    model: str = field(
        default="tiny",
        metadata={
            "help": "Policy model: a hub id, a local path, or 'tiny' (a tiny offline model built into "
            "<output_dir>/tiny_model)."
        },
    )
    tiny_hidden_size: int = field(default=64, metadata={"help": "Hidden size of the 'tiny' model."})
    tiny_num_layers: int = field(default=2, metadata={"help": "Number of layers of the 'tiny' model."})
    dataset: str = field(
        default=SYNTHETIC_ARITHMETIC,
        metadata={
            "help": f"Training data: a local .jsonl/.json file, a hub dataset id, or '{SYNTHETIC_ARITHMETIC}' "
            "(generated offline)."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name."})
    dataset_split: str = field(default="train", metadata={"help": "Dataset split to train on."})
    problem_column: str = field(default="problem", metadata={"help": "Column holding the problem text."})
    answer_column: str = field(default="answer", metadata={"help": "Column holding the gold final answer."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N rows."})
    synthetic_size: int = field(default=256, metadata={"help": f"Number of rows of '{SYNTHETIC_ARITHMETIC}'."})
    prompt_template: str = field(
        default=DEFAULT_TEMPLATE,
        metadata={"help": "User message; '{problem}' is replaced by the problem (no other braces are special)."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system message."})
    conversational: bool = field(
        default=True,
        metadata={"help": "Send prompts as chat messages (the tokenizer's chat template applies); false: raw text."},
    )


def _fields() -> dict[str, FlagField]:
    """Every recipe field by name: ``RecipeArgs``'s, then ``ISPOConfig``'s (GRPOConfig, TrainingArguments)."""
    from ispo.trainer.config import ISPOConfig

    recipe_fields = flag_fields(RecipeArgs)
    config_fields = flag_fields(ISPOConfig, exclude=[f.name for f in recipe_fields])
    return {f.name: f for f in recipe_fields + config_fields}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="recipe YAML (see recipes/)")
    fields = list(_fields().values())
    # raw text: a flag overrides the recipe's value and is converted with it (load_recipe)
    add_flags(
        parser.add_argument_group("recipe fields"),
        [f for f in fields if f.owner is RecipeArgs],
        hyphens=False,
        typed=False,
        show_defaults=False,
    )
    add_flags(
        parser.add_argument_group("ISPOConfig fields (GRPOConfig and TrainingArguments included)"),
        [f for f in fields if f.owner is not RecipeArgs],
        hyphens=False,
        typed=False,
        show_defaults=False,
    )
    # fields of the earlier reading of the paper: accepted by the parser so that `run` can name the replacement
    from ispo.trainer.config import REMOVED_FIELDS

    for name in REMOVED_FIELDS:
        parser.add_argument(
            f"--{name}", dest=f"{REMOVED_PREFIX}{name}", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )


def load_recipe(path: Path, overrides: dict[str, str] | None = None) -> tuple[RecipeArgs, Any]:
    """Read a recipe and apply ``--field value`` overrides; returns ``(RecipeArgs, ISPOConfig)``."""
    import yaml

    from ispo.trainer.config import ISPOConfig, removed_field_error

    values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a recipe is a YAML mapping of field: value")
    table = _fields()
    for name in [*(overrides or {}), *values]:
        message = removed_field_error(str(name))
        if message:
            raise ValueError(message if name in (overrides or {}) else f"{path}: {message}")
    for name, text in (overrides or {}).items():
        if name not in table:
            raise ValueError(f"--{name}: not a RecipeArgs or ISPOConfig field")
        values[name] = parse_value(text, table[name].annotation, flag=f"--{name}")
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise ValueError(f"{path}: unknown recipe field {unknown[0]!r} (not a RecipeArgs or ISPOConfig field)")
    recipe = RecipeArgs(**{k: v for k, v in values.items() if table[k].owner is RecipeArgs})
    config = ISPOConfig(**{k: v for k, v in values.items() if table[k].owner is not RecipeArgs})
    return recipe, config


def synthetic_arithmetic(size: int, seed: int = 0) -> list[dict]:
    """Easy train-split chains of ``ispo.data.synthetic`` (``7+5-3``), the demo's task, generated offline."""
    from ispo.data.synthetic import generate_problems

    return [{"problem": p.expression, "answer": str(p.answer)} for p in generate_problems(size, "easy", seed=seed)]


def load_rows(recipe: RecipeArgs, seed: int = 0) -> list[dict]:
    """The raw training rows as dicts (problem and answer under the recipe's column names)."""
    if recipe.dataset == SYNTHETIC_ARITHMETIC:
        rows = synthetic_arithmetic(recipe.synthetic_size, seed)
        return [{recipe.problem_column: r["problem"], recipe.answer_column: r["answer"]} for r in rows]
    from datasets import load_dataset

    path = Path(recipe.dataset)
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"dataset file {path} does not exist")
        dataset = load_dataset("json", data_files=str(path), split="train")
    else:
        dataset = load_dataset(recipe.dataset, recipe.dataset_config, split=recipe.dataset_split)
    if recipe.max_train_samples is not None:
        dataset = dataset.select(range(min(recipe.max_train_samples, len(dataset))))
    return list(dataset)


def build_examples(recipe: RecipeArgs, rows: list[dict]) -> list[dict]:
    """Rows -> ``{"prompt", "answer"}`` examples; a row without a problem or answer fails with its index."""
    examples = []
    for index, row in enumerate(rows[: recipe.max_train_samples]):
        for column in (recipe.problem_column, recipe.answer_column):
            value = row.get(column)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise ValueError(f"dataset row {index}: missing or empty {column!r} (columns: {sorted(row)})")
        text = recipe.prompt_template.replace("{problem}", str(row[recipe.problem_column]))
        if recipe.conversational:
            messages = [{"role": "system", "content": recipe.system_prompt}] if recipe.system_prompt else []
            prompt: Any = messages + [{"role": "user", "content": text}]
        else:
            prompt = (recipe.system_prompt + "\n\n" if recipe.system_prompt else "") + text
        examples.append({"prompt": prompt, "answer": str(row[recipe.answer_column])})
    if not examples:
        raise ValueError("the dataset has no rows")
    return examples


def recipe_model(recipe: RecipeArgs, output_dir: str, *, trust_remote_code: bool = False) -> str:
    """The model id or path to load; 'tiny' is built (once) and saved under ``output_dir``; a ``.gguf``
    file or a packaged model (``smollm2-135m-instruct``) is converted once into the user cache
    (``ispo.models.loading.resolve_model``).

    Raises:
        ModelSourceError: the model cannot be loaded (a missing folder, a hub id that is unknown or
            not cached while offline); the message names it, on one line.
    """
    if recipe.model != "tiny":
        check_model_source(recipe.model, trust_remote_code=trust_remote_code)
        if not is_gguf_source(recipe.model):
            return recipe.model
        from accelerate import PartialState

        with PartialState().main_process_first():  # one process converts a GGUF model; the others reuse it
            return resolve_model_source(recipe.model)
    from accelerate import PartialState

    from ispo.models.tiny import save_tiny_model

    path = Path(output_dir) / "tiny_model"
    with PartialState().main_process_first():  # one writer; the other processes load what it saved
        if not (path / "config.json").exists():
            save_tiny_model(path, hidden_size=recipe.tiny_hidden_size, num_layers=recipe.tiny_num_layers)
    return str(path)


def train_from_recipe(recipe: RecipeArgs, config) -> int:
    """Train per ``recipe`` and ``config`` (an ``ISPOConfig``); returns a process exit code."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from ispo.trainer import ISPOTrainer

    try:
        examples = build_examples(recipe, load_rows(recipe, config.seed))
    except (ValueError, FileNotFoundError) as error:
        print(f"ispo train: error: {error}", file=sys.stderr)
        return 2
    init_kwargs = config.model_init_kwargs if isinstance(config.model_init_kwargs, dict) else {}
    try:
        model = recipe_model(recipe, config.output_dir, trust_remote_code=bool(init_kwargs.get("trust_remote_code")))
        trainer = ISPOTrainer(model, args=config, train_dataset=Dataset.from_list(examples))
    except OSError as error:  # a model folder without tokenizer or weights, say
        print(f"ispo train: error: model {recipe.model}: {first_line(error)}", file=sys.stderr)
        return 2
    except ModelSourceError as error:
        print(f"ispo train: error: {error}", file=sys.stderr)
        return 2
    resume = config.resume_from_checkpoint
    if isinstance(resume, str) and resume.lower() in ("latest", "true"):
        resume = get_last_checkpoint(config.output_dir)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        print(f"ispo train: done; model and metrics.jsonl in {config.output_dir}")
    trainer.accelerator.wait_for_everyone()
    del trainer  # the last reference: `release_distributed` can then free it
    release_distributed()
    return 0


def release_distributed() -> None:
    """Collect garbage, then tear the process group down, while the interpreter is still whole.

    A finished trainer sits in reference cycles (callbacks, accelerator) that only the garbage
    collector breaks, and under DDP its reducer holds the process group's backend. Left to interpreter
    finalization, that backend and its worker threads are destroyed after Python has stopped handing
    out the GIL, which can abort a finished run with SIGABRT ("terminate called without an active
    exception"). Call it once the caller holds no reference to the trainer.
    """
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run(args: argparse.Namespace) -> int:
    names = set(_fields())
    overrides = {k: v for k, v in vars(args).items() if k in names}
    overrides |= {k.removeprefix(REMOVED_PREFIX): v for k, v in vars(args).items() if k.startswith(REMOVED_PREFIX)}
    try:
        recipe, config = load_recipe(args.config, overrides)
    except (ValueError, FileNotFoundError) as error:  # a bad recipe or flag: say which, no traceback
        print(f"ispo train: error: {error}", file=sys.stderr)
        return 2
    return train_from_recipe(recipe, config)
