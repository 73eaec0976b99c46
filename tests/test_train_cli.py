"""``ispo train``: recipes -> ISPOConfig, flags from the dataclass fields, bad rows, and a tiny run."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import pytest
import yaml

from ispo.train import RecipeArgs, build_examples, load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


@pytest.mark.parametrize("name", ["tiny_cpu", "qwen2.5-math-1.5b", "qwen2.5-math-7b", "qwen2.5-7b"])
def test_every_recipe_loads_into_a_valid_config(name, monkeypatch):
    # paper-scale recipes ask for bf16 and vLLM; validation of the fields is what is tested here
    overrides = {"use_cpu": "true", "bf16": "false", "use_vllm": "false"} if name != "tiny_cpu" else {}
    recipe, config = load_recipe(RECIPES / f"{name}.yaml", overrides)
    assert isinstance(recipe, RecipeArgs)
    assert (config.method, config.lambda_ifd, config.lambda_tok) == ("ispo", 0.5, 0.1)  # the paper's
    assert config.logging_steps == 1
    if name != "tiny_cpu":  # the paper's recipe (Appendix A.2)
        assert (config.beta, config.epsilon, config.epsilon_high) == (0.0, 0.2, 0.28)
        assert (config.learning_rate, config.num_generations, config.temperature) == (1e-6, 8, 1.0)
        assert config.max_completion_length == (8192 if name == "qwen2.5-7b" else 4096)


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES.glob("*_qwen2.5-math-7b.yaml")))
def test_baseline_recipes_share_the_papers_budget(name):
    overrides = {"use_cpu": "true", "bf16": "false", "use_vllm": "false"}
    _, ispo = load_recipe(RECIPES / "qwen2.5-math-7b.yaml", overrides)
    _, config = load_recipe(RECIPES / f"{name}.yaml", overrides)
    budget = ("learning_rate", "num_generations", "temperature", "max_completion_length", "max_steps", "epsilon_high")
    assert {k: getattr(config, k) for k in budget} == {k: getattr(ispo, k) for k in budget}


def test_removed_fields_are_one_line_errors(tmp_path, capsys):
    """A recipe or flag from the earlier reading of the paper names the field's replacement, exit 2."""
    from ispo.cli import main

    assert main(["train", "--config", str(RECIPES / "tiny_cpu.yaml"), "--kappa", "2"]) == 2
    assert "ISPOConfig.kappa was removed" in capsys.readouterr().err
    old = tmp_path / "old.yaml"
    old.write_text((RECIPES / "tiny_cpu.yaml").read_text() + "rho_h: 0.2\n")
    assert main(["train", "--config", str(old)]) == 2
    err = capsys.readouterr().err
    assert "ISPOConfig.rho_h was replaced by entropy_top_frac" in err and "Traceback" not in err


