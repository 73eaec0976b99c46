"""``ispo eval``: flags derived from :class:`ispo.eval.runner.EvalConfig`, nothing else.

    ispo eval --model PATH_OR_HUB_ID --benchmarks math500,aime24 --output-dir runs/eval/base \\
        [--data-dir DIR] [--n-samples N --temperature T] [--max-new-tokens M] [--limit K] \\
        [--batch-size B] [--backend hf|vllm] [--flexible-extract]

``--model`` also takes a ``.gguf`` file or ``smollm2-135m-instruct`` (``ispo.models.loading.resolve_model``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ispo.cli_args import add_flags, flag_fields, values_from_args
from ispo.eval.benchmarks import BenchmarkError
from ispo.eval.runner import EvalConfig, EvalError, evaluate
from ispo.models.loading import first_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field, typed and documented by the field itself (``ispo.cli_args``)."""
    add_flags(parser, flag_fields(EvalConfig))


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    return EvalConfig(**values_from_args(args, flag_fields(EvalConfig)))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = evaluate(config_from_args(args))
    except (EvalError, BenchmarkError, ImportError, OSError) as error:  # OSError: an unwritable output folder, say
        print(f"ispo eval: error: {first_line(error)}", file=sys.stderr)
        return 2
    from ispo.eval.summary import markdown_table

    if summary.get("extraction"):
        print(f"\nextraction: {summary['extraction']}")
    for metric in summary["metrics"]:
        print(f"\n{metric}\n" + markdown_table([summary], metric))
    print(f"written to {args.output_dir}/summary.json and summary.md")
    return 0
