"""``ispo demo [--steps N] [--seed S] [--output-dir DIR]``: GRPO vs ISPO on a synthetic task, offline.

Warm-starts a tiny model (cached in the user cache folder after the first run), trains it with GRPO
and with ISPO (same trainer, seed, data order and budget), evaluates both on held-out problems by
difficulty and writes ``report.md`` and plots to DIR. See docs/demo.md.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ispo.demo.run import DemoConfig

    defaults = DemoConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"RL steps per method (default {defaults.steps})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the RL runs and their data order")
    parser.add_argument("--output-dir", default=defaults.output_dir, help=f"where to write (default {defaults.output_dir})")
    parser.add_argument(
        "--methods", default=",".join(defaults.methods), help="comma-separated, from GRPO,ISPO (default both)"
    )
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="RL learning rate")
    parser.add_argument("--lambda-ifd", type=float, default=defaults.lambda_ifd, help="ISPO's IFD weight")
    parser.add_argument("--lambda-tok", type=float, default=defaults.lambda_tok, help="ISPO's token-reward weight")
    parser.add_argument(
        "--eval-problems", type=int, default=None, help="held-out problems per difficulty (default 200; 20 when --steps < 10)"
    )
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (default 1: reproducible, and tiny matrices gain little from more)")
    parser.add_argument("--rebuild-warm-start", action="store_true", help="retrain the cached warm start")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace):
    from ispo.demo.run import DemoConfig, quick_config

    config = DemoConfig(
        output_dir=args.output_dir,
        steps=args.steps,
        seed=args.seed,
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        learning_rate=args.learning_rate,
        lambda_ifd=args.lambda_ifd,
        lambda_tok=args.lambda_tok,
        threads=args.threads,
        rebuild_warm_start=args.rebuild_warm_start,
        progress=not args.no_progress,
    )
    if args.steps < 10:
        config = quick_config(config)
    if args.eval_problems:
        config = replace(config, eval=replace(config.eval, problems_per_difficulty=args.eval_problems))
    return config


def run(args: argparse.Namespace) -> int:
    from ispo.demo.run import run_demo

    if args.steps < 1:
        raise SystemExit("ispo demo: --steps must be at least 1")
    run_demo(config_from_args(args))
    return 0
