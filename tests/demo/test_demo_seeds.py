"""benchmarks/demo_seeds.py: the summary over seeds, on small synthetic run folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "demo_seeds.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("demo_seeds", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_means_and_spreads(tmp_path):
    bench = load_bench()
    for seed, (hard, hc) in enumerate([(0.1, 0.5), (0.3, 0.7)]):
        for method in ("GRPO", "ISPO"):
            run_dir = tmp_path / f"seed{seed}" / method
            run_dir.mkdir(parents=True)
            rows = [{"step": s, "hc/incorrect": hc, "zero_adv_rate/outcome": 0.5} for s in range(1, 5)]
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (run_dir / "eval.json").write_text(
                json.dumps({"before": {"sampled/hard": 0.0}, "after": {"sampled/hard": hard}})
            )
    table = bench.collect(tmp_path, ("GRPO", "ISPO"))
    assert table[("GRPO", "after hard")] == [0.1, 0.3]
    text = bench.summarize(table, ("GRPO", "ISPO"))
    assert "| after hard | 0.200 ± 0.141 (0.100..0.300), 2 |" in text
    assert "| hc/incorrect late | 0.600 ± 0.141 (0.500..0.700), 2 |" in text
    assert text.index("before hard") < text.index("after hard") < text.index("zero_adv_rate/outcome late")
