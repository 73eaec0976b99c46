"""The protocol's selection rule (``ispo.study.selection``) on hand-made summaries."""

from __future__ import annotations

import json

import pytest

from ispo.study.selection import print_selection, select_variant


def summary(study: str, by_seed: dict[str, list[float]]) -> dict:
    return {
        "study": study,
        "methods": {
            name: {"accuracy": {"all": {"by_seed": {str(s): v for s, v in enumerate(values)}}}}
            for name, values in by_seed.items()
        },
    }


GRPO = [0.30, 0.32, 0.28, 0.31, 0.29]
ISPO = [0.27, 0.30, 0.26, 0.28, 0.27]


def test_eligible_needs_an_interval_above_ispo_and_a_mean_above_grpo():
    s = summary(
        "a.yaml",
        {
            "GRPO": GRPO,
            "ISPO": ISPO,
            "above-ispo-below-grpo": [v + 0.02 for v in ISPO],  # beats ISPO surely, not GRPO
            "noisy": [0.40, 0.20, 0.40, 0.20, 0.40],  # mean above GRPO, interval vs ISPO spans 0
            "good": [v + 0.01 for v in GRPO],
        },
    )
    result = select_variant([s])
    eligible = {c["name"]: c["eligible"] for c in result["candidates"]}
    assert eligible == {"above-ispo-below-grpo": False, "noisy": False, "good": True}
    assert result["selected"] == "good"


def test_ties_within_half_a_point_go_to_the_first_listed_and_none_without_eligible():
    first = summary("a.yaml", {"GRPO": GRPO, "ISPO": ISPO, "x": [v + 0.010 for v in GRPO]})
    second = summary("b.yaml", {"GRPO": GRPO, "ISPO": ISPO, "y": [v + 0.014 for v in GRPO]})
    assert select_variant([first, second])["selected"] == "x"  # 1.4 vs 1.0 points: within 0.5
    far = summary("b.yaml", {"GRPO": GRPO, "ISPO": ISPO, "y": [v + 0.020 for v in GRPO]})
    assert select_variant([first, far])["selected"] == "y"
    none = summary("a.yaml", {"GRPO": GRPO, "ISPO": ISPO, "z": ISPO})
    assert select_variant([none])["selected"] is None


def test_the_command_prints_the_table_and_refuses_a_summary_without_the_reference(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(summary("a.yaml", {"GRPO": GRPO, "ISPO": ISPO, "x": [v + 0.01 for v in GRPO]})))
    assert print_selection([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| x | +3.4 [+2.7, +4.1] | +1.0 " in out and "selected: x" in out
    path.write_text(json.dumps(summary("a.yaml", {"GRPO": GRPO, "x": GRPO})))
    assert print_selection([str(path)]) == 2
    assert "needs the methods ISPO and GRPO" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["/no/such/file.json"]])
def test_bad_arguments_are_one_line_and_exit_2(argv, capsys):
    assert print_selection(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
