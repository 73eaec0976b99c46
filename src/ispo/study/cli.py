"""``ispo sweep --study FILE.yaml --seeds 0-4 --output-dir DIR [--jobs N] [--steps N] [--task T] [--split dev|test]``.

Runs every (method, seed) cell of a study file through the ``ispo demo`` pipeline (same warm start, same
prompts per seed, same budget), resumably, and writes ``DIR/study.json``, ``study.md`` and ``study.png``
after each finished cell (docs/study.md). The flags are the fields of :class:`SweepArgs` (``ispo.cli_args``).
Bad input (the study file, a method's fields, ``--seeds``, an output folder of another study) is one line
on stderr and exit status 2, before anything runs; a failed cell makes the exit status 1 (rerun the command
to retry it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace

from ispo.data.synthetic import HeldoutSplit
from ispo.demo.run import EVAL_PROBLEMS_HELP, MODEL_HELP, SPLIT_HELP, TASK_HELP


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class SweepArgs:
    """The flags of ``ispo sweep``."""

    study: str = field(
        metadata=_help(
            "study file (YAML): baseline, methods (ISPOConfig fields, optionally on top "
            "of preset: NAME) and optionally task"
        )
    )
    seeds: str = field(metadata=_help("seeds: a range 0-4, a list 0,1,2, or both (0-2,7)"))
    output_dir: str = field(
        metadata=_help(
            "where to write (DIR/<method>/seed<S>/ per cell; study.json, study.md, study.png: the summary, "
            "rewritten as each cell finishes)"
        )
    )
    jobs: int = field(default=1, metadata=_help("worker processes (cells run at a time)"))
    threads: int = field(
        default=1,
        metadata=_help(
            "torch threads per cell (default 1; recorded in sweep.json when not 1; on 2 cores SmolLM2 cells "
            "ran at the same throughput with --jobs 1 --threads 2 as with --jobs 2)"
        ),
    )
    steps: int | None = field(default=None, metadata=_help("RL steps per cell (default: the demo's, 100)"))
    task: str | None = field(
        default=None,
        metadata=_help(
            f"{TASK_HELP}; default: the study file's, else arithmetic; with --model, word_problems unless "
            "the study file names a chat task"
        ),
    )
    model: str | None = field(default=None, metadata=_help(MODEL_HELP))
    split: HeldoutSplit = field(default="dev", metadata=_help(SPLIT_HELP))
    eval_problems: int | None = field(default=None, metadata=_help(EVAL_PROBLEMS_HELP))


def _fields():
    from ispo.cli_args import flag_fields

    return flag_fields(SweepArgs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ispo.cli_args import add_flags

    add_flags(parser, _fields())


def prepare(args: SweepArgs):
    """(study, seeds, base DemoConfig) from the flags; every check that needs no training, in order.

    Raises:
        StudyError: one line naming the key at fault.
    """
    from ispo.demo.run import DemoConfig, check_method, quick_config
    from ispo.study.spec import StudyError, load_study, parse_seeds

    seeds = parse_seeds(args.seeds)
    if args.jobs < 1:
        raise StudyError(f"--jobs: must be at least 1, got {args.jobs}")
    if args.threads < 1:
        raise StudyError(f"--threads: must be at least 1, got {args.threads}")
    if args.steps is not None and args.steps < 1:
        raise StudyError(f"--steps: must be at least 1, got {args.steps}")
    if args.eval_problems is not None and args.eval_problems < 1:
        raise StudyError(f"--eval-problems: must be at least 1, got {args.eval_problems}")
    if args.task is not None:
        from ispo.data.tasks import get_task

        try:
            get_task(args.task)
        except ValueError as error:
            raise StudyError(f"--task: {error}") from None
    try:
        if args.model:  # the calibrated budget of a pretrained model (docs/study.md); its chat task by default
            defaults = DemoConfig.for_model(args.model, split=args.split, output_dir=args.output_dir, progress=False)
        else:
            defaults = DemoConfig(split=args.split, output_dir=args.output_dir, progress=False)
    except ValueError as error:  # a model that cannot be loaded, a task that does not fit it
        raise StudyError(f"--model: {error}") from None
    study = load_study(args.study, check=lambda name, fields: check_method(defaults, fields))
    task = args.task or study.task or defaults.task
    if args.model and not args.task and study.task:
        from ispo.data.tasks import is_chat_task

        if not is_chat_task(study.task):  # a study file written for the tiny model: the model's chat task
            task = defaults.task
    try:
        base = replace(defaults, task=task, steps=args.steps or defaults.steps)
    except ValueError as error:  # a chat task without --model, or a character task with it
        raise StudyError(f"--task: {error}") from None
    if base.steps < 10:
        base = quick_config(base)
    if args.eval_problems:
        base = replace(base, eval=replace(base.eval, problems_per_difficulty=args.eval_problems))
    return study, seeds, base


def run(args: argparse.Namespace) -> int:
    from ispo.cli_args import values_from_args
    from ispo.study.spec import StudyError

    sweep_args = SweepArgs(**values_from_args(args, _fields()))
    try:
        study, seeds, base = prepare(sweep_args)
        from ispo.study.runner import interrupt_on_sigterm, run_sweep

        with interrupt_on_sigterm():
            summary = run_sweep(
                study, seeds, sweep_args.output_dir, base, jobs=sweep_args.jobs, threads=sweep_args.threads
            )
    except StudyError as error:
        print(f"ispo sweep: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ispo sweep: interrupted; rerun the same command to resume (finished cells are kept)", file=sys.stderr)
        return 130
    print(f"wrote {sweep_args.output_dir}/study.md, study.json and study.png", flush=True)
    return 1 if summary.get("failed_cells") else 0
