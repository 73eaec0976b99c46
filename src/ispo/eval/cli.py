"""``ispo eval``: flags derived from :class:`ispo.eval.runner.EvalConfig`, nothing else.

    ispo eval --model PATH_OR_HUB_ID --benchmarks math500,aime24 --output-dir runs/eval/base \\
        [--data-dir DIR] [--n-samples N --temperature T] [--max-new-tokens M] [--limit K] \\
        [--batch-size B] [--backend hf|vllm]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import types
import typing

from ispo.eval.benchmarks import BenchmarkError
from ispo.eval.runner import EvalConfig, EvalError, evaluate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field, typed and documented by the field itself."""
    hints = typing.get_type_hints(EvalConfig)
    for spec in dataclasses.fields(EvalConfig):
        flag = "--" + spec.name.replace("_", "-")
        kind, optional = _unwrap_optional(hints[spec.name])
        kwargs: dict = {"help": spec.metadata.get("help", "").replace("%", "%%"), "dest": spec.name}
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required:
            kwargs["required"] = True
        else:
            default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
            if "default" not in kwargs["help"]:
                kwargs["help"] += f" (default: {_show(default)})"
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["default"] = None if optional else spec.default
        elif typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        elif typing.get_origin(kind) is list:
            item_type = typing.get_args(kind)[0]
            kwargs["type"] = lambda text, item_type=item_type: [item_type(x.strip()) for x in text.split(",") if x.strip()]
            kwargs["metavar"] = "A,B,..."
        else:
            kwargs["type"] = kind
        if not required and "default" not in kwargs:
            kwargs["default"] = argparse.SUPPRESS  # absent flags keep the dataclass default
        parser.add_argument(flag, **kwargs)


def _unwrap_optional(kind):
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return args[0], True
    return kind, False


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    names = {spec.name for spec in dataclasses.fields(EvalConfig)}
    return EvalConfig(**{key: value for key, value in vars(args).items() if key in names})


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = evaluate(config_from_args(args))
    except (EvalError, BenchmarkError, ImportError, OSError) as error:  # OSError: model or tokenizer not found
        print(f"ispo eval: error: {error}", file=sys.stderr)
        return 2
    from ispo.eval.summary import markdown_table

    for metric in summary["metrics"]:
        print(f"\n{metric}\n" + markdown_table([summary], metric))
    print(f"written to {args.output_dir}/summary.json and summary.md")
    return 0
