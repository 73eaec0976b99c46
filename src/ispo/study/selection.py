"""The protocol's rule for a ``recommended`` variant, applied to finished study summaries (docs/study.md).

Written before the variants ran (docs/study.md, "The paper's ISPO: protocol of the re-measurement",
item 3): the candidates are every method of the selection studies other than the baseline (GRPO) and
the reference (the paper's ISPO), in the order listed. A candidate is *eligible* when its paired
difference to the reference on ``all`` has a 95% interval above 0 and its mean paired difference to the
baseline on ``all`` is above 0. The selected variant is the eligible one with the largest mean paired
difference to the baseline; among eligible candidates within ``TIE_POINTS`` of that largest difference,
the one listed first. No eligible candidate: nothing is selected.

    python -m ispo.study.selection DIR/sensitivity_study.json DIR/variants_study.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ispo.study.stats import paired_difference

TIE_POINTS = 0.005  # 0.5 points of accuracy


def _by_seed(summary: dict, name: str) -> dict[int, float]:
    stats = summary["methods"][name]["accuracy"]["all"]
    return {int(seed): value for seed, value in (stats or {}).get("by_seed", {}).items()}


def select_variant(summaries: list[dict], *, reference: str = "ISPO", baseline: str = "GRPO") -> dict:
    """``{"candidates": [...], "selected": name or None}`` from study summaries (``study.json`` contents).

    Each candidate: ``name``, ``study``, ``vs_reference`` and ``vs_baseline`` (``paired_difference`` on
    ``all``, within its own study, so within one sweep) and ``eligible``.
    """
    candidates = []
    for summary in summaries:
        if reference not in summary["methods"] or baseline not in summary["methods"]:
            raise ValueError(f"{summary.get('study')}: needs the methods {reference} and {baseline}")
        ref, base = _by_seed(summary, reference), _by_seed(summary, baseline)
        for name in summary["methods"]:
            if name in (reference, baseline):
                continue
            values = _by_seed(summary, name)
            vs_reference, vs_baseline = paired_difference(values, ref), paired_difference(values, base)
            eligible = bool(
                vs_reference
                and vs_reference["ci95"] is not None
                and vs_reference["ci95"][0] > 0
                and vs_baseline
                and vs_baseline["mean_diff"] > 0
            )
            candidates.append(
                {
                    "name": name,
                    "study": summary.get("study"),
                    "vs_reference": vs_reference,
                    "vs_baseline": vs_baseline,
                    "eligible": eligible,
                }
            )
    eligible = [c for c in candidates if c["eligible"]]
    selected = None
    if eligible:
        best = max(c["vs_baseline"]["mean_diff"] for c in eligible)
        selected = next(c["name"] for c in eligible if c["vs_baseline"]["mean_diff"] >= best - TIE_POINTS)
    return {"reference": reference, "baseline": baseline, "candidates": candidates, "selected": selected}


def render(result: dict) -> str:
    """The candidates as a markdown table, then the decision."""

    def cell(stats: dict | None) -> str:
        if not stats:
            return "n/a"
        ci = stats["ci95"]
        text = f"{100 * stats['mean_diff']:+.1f}"
        return text if ci is None else f"{text} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"

    lines = [
        f"| candidate | − {result['reference']} (points) | − {result['baseline']} (points) | eligible |",
        "|---|---|---|---|",
    ]
    for c in result["candidates"]:
        eligible = "yes" if c["eligible"] else "no"
        lines.append(f"| {c['name']} | {cell(c['vs_reference'])} | {cell(c['vs_baseline'])} | {eligible} |")
    lines += ["", f"selected: {result['selected'] or 'none (no eligible candidate)'}"]
    return "\n".join(lines) + "\n"


def print_selection(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m ispo.study.selection STUDY.json [STUDY.json ...]", file=sys.stderr)
        return 2
    try:
        summaries = [json.loads(Path(path).read_text()) for path in paths]
        print(render(select_variant(summaries)), end="")
    except (OSError, ValueError, KeyError) as error:
        print(f"ispo.study.selection: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(print_selection())
