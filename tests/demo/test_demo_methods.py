"""``ispo demo --methods``: presets, aliases and registered methods, each trained with its own config."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_methods_accept_presets_aliases_and_registered_methods():
    from ispo.demo.run import DemoConfig

    DemoConfig(methods=("GRPO", "Dr.GRPO", "ISPO", "ISPO-paper", "self_certainty", "rlpr", "zvp", "prog", "pacr"))
    with pytest.raises(ValueError, match="unknown preset or method 'nope'"):
        DemoConfig(methods=("GRPO", "nope"))
    with pytest.raises(ValueError, match="each at most once"):
        DemoConfig(methods=("GRPO", "GRPO"))


def test_each_method_gets_its_presets_fields_and_the_shared_budget(tmp_path: Path):
    from ispo.demo.run import DemoConfig, trainer_config

    config = DemoConfig(steps=3, seed=5)
    grpo = trainer_config(config, "GRPO", tmp_path / "a")
    dr = trainer_config(config, "Dr.GRPO", tmp_path / "b")
    rlpr = trainer_config(config, "rlpr", tmp_path / "c")
    assert (grpo.method, dr.method, rlpr.method) == ("grpo", "dr_grpo", "rlpr")
    assert (dr.loss_type, dr.scale_rewards) == ("dr_grpo", "none")
    for args in (grpo, dr, rlpr):
        assert (args.max_steps, args.seed, args.learning_rate) == (3, 5, config.learning_rate)
        assert args.ispo_diagnostics  # every method logs the failure-mode diagnostics


def test_methods_are_field_mappings_on_top_of_a_preset(tmp_path: Path):
    from ispo.demo.run import DemoConfig, method_fields, trainer_config

    assert method_fields("ISPO-paper") == {"method": "ispo"}
    assert method_fields({"preset": "ispo_paper", "lambda_tok": 0}) == {"method": "ispo", "lambda_tok": 0}
    assert method_fields({"lambda_ifd": 0.1}) == {"lambda_ifd": 0.1}  # on top of ISPOConfig's defaults
    config = DemoConfig(steps=3, seed=5)
    args = trainer_config(config, {"preset": "ispo_paper", "lambda_tok": 0, "critical": "union"}, tmp_path / "a")
    assert (args.method, args.lambda_tok, args.lambda_ifd, args.critical) == ("ispo", 0, 0.5, "union")
    assert (args.max_steps, args.seed) == (3, 5)
    with pytest.raises(ValueError, match="^lamda_tok: unknown ISPOConfig field$"):
        trainer_config(config, {"preset": "ispo_paper", "lamda_tok": 0}, tmp_path / "b")
    with pytest.raises(ValueError, match="^max_steps: set for every method alike"):
        trainer_config(config, {"preset": "grpo", "max_steps": 7}, tmp_path / "c")
    with pytest.raises(ValueError, match="unknown preset or method 'nope'"):
        trainer_config(config, {"preset": "nope"}, tmp_path / "d")
    with pytest.raises(ValueError, match="ISPOConfig.hinge_beta must be >= 0"):
        trainer_config(config, {"preset": "ispo_paper", "hinge_beta": -1}, tmp_path / "e")
    with pytest.raises(ValueError, match="^eta: ISPOConfig.eta was replaced by hinge_beta"):
        trainer_config(config, {"preset": "ispo_paper", "eta": 1}, tmp_path / "f")
