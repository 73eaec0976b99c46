"""``study.json`` / ``study.md`` from finished cell folders (written by hand here: no training)."""

from __future__ import annotations

import json
import math

import pytest

from ispo.demo.evaluate import HeldoutEvalConfig
from ispo.demo.run import DemoConfig
from ispo.study.spec import Study
from ispo.study.summary import write_summary

# held-out sampled accuracy "all" per (method, seed); hard = all / 2
ALL = {"GRPO": {0: 0.20, 1: 0.30, 2: 0.25}, "ISPO": {0: 0.22, 1: 0.29, 2: 0.30}}


def write_cell(root, name, seed, accuracy, hc):
    folder = root / name / f"seed{seed}"
    folder.mkdir(parents=True)
    levels = {"easy": accuracy + 0.1, "medium": accuracy, "hard": accuracy / 2, "all": accuracy}
    after = {f"sampled/{level}": value for level, value in levels.items()}
    (folder / "eval.json").write_text(json.dumps({"before": {}, "after": after, "split": "dev"}))
    rows = [
        {"step": s, "hc/incorrect": hc + 0.01 * s, "zero_adv_rate/outcome": 0.5, "entropy/pi_old": 0.1}
        for s in range(1, 9)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "run.json").write_text(json.dumps({"name": name, "wall_seconds": 10.0 + seed}))


@pytest.fixture
def study_dir(tmp_path):
    for name, by_seed in ALL.items():
        for seed, value in by_seed.items():
            write_cell(tmp_path, name, seed, value, hc=0.5 if name == "GRPO" else 0.6)
    (tmp_path / "ISPO" / "seed3").mkdir()  # an interrupted cell: no run.json, left out
    return tmp_path


def test_study_json_has_means_intervals_and_paired_differences(study_dir):
    study = Study(baseline="GRPO", methods={"GRPO": {"method": "grpo"}, "ISPO": {"method": "ispo"}}, path="s.yaml")
    base = DemoConfig(split="dev", steps=8, eval=HeldoutEvalConfig(problems_per_difficulty=50, num_samples=2))
    before = {"sampled/all": 0.2, "sampled/hard": 0.05}
    summary = write_summary(study_dir, study, [0, 1, 2, 3], base, before)
    assert (summary["model"], summary["task"], summary["split"], summary["seeds"], summary["steps"]) == (
        "tiny",
        "arithmetic",
        "dev",
        [0, 1, 2, 3],
        8,
    )
    assert summary["cells"] == {"finished": 6, "total": 8}
    ispo = summary["methods"]["ISPO"]
    assert ispo["seeds"] == [0, 1, 2]
    # by hand: ISPO all = 0.22, 0.29, 0.30 -> mean 0.27; sd = sqrt((0.05² + 0.02² + 0.03²) / 2)
    sd = math.sqrt((0.05**2 + 0.02**2 + 0.03**2) / 2)
    assert ispo["accuracy"]["all"]["mean"] == pytest.approx(0.27)
    assert ispo["accuracy"]["all"]["ci95"] == pytest.approx([0.27 - 4.3027 * sd / 3**0.5, 0.27 + 4.3027 * sd / 3**0.5])
    # paired: d = +0.02, -0.01, +0.05 -> mean 0.02; deviations 0, -0.03, 0.03 -> sd = 0.03
    paired = ispo["vs_baseline"]["all"]
    assert paired["mean_diff"] == pytest.approx(0.02) and paired["seeds"] == [0, 1, 2]
    assert paired["ci95"] == pytest.approx([0.02 - 4.3027 * 0.03 / 3**0.5, 0.02 + 4.3027 * 0.03 / 3**0.5])
    assert ispo["vs_baseline"]["hard"]["mean_diff"] == pytest.approx(0.01)
    assert summary["methods"]["GRPO"]["vs_baseline"]["all"]["mean_diff"] == 0
    for level in ("easy", "medium", "hard", "all"):
        assert set(ispo["accuracy"][level]) >= {"mean", "ci95"} and set(ispo["vs_baseline"][level]) >= {
            "mean_diff",
            "ci95",
        }
    # early / late: the first / last 2 of 8 steps; hc = 0.6 + 0.01 * step
    assert ispo["indices"]["hc/incorrect early"]["mean"] == pytest.approx(0.615)
    assert ispo["indices"]["hc/incorrect late"]["mean"] == pytest.approx(0.675)
    assert ispo["indices"]["zero_adv_rate/outcome late"]["mean"] == pytest.approx(0.5)
    assert ispo["indices"]["entropy/pi_old late"]["mean"] == pytest.approx(0.1)
    assert ispo["indices"]["zero_adv_rate/composite late"] is None  # not logged by these runs
    assert ispo["train_seconds"]["mean"] == pytest.approx(11.0)
    assert json.loads((study_dir / "study.json").read_text())["methods"]["ISPO"]["accuracy"]["all"]["by_seed"] == {
        "0": 0.22,
        "1": 0.29,
        "2": 0.30,
    }


