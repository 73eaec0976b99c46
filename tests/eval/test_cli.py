import argparse
import dataclasses
import json

import pytest

from ispo.cli import main
from ispo.eval import EvalConfig
from ispo.eval.cli import add_arguments, config_from_args

from .conftest import write_jsonl

ROWS = [{"id": f"q{i}", "problem": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)]


def parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_every_config_field_is_a_flag():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    for spec in dataclasses.fields(EvalConfig):
        assert "--" + spec.name.replace("_", "-") in flags


def test_flags_parse_to_typed_config_values():
    config = parse(
        [
            "--model",
            "m",
            "--output-dir",
            "o",
            "--benchmarks",
            "math500,aime24",
            "--n-samples",
            "16",
            "--temperature",
            "0.6",
            "--pass-k",
            "4,16",
            "--no-chat",
            "--backend",
            "vllm",
            "--limit",
            "5",
        ]
    )
    assert config.benchmarks == ["math500", "aime24"] and config.pass_k == [4, 16]
    assert config.n_samples == 16 and config.temperature == 0.6 and config.limit == 5
    assert config.chat is False and config.backend == "vllm"
    defaults = parse(["--model", "m", "--output-dir", "o"])
    assert defaults == EvalConfig(model="m", output_dir="o")


def test_missing_required_flags_and_bad_choices_exit(capsys):
    with pytest.raises(SystemExit):
        parse(["--output-dir", "o"])
    with pytest.raises(SystemExit):
        parse(["--model", "m", "--output-dir", "o", "--backend", "tgi"])


def test_bad_input_is_a_clear_one_line_error(tmp_path, capsys):
    code = main(["eval", "--model", "m", "--benchmarks", "mathh500", "--output-dir", str(tmp_path)])
    assert code == 2
    assert "ispo eval: error: unknown benchmark 'mathh500'" in capsys.readouterr().err
    code = main(["eval", "--model", "m", "--n-samples", "4", "--output-dir", str(tmp_path)])
    assert code == 2 and "greedy decoding" in capsys.readouterr().err
    benchmark = write_jsonl(tmp_path / "toy.jsonl", ROWS)
    missing = str(tmp_path / "no-such-checkpoint")
    code = main(["eval", "--model", missing, "--benchmarks", str(benchmark), "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "no-such-checkpoint: no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_checkpoint_without_tokenizer_takes_one_by_flag(tiny_checkpoint, tokenizer, tmp_path):
    from ispo.models.tiny import build_tiny_model

    weights_only = tmp_path / "weights-only"
    build_tiny_model(tokenizer).save_pretrained(weights_only)
    argv = [
        "eval",
        "--model",
        str(weights_only),
        "--benchmarks",
        str(write_jsonl(tmp_path / "toy.jsonl", ROWS)),
        "--limit",
        "1",
        "--max-new-tokens",
        "2",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    assert main([*argv, "--tokenizer", str(tiny_checkpoint)]) == 0


@pytest.mark.slow
def test_end_to_end_on_a_saved_checkpoint(tiny_checkpoint, tmp_path, capsys):
    """A save_pretrained folder, greedy then sampled, through the real `ispo eval` command."""
    benchmark = write_jsonl(tmp_path / "toy.jsonl", ROWS)
    output_dir = tmp_path / "greedy"
    argv = [
        "eval",
        "--model",
        str(tiny_checkpoint),
        "--benchmarks",
        str(benchmark),
        "--limit",
        "3",
        "--max-new-tokens",
        "8",
        "--batch-size",
        "2",
        "--output-dir",
        str(output_dir),
        "--model-name",
        "tiny",
    ]
    assert main(argv) == 0
    assert "| tiny | 0.0 | 0.0 |" in capsys.readouterr().out  # a random tiny model answers nothing
    records = [json.loads(line) for line in (output_dir / "samples.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in sorted(records, key=lambda r: r["problem_id"])] == ["q0", "q1", "q2"]
    assert all(r["num_tokens"] <= 8 and r["mean_logprob"] < 0 for r in records)
    assert main(argv) == 0  # resumes: nothing left to do
    assert len((output_dir / "samples.jsonl").read_text().splitlines()) == 3

    sampled_dir = tmp_path / "sampled"
    argv = [
        "eval",
        "--model",
        str(tiny_checkpoint),
        "--benchmarks",
        str(benchmark),
        "--limit",
        "2",
        "--max-new-tokens",
        "6",
        "--n-samples",
        "4",
        "--temperature",
        "0.6",
        "--output-dir",
        str(sampled_dir),
    ]
    assert main(argv) == 0
    summary = json.loads((sampled_dir / "summary.json").read_text())
    assert summary["metrics"] == ["avg@4", "pass@2", "pass@4"]
    assert summary["benchmarks"]["toy"]["num_scored_problems"] == 2


@pytest.mark.slow
@pytest.mark.data
def test_end_to_end_on_the_shared_benchmarks(tiny_checkpoint, benchmarks_dir, tmp_path):
    output_dir = tmp_path / "out"
    argv = [
        "eval",
        "--model",
        str(tiny_checkpoint),
        "--benchmarks",
        "gsm8k,aime24",
        "--data-dir",
        str(benchmarks_dir),
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
        "--batch-size",
        "4",
        "--output-dir",
        str(output_dir),
    ]
    assert main(argv) == 0
    summary = json.loads((output_dir / "summary.json").read_text())
    assert {name: b["num_problems"] for name, b in summary["benchmarks"].items()} == {"gsm8k": 2, "aime24": 2}
    table = (output_dir / "summary.md").read_text()
    assert "| Model | AIME24 | GSM8K | Avg. |" in table


def test_an_unknown_hub_model_offline_is_one_line_and_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    benchmark = write_jsonl(tmp_path / "toy.jsonl", ROWS)
    argv = [
        "eval",
        "--model",
        "ispo-tests/no-such-model",
        "--benchmarks",
        str(benchmark),
        "--output-dir",
        str(tmp_path / "o"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-m", "ispo", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ispo eval: error")]
    assert len(errors) == 1 and "model 'ispo-tests/no-such-model' cannot be loaded" in errors[0]
    assert "Traceback" not in result.stderr
