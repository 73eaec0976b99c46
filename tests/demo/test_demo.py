"""The demo end to end on a toy budget, and its CLI wiring."""

from __future__ import annotations

import argparse
import json

import pytest

from ispo.demo import cli
from ispo.demo.run import DemoConfig, rl_records


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_arguments_map_to_the_config():
    config = cli.demo_config_from_args(parse(["--steps", "2", "--seed", "3", "--output-dir", "x", "--methods", "ISPO"]))
    assert (config.steps, config.seed, config.output_dir, config.methods) == (2, 3, "x", ("ISPO",))
    assert (
        not config.rebuild_warm_start and cli.demo_config_from_args(parse(["--rebuild-warm-start"])).rebuild_warm_start
    )
    assert config.eval.problems_per_difficulty == 20  # quick check: small evaluation
    defaults = cli.demo_config_from_args(parse([]))
    assert defaults.eval.problems_per_difficulty == 200 and defaults.threads == 1
    assert (defaults.split, defaults.task) == ("test", "arithmetic")  # confirmation split unless asked
    chosen = cli.demo_config_from_args(parse(["--split", "dev", "--task", "arithmetic"]))
    assert (chosen.split, chosen.task) == ("dev", "arithmetic")
    with pytest.raises(SystemExit):  # argparse's usage error: not a held-out split
        parse(["--split", "train"])


def test_rl_data_is_seeded_identical_across_methods_and_from_train():
    config = DemoConfig(steps=5, prompts_per_step=4)
    rows = rl_records(config)
    assert rows == rl_records(config) and len(rows) == 20
    assert rows != rl_records(DemoConfig(steps=5, prompts_per_step=4, seed=1))
    assert {r["difficulty"] for r in rows} <= {"easy", "medium", "hard"}
    from ispo.data.synthetic import split_of

    assert all(split_of(r["prompt"][3:-1]) == "train" for r in rows)


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_toy_budget(tmp_path, monkeypatch, tiny_demo_config):
    pytest.importorskip("ispo.trainer")
    from ispo.demo.evaluate import HeldoutEvalConfig
    from ispo.demo.run import run_demo

    monkeypatch.setenv("ISPO_CACHE", str(tmp_path / "cache"))
    config = tiny_demo_config(
        output_dir=str(tmp_path / "demo"),
        steps=2,
        max_completion_length=32,
        eval=HeldoutEvalConfig(problems_per_difficulty=3, num_samples=1, max_new_tokens=32),
    )
    report = run_demo(config)
    out = tmp_path / "demo"
    assert report == out / "report.md"
    for method in ("GRPO", "ISPO"):
        records = [json.loads(line) for line in (out / method / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == [1, 2]
        assert "zero_adv_rate/outcome" in records[0]
        evaluation = json.loads((out / method / "eval.json").read_text())
        assert set(evaluation) == {"before", "after", "task", "split", "stalled"}
        assert "sampled/hard" in evaluation["after"]
        assert [g["step"] for g in evaluation["stalled"]["groups"]] == [1, 1, 2, 2]  # 2 steps x 2 prompts
        assert (evaluation["task"], evaluation["split"]) == ("arithmetic", "test")
        info = json.loads((out / method / "run.json").read_text())
        assert info["name"] == method and info["seed"] == 0 and info["split"] == "test"
    assert (out / "training_dynamics.png").exists() and (out / "heldout_accuracy.png").exists()
    text = report.read_text()
    assert "| GRPO | after |" in text and "| ISPO | after |" in text
    summary = json.loads((out / "demo.json").read_text())
    assert summary["seconds"]["total"] > 0


def test_heldout_problems_come_from_the_chosen_split():
    from ispo.data.synthetic import split_of
    from ispo.demo.evaluate import heldout_problems

    dev, test = heldout_problems(10, "dev"), heldout_problems(10, "test")
    assert {split_of(p.expression) for p in dev} == {"dev"} and {split_of(p.expression) for p in test} == {"test"}
    assert heldout_problems(10) == test  # default: the test split
    assert [p.difficulty for p in test[::10]] == ["easy", "medium", "hard"]
    with pytest.raises(ValueError, match="split must be one of dev, test, got 'train'"):
        heldout_problems(10, "train")
    with pytest.raises(ValueError, match="split must be one of dev, test"):
        DemoConfig(split="heldout")


def test_long_runs_cycle_through_the_prompt_pool():
    rows = rl_records(DemoConfig(steps=400, prompts_per_step=8))
    assert len(rows) == 3200


def test_every_demo_setting_with_help_is_a_flag_and_bad_ones_fail_before_training(capsys):
    config = cli.demo_config_from_args(
        parse(["--difficulty-weights", "0.5,0.25,0.25", "--no-progress", "--threads", "2"])
    )
    assert config.difficulty_weights == (0.5, 0.25, 0.25) and not config.progress and config.threads == 2
    assert cli.run(parse(["--methods", "GRPO,PPO"])) == 2
    assert capsys.readouterr().err.strip().startswith("ispo demo: error: unknown preset or method 'PPO'; known: ")
    assert cli.run(parse(["--task", "nope"])) == 2
    assert capsys.readouterr().err.strip().startswith("ispo demo: error: unknown task 'nope'; tasks: arithmetic")
    assert cli.run(parse(["--steps", "0"])) == 2
    assert "steps must be at least 1" in capsys.readouterr().err


def test_the_warm_start_follows_the_task():
    from ispo.demo.warmstart import WarmStartConfig

    assert DemoConfig().warmstart == WarmStartConfig.for_task("arithmetic")
    branching = DemoConfig(task="branching")
    assert branching.warmstart == WarmStartConfig.for_task("branching") and branching.warmstart.task == "branching"
    from dataclasses import replace

    assert replace(branching, task="arithmetic").warmstart == WarmStartConfig.for_task("arithmetic")
    custom = WarmStartConfig(hidden_size=32)  # a customised arithmetic warm start is not swapped silently
    with pytest.raises(ValueError, match="warmstart.task is 'arithmetic' but task is 'branching'"):
        DemoConfig(task="branching", warmstart=custom)
    rows = rl_records(DemoConfig(task="branching", steps=2, prompts_per_step=3))
    assert len(rows) == 6 and all(row["prompt"].startswith("Q: ") for row in rows)