def test_every_table_of_study_md_says_its_split_and_seeds(study_dir):
    study = Study(baseline="GRPO", methods={"GRPO": {"method": "grpo"}, "ISPO": {"method": "ispo"}}, path="s.yaml")
    write_summary(study_dir, study, [0, 1, 2], DemoConfig(split="test", steps=8), {"sampled/all": 0.2})
    text = (study_dir / "study.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ") and "Methods" not in line]
    assert len(headings) == 3
    for heading in headings:
        assert "seeds 0-2" in heading
    assert all("split `test`" in heading for heading in headings[:2])  # the held-out tables
    paired_rows = text.split("## Paired difference")[1].split("##")[0]
    assert "| ISPO | +0.020 [-0.055, +0.095] |" in paired_rows  # easy: mean +0.02, interval across 0, not bold
    assert (study_dir / "study.png").stat().st_size > 0


def test_the_fig6_quantity_is_summarised_with_paired_differences(tmp_path):
    """eval.json's ``stalled`` entry -> study.json's ``stalled`` (over seeds, later - start, vs baseline)."""
    later = {"GRPO": {0: 0.5, 1: 0.4}, "ISPO": {0: 0.7, 1: 0.5}}
    for name, by_seed in later.items():
        for seed, value in by_seed.items():
            write_cell(tmp_path, name, seed, 0.3, hc=0.5)
            path = tmp_path / name / f"seed{seed}" / "eval.json"
            evaluation = json.loads(path.read_text())
            evaluation["stalled"] = {"stalled": 10 + seed, "solved_later": value, "solved_at_start": 0.4}
            path.write_text(json.dumps(evaluation))
    write_cell(tmp_path, "ISPO", 2, 0.3, hc=0.5)  # a cell from before the measurement: no stalled entry
    study = Study(baseline="GRPO", methods={"GRPO": {"method": "grpo"}, "ISPO": {"method": "ispo"}}, path="s.yaml")
    summary = write_summary(tmp_path, study, [0, 1, 2], DemoConfig(split="dev", steps=8), {})
    stalled = summary["methods"]["ISPO"]["stalled"]
    assert stalled["prompts"]["mean"] == pytest.approx(10.5)
    assert stalled["solved_later"]["mean"] == pytest.approx(0.6) and stalled["solved_later"]["n"] == 2
    assert stalled["later_vs_start"]["mean_diff"] == pytest.approx(0.2)
    assert stalled["vs_baseline"]["mean_diff"] == pytest.approx(0.15) and stalled["vs_baseline"]["seeds"] == [0, 1]
    text = (tmp_path / "study.md").read_text()
    assert "the paper's Fig. 6" in text and "| ISPO | 10.5 [" in text


def test_a_pretrained_model_is_recorded_and_named_in_the_heading(study_dir):
    from types import SimpleNamespace

    study = Study(baseline="GRPO", methods={"GRPO": {"method": "grpo"}, "ISPO": {"method": "ispo"}}, path="s.yaml")
    # the settings a sweep with --model passes (a namespace: building the DemoConfig would look for the model)
    base = SimpleNamespace(**{**vars(DemoConfig(split="test", steps=8)), "model": "smollm2-135m-instruct"})
    base.task = "word_problems"
    summary = write_summary(study_dir, study, [0, 1, 2], base, {"sampled/all": 0.2})
    assert (summary["model"], summary["task"]) == ("smollm2-135m-instruct", "word_problems")
    text = (study_dir / "study.md").read_text()
    heading = text.splitlines()[0]
    assert heading == "# Study s.yaml: model `smollm2-135m-instruct`, task `word_problems`, split `test`, seeds 0-2"
    assert "from the same pretrained model (no warm start)" in text


def test_format_compliance_is_summarised_when_the_evaluation_measured_it(study_dir):
    """A pretrained model's evaluation adds ``format/sampled/LEVEL`` (parseable answers); the tiny one does not."""
    study = Study(baseline="GRPO", methods={"GRPO": {"method": "grpo"}, "ISPO": {"method": "ispo"}}, path="s.yaml")
    base = DemoConfig(split="test", steps=8)
    summary = write_summary(study_dir, study, [0, 1, 2], base, {"sampled/all": 0.2})
    assert "format" not in summary["methods"]["ISPO"] and "before_format" not in summary
    assert "Format compliance" not in (study_dir / "study.md").read_text()

    for seed, value in {0: 0.9, 1: 0.5, 2: 0.1}.items():
        path = study_dir / "ISPO" / f"seed{seed}" / "eval.json"
        evaluation = json.loads(path.read_text())
        evaluation["after"].update({"format/sampled/easy": value, "format/sampled/hard": value / 2})
        path.write_text(json.dumps(evaluation))
    before = {"sampled/all": 0.2, "format/sampled/easy": 0.95, "format/sampled/hard": 0.9}
    summary = write_summary(study_dir, study, [0, 1, 2], base, before)
    answer_format = summary["methods"]["ISPO"]["format"]
    assert answer_format["easy"]["mean"] == pytest.approx(0.5) and answer_format["easy"]["n"] == 3
    assert answer_format["hard"]["mean"] == pytest.approx(0.25) and answer_format["medium"] is None
    assert "format" not in summary["methods"]["GRPO"]
    assert summary["before_format"]["easy"] == 0.95 and summary["before_format"]["medium"] is None
    text = (study_dir / "study.md").read_text()
    table = text.split("## Format compliance (split `test`, seeds 0-2)")[1].split("##")[0]
    assert "| before RL (warm start) | 0.950 | n/a | 0.900 | n/a | |" in table
    assert "| ISPO | 0.500 [" in table and "| GRPO |" not in table