def test_a_learning_rate_written_as_yaml_text_is_a_number(tmp_path):
    """YAML reads `learning_rate: 1e-4` as the text '1e-4'; the recipe loads it as the number."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text((RECIPES / "tiny_cpu.yaml").read_text().replace("learning_rate: 0.005", "learning_rate: 1e-4"))
    _, config = load_recipe(recipe)
    assert config.learning_rate == 1e-4 and isinstance(config.learning_rate, float)


def test_flags_override_the_recipe_with_typed_values(tmp_path):
    recipe, config = load_recipe(
        RECIPES / "tiny_cpu.yaml",
        {
            "lambda_ifd": "0.1",
            "max_steps": "3",
            "critical": "union",
            "output_dir": "123",
            "report_to": "[]",
            "tiny_num_layers": "1",
            "system_prompt": "null",
        },
    )
    assert (config.lambda_ifd, config.max_steps, config.critical) == (0.1, 3, "union")
    assert config.output_dir == "123" and config.report_to == []
    assert recipe.tiny_num_layers == 1 and recipe.system_prompt is None


def test_unknown_field_and_bad_values_are_named(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"model": "tiny", "lamda_ifd": 0.1}))
    with pytest.raises(ValueError, match="lamda_ifd"):
        load_recipe(path)
    with pytest.raises(ValueError, match="ISPOConfig.entropy_top_frac"):
        load_recipe(RECIPES / "tiny_cpu.yaml", {"entropy_top_frac": "2"})


def test_bad_rows_fail_with_their_index():
    recipe = RecipeArgs(dataset="unused")
    rows = [{"problem": "1+1", "answer": "2"}, {"problem": "2+2", "answer": 4}, {"problem": "", "answer": "6"}]
    with pytest.raises(ValueError, match="dataset row 2: missing or empty 'problem'"):
        build_examples(recipe, rows)
    with pytest.raises(ValueError, match="dataset row 0: missing or empty 'answer'"):
        build_examples(recipe, [{"problem": "x"}])
    examples = build_examples(recipe, rows[:2])
    assert examples[1]["answer"] == "4" and examples[0]["prompt"][-1]["role"] == "user"
    assert "\\boxed{}" in examples[0]["prompt"][-1]["content"]


def test_raw_text_prompts_and_system_prompt():
    recipe = RecipeArgs(conversational=False, system_prompt="Be brief.", prompt_template="Q: {problem} {x}")
    (example,) = build_examples(recipe, [{"problem": "1+1", "answer": "2"}])
    assert example["prompt"] == "Be brief.\n\nQ: 1+1 {x}"


@pytest.mark.slow
def test_train_tiny_cpu_two_steps(tmp_path, monkeypatch):
    from ispo.cli import main
    from ispo.trainer import ISPOTrainer

    trainers = []  # weak references: the run must free its trainer before it returns
    init = ISPOTrainer.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        trainers.append(weakref.ref(self))

    monkeypatch.setattr(ISPOTrainer, "__init__", recording_init)

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"problem": f"{i}+1", "answer": str(i + 1)}) + "\n" for i in range(8)))
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            str(RECIPES / "tiny_cpu.yaml"),
            "--max_steps",
            "2",
            "--output_dir",
            str(out),
            "--dataset",
            str(data),
            "--max_completion_length",
            "16",
            "--tiny_hidden_size",
            "32",
        ]
    )
    assert code == 0
    # freed while the interpreter is whole: under DDP the trainer holds the process group, whose
    # destruction during interpreter finalization can abort a finished run
    assert len(trainers) == 1 and trainers[0]() is None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for key in (
        "zero_adv_rate/outcome",
        "zero_adv_rate/composite",
        "hc/incorrect",
        "critical/frac",
        "accuracy",
        "no_answer_rate",
        "completion_length",
        "entropy/pi_old",
        "wall_time",
    ):
        assert key in records[-1]
    assert (out / "tiny_model" / "config.json").exists() and (out / "model.safetensors").exists()


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    from ispo.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "1+1", "answer": "2"}\n{"problem": "2+2", "answer": null}\n')
    assert main(["train", "--config", str(RECIPES / "tiny_cpu.yaml"), "--hinge_beta", "-1"]) == 2
    assert "ISPOConfig.hinge_beta" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--config",
                str(RECIPES / "tiny_cpu.yaml"),
                "--dataset",
                str(bad),
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "dataset row 1" in capsys.readouterr().err


def test_an_unloadable_local_model_is_one_line_and_exit_2(tmp_path, capsys):
    from ispo.cli import main

    missing = tmp_path / "no-such-checkpoint"
    argv = ["train", "--config", str(RECIPES / "tiny_cpu.yaml"), "--output_dir", str(tmp_path / "out")]
    assert main([*argv, "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    expected = f"ispo train: error: model {missing}: no such folder (a hub id has the form org/name)"
    assert err.strip().splitlines() == [expected]
    (tmp_path / "empty").mkdir()
    assert main([*argv, "--model", str(tmp_path / "empty")]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_an_unknown_hub_id_offline_is_one_line_and_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    argv = [
        "train",
        "--config",
        str(RECIPES / "tiny_cpu.yaml"),
        "--output_dir",
        str(tmp_path / "out"),
        "--model",
        "ispo-tests/no-such-model",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-m", "ispo", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ispo train")]
    assert len(lines) == 1 and "model 'ispo-tests/no-such-model' cannot be loaded" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_flag_value_names_the_flag(capsys):
    from ispo.cli import main

    assert main(["train", "--config", str(RECIPES / "tiny_cpu.yaml"), "--lambda_ifd", "lots"]) == 2
    assert "ispo train: error: --lambda_ifd: expected a number, got 'lots'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny_cpu", "qwen2.5-math-7b", "grpo_qwen2.5-math-7b"])
def test_recipes_read_the_same_as_trls_own_parser(name, tmp_path):
    """Contract with TRL: `ispo train` reads a recipe into the same ISPOConfig values as TRL's ``TrlParser``
    would. We keep our reader (ispo.cli_args) for its one-line errors, which TrlParser prints as a full usage
    screen, and for naming the replacement of a removed field; this test catches the two drifting apart."""
    import yaml
    from trl import TrlParser

    from ispo.trainer import ISPOConfig

    overrides = {"use_cpu": "true", "bf16": "false", "use_vllm": "false"}
    text = (RECIPES / f"{name}.yaml").read_text()
    raw = yaml.safe_load(text) | {"use_cpu": True, "bf16": False, "use_vllm": False}
    config_only = tmp_path / "config.yaml"
    recipe_names = {f.name for f in __import__("dataclasses").fields(RecipeArgs)}
    config_only.write_text(yaml.safe_dump({k: v for k, v in raw.items() if k not in recipe_names}))
    (theirs,) = TrlParser((ISPOConfig,)).parse_args_and_config(["--config", str(config_only)])
    _, ours = load_recipe(RECIPES / f"{name}.yaml", overrides)
    for key in raw:
        if key in recipe_names:
            continue
        assert getattr(ours, key) == getattr(theirs, key), key
