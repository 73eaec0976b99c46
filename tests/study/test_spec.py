"""Study files and seed ranges: parsed and checked before anything runs; every problem one line naming its key."""

from __future__ import annotations

import pytest

from ispo.study.spec import StudyError, format_seeds, load_study, parse_seeds, parse_study


def test_seed_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("100-104") == [100, 101, 102, 103, 104]
    assert parse_seeds("3") == [3]
    assert parse_seeds("0,2, 5") == [0, 2, 5]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert parse_seeds("4-4") == [4]


@pytest.mark.parametrize(
    "text, message",
    [
        ("4-0", "--seeds: empty range 4-0"),
        ("", "--seeds: expected a range"),
        ("a-b", "--seeds: expected a range"),
        ("0-", "--seeds: expected a range"),
        ("-1", "--seeds: expected a range"),
        ("0..4", "--seeds: expected a range"),
        ("0-2,1", "--seeds: seed 1 given more than once"),
    ],
)
def test_bad_seeds(text, message):
    with pytest.raises(StudyError, match=f"^{message}"):
        parse_seeds(text)


def test_format_seeds_is_the_short_spelling():
    assert format_seeds([0, 1, 2, 3, 4]) == "0-4"
    assert format_seeds([100, 101, 102, 103, 104]) == "100-104"
    assert format_seeds([0, 2, 5]) == "0,2,5"
    assert format_seeds([7, 0, 1, 2]) == "0-2,7"
    assert format_seeds([0, 1]) == "0,1"
    assert format_seeds([]) == ""


def test_a_study_resolves_presets_and_converts_text_values():
    study = parse_study(
        {
            "baseline": "GRPO",
            "task": "arithmetic",
            "methods": {
                "GRPO": {"preset": "grpo"},
                "IFD-only": {"preset": "ispo_paper", "lambda_tok": 0, "drift_threshold": "3e-1"},
                "auto": {"preset": "ispo_paper", "intrinsic_scale": "none"},
                "defaults": None,
                "Dr.GRPO": "dr_grpo",
            },
        }
    )
    assert list(study.methods) == ["GRPO", "IFD-only", "auto", "defaults", "Dr.GRPO"]
    assert study.methods["GRPO"] == {"method": "grpo"}
    assert study.methods["IFD-only"]["lambda_tok"] == 0 and study.methods["IFD-only"]["drift_threshold"] == 0.3
    assert study.methods["IFD-only"]["method"] == "ispo"  # from the preset
    assert study.methods["auto"]["intrinsic_scale"] == "none"
    assert study.methods["defaults"] == {} and study.methods["Dr.GRPO"] == {"method": "dr_grpo"}
    assert study.given["IFD-only"] == {"preset": "ispo_paper", "lambda_tok": 0, "drift_threshold": 0.3}
    assert (study.baseline, study.task) == ("GRPO", "arithmetic")


