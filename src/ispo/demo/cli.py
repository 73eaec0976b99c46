"""``ispo demo [--steps N] [--seed S] [--output-dir DIR]``: GRPO vs ISPO on a synthetic task, offline.

Warm-starts a tiny model (cached in the user cache folder after the first run), or takes a pretrained
chat model (``--model smollm2-135m-instruct``: no warm start, the chat task ``word_problems``), trains it with GRPO
and with ISPO (same trainer, seed, data order and budget), evaluates both on held-out problems by
difficulty and writes ``report.md`` and plots to DIR. See docs/demo.md. The flags are the fields of
:class:`ispo.demo.run.DemoConfig` that have help text (``ispo.cli_args``), plus ``--eval-problems``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


def _fields():
    from ispo.cli_args import flag_fields
    from ispo.demo.run import DemoConfig

    return [f for f in flag_fields(DemoConfig) if f.help]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ispo.cli_args import add_flags
    from ispo.demo.run import EVAL_PROBLEMS_HELP

    add_flags(parser, _fields())
    parser.add_argument("--eval-problems", type=int, default=None, help=EVAL_PROBLEMS_HELP)


def demo_config_from_args(args: argparse.Namespace):
    from ispo.cli_args import values_from_args
    from ispo.demo.run import DemoConfig, quick_config

    values = values_from_args(args, _fields())
    # a pretrained model starts from its calibrated budget (docs/study.md); the given flags override it
    config = DemoConfig.for_model(**values) if values.get("model") else DemoConfig(**values)
    if config.steps < 10:
        config = quick_config(config)
    if args.eval_problems:
        config = replace(config, eval=replace(config.eval, problems_per_difficulty=args.eval_problems))
    return config


def run(args: argparse.Namespace) -> int:
    import sys

    from ispo.demo.run import run_demo

    try:
        config = demo_config_from_args(args)
    except ValueError as error:  # --steps 0, an unknown method: before anything is trained
        print(f"ispo demo: error: {error}", file=sys.stderr)
        return 2
    run_demo(config)
    return 0
