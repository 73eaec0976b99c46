"""The ``ispo`` command line: ``ispo train | eval | demo | report | sweep``.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only parses and dispatches, importing the heavy module of the chosen command alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ispo.train", "train a model with ISPO (or GRPO: weights 0) from a YAML recipe"),
    "eval": ("ispo.eval.cli", "evaluate a model on the standard math benchmarks"),
    "demo": ("ispo.demo.cli", "offline demo: GRPO vs ISPO on a synthetic task with a tiny model"),
    "report": ("ispo.report", "plot and tabulate runs from their metrics.jsonl"),
    "sweep": ("ispo.study.cli", "run a study (methods x seeds through the demo pipeline) with paired statistics"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ispo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        # Only the chosen command's module is imported: `ispo report` must not pay for torch/TRL.
        if argv[:1] == [name]:
            importlib.import_module(module_name).add_arguments(sub_parser)
    return parser


def _version() -> str:
    from ispo import __version__

    return f"ispo {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