GOOD = {"GRPO": {"preset": "grpo"}, "ISPO": {"preset": "ispo_paper"}}


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"methods": GOOD}, "baseline: missing"),
        ({"baseline": "PPO", "methods": GOOD}, "baseline: 'PPO' is not among the methods (GRPO, ISPO)"),
        ({"baseline": "GRPO"}, "methods: expected a mapping"),
        ({"baseline": "GRPO", "methods": {}}, "methods: expected a mapping"),
        ({"baseline": "GRPO", "methods": GOOD, "seeds": "0-4"}, "seeds: unknown study key"),
        ({"baseline": "GRPO", "methods": GOOD, "task": "chess"}, "task: unknown task 'chess'"),
        (
            {"baseline": "GRPO", "methods": {**GOOD, "x": {"lamda_tok": 0}}},
            "methods.x.lamda_tok: unknown ISPOConfig field",
        ),
        (
            {"baseline": "GRPO", "methods": {**GOOD, "x": {"preset": "nope"}}},
            "methods.x.preset: unknown preset or method 'nope'",
        ),
        (
            {"baseline": "GRPO", "methods": {**GOOD, "x": {"max_steps": 5}}},
            "methods.x.max_steps: set for every method alike",
        ),
        (
            {"baseline": "GRPO", "methods": {**GOOD, "x": {"hinge_beta": "steep"}}},
            "methods.x.hinge_beta: expected a number",
        ),
        (
            {"baseline": "GRPO", "methods": {**GOOD, "x": {"eta": 1}}},
            "methods.x.eta: ISPOConfig.eta was replaced by hinge_beta",
        ),
        ({"baseline": "GRPO", "methods": {**GOOD, "x": [1, 2]}}, "methods.x: expected a mapping of ISPOConfig fields"),
        ({"baseline": "GRPO", "methods": {**GOOD, "a/b": {}}}, "methods.a/b: a method name is a folder name"),
        ([1, 2], "study: expected a mapping"),
    ],
)
def test_bad_studies_name_the_key(raw, message):
    with pytest.raises(StudyError) as error:
        parse_study(raw)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_values_are_checked_by_building_the_config(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("baseline: GRPO\nmethods:\n  GRPO: {preset: grpo}\n  bad: {preset: ispo_paper, hinge_tau: -2}\n")
    from ispo.demo.run import DemoConfig, check_method

    config = DemoConfig()
    with pytest.raises(StudyError, match=r"^methods\.bad: ISPOConfig\.hinge_tau must be >= 0, got -2$"):
        load_study(path, check=lambda name, fields: check_method(config, fields))
    assert load_study(path).methods["bad"]["hinge_tau"] == -2  # without the check, values pass through
    path.write_text("baseline: GRPO\nmethods:\n  GRPO: {preset: grpo}\n  old: {preset: ispo, rho_h: 0.2}\n")
    with pytest.raises(StudyError, match=r"^methods\.old\.rho_h: ISPOConfig\.rho_h was replaced by entropy_top_frac"):
        load_study(path)
    with pytest.raises(StudyError, match="^--study: no such file"):
        load_study(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("baseline: [GRPO\n")
    with pytest.raises(StudyError, match=r"^--study: .*broken.yaml is not valid YAML \(line \d+\)$"):
        load_study(tmp_path / "broken.yaml")


def test_the_recipe_studies_are_valid():
    from pathlib import Path

    from ispo.demo.run import DemoConfig, check_method

    config = DemoConfig()
    root = Path(__file__).resolve().parents[2] / "recipes" / "studies"
    studies = {
        p.stem: load_study(p, check=lambda name, fields: check_method(config, fields)) for p in root.glob("*.yaml")
    }
    ablations = studies["paper_ablations"]
    assert ablations.baseline == "GRPO"
    assert ablations.methods["Dr.GRPO"] == {"method": "dr_grpo"}
    assert ablations.methods["IFD-only"]["lambda_tok"] == 0 and ablations.methods["token-only"]["lambda_ifd"] == 0
    assert [ablations.methods[name]["critical"] for name in ("E-only", "D-only", "E-union-D")] == [
        "entropy",
        "drift",
        "union",
    ]
    assert ablations.methods["ISPO"] == {"method": "ispo"}  # the paper's: ISPOConfig's defaults
    assert ablations.methods["Symmetric"]["token_asymmetry"] is False and ablations.methods["beta-0"]["hinge_beta"] == 0
    sensitivity = studies["sensitivity"]
    assert sensitivity.methods["top_k-5pc"]["entropy_top_frac"] == 0.05
    assert {name: len(fields) for name, fields in sensitivity.methods.items() if name not in ("GRPO", "ISPO")} == {
        name: 2 for name in sensitivity.methods if name not in ("GRPO", "ISPO")
    }  # one knob at a time on top of the paper's ISPO
    variants = studies["variants"]
    assert variants.baseline == "GRPO"
    changed = {
        name: {k: v for k, v in fields.items() if variants.methods["ISPO"].get(k) != v}
        for name, fields in variants.methods.items()
        if name not in ("GRPO", "ISPO")
    }
    assert changed == {
        "scale-none": {"intrinsic_scale": "none"},
        "scale-outcome-floor": {"intrinsic_scale": "outcome_floor"},
        "scale-decoupled": {"intrinsic_scale": "decoupled"},
        "token-credit-critical": {"token_credit": "critical"},
        "groups-mixed": {"intrinsic_groups": "mixed"},
        "groups-uniform": {"intrinsic_groups": "uniform"},
    }  # one variant at a time on top of the paper's ISPO


def test_threads_are_a_recorded_setting_only_when_not_the_default():
    """Threads round differently, so a sweep resumed with other threads is refused (sweep.json differs)."""
    from dataclasses import replace

    from ispo.demo.run import DemoConfig
    from ispo.study.runner import settings_record

    base = DemoConfig()
    assert "threads" not in settings_record(base)  # old sweep.json files stay valid
    assert settings_record(replace(base, threads=2))["threads"] == 2
