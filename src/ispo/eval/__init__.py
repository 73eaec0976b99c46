"""``ispo eval``: score a model on the standard math benchmarks with the training reward's grader.

Light to import: the metrics and benchmark loaders need only numpy; the runner and backends (torch,
transformers) load on first use of their names.
"""

from ispo.eval.benchmarks import BENCHMARKS, PAPER_BENCHMARKS, BenchmarkError, BenchmarkSpec, Problem, load_benchmark
from ispo.eval.metrics import bootstrap_ci, bootstrap_macro_ci, default_pass_ks, pass_at_k

_LAZY = {
    "EvalConfig": "ispo.eval.runner",
    "EvalError": "ispo.eval.runner",
    "evaluate": "ispo.eval.runner",
    "HFBackend": "ispo.eval.backends",
    "VLLMBackend": "ispo.eval.backends",
    "Generation": "ispo.eval.backends",
    "summarize": "ispo.eval.summary",
    "markdown_table": "ispo.eval.summary",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ispo.eval' has no attribute {name!r}")


__all__ = [
    "BENCHMARKS",
    "PAPER_BENCHMARKS",
    "BenchmarkError",
    "BenchmarkSpec",
    "EvalConfig",
    "EvalError",
    "Generation",
    "HFBackend",
    "Problem",
    "VLLMBackend",
    "bootstrap_ci",
    "bootstrap_macro_ci",
    "default_pass_ks",
    "evaluate",
    "load_benchmark",
    "markdown_table",
    "pass_at_k",
    "summarize",
]
