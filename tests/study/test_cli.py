"""``ispo sweep`` bad input: one line on stderr naming the key, exit status 2, nothing run."""

from __future__ import annotations

import json

import pytest

from ispo.cli import main

GOOD = "baseline: GRPO\nmethods:\n  GRPO: {preset: grpo}\n  IFD-only: {preset: ispo_paper, lambda_tok: 0}\n"


@pytest.fixture
def nothing_runs(monkeypatch):
    """Any training, warm start or evaluation is a test failure."""
    import ispo.demo.run as demo_run

    def refuse(*args, **kwargs):
        raise AssertionError("something ran")

    for name in ("warm_start_folder", "run_cell", "evaluate_folder"):
        monkeypatch.setattr(demo_run, name, refuse)


@pytest.mark.parametrize(
    "study, seeds, extra, message",
    [
        (GOOD.replace("lambda_tok", "lamda_tok"), "0-4", [], "methods.IFD-only.lamda_tok: unknown ISPOConfig field"),
        (
            GOOD.replace("ispo_paper", "ispo_papr"),
            "0-4",
            [],
            "methods.IFD-only.preset: unknown preset or method 'ispo_papr'",
        ),
        (
            GOOD.replace("lambda_tok: 0", "lambda_tok: -1"),
            "0-4",
            [],
            "methods.IFD-only: ISPOConfig.lambda_tok must be >= 0",
        ),
        (
            GOOD.replace("lambda_tok: 0", "critical: everywhere"),
            "0-4",
            [],
            "methods.IFD-only.critical: expected one of",
        ),
        (GOOD.replace("baseline: GRPO\n", ""), "0-4", [], "baseline: missing"),
        (GOOD.replace("baseline: GRPO", "baseline: PPO"), "0-4", [], "baseline: 'PPO' is not among the methods"),
        (GOOD, "4-0", [], "--seeds: empty range 4-0"),
        (GOOD, "zero", [], "--seeds: expected a range such as 0-4"),
        (GOOD, "0-4", ["--task", "chess"], "--task: unknown task 'chess'"),
        (GOOD, "0-4", ["--jobs", "0"], "--jobs: must be at least 1"),
        (GOOD, "0-4", ["--threads", "0"], "--threads: must be at least 1"),
        (GOOD + "lr: 1\n", "0-4", [], "lr: unknown study key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, nothing_runs, study, seeds, extra, message):
    path = tmp_path / "study.yaml"
    path.write_text(study)
    out = tmp_path / "out"
    code = main(["sweep", "--study", str(path), "--seeds", seeds, "--output-dir", str(out), "--steps", "1", *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"ispo sweep: error: {message}"), captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
    assert not out.exists()  # nothing run, nothing written


def test_an_output_folder_of_another_study_is_refused_before_anything_runs(tmp_path, capsys, nothing_runs):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"task": "arithmetic", "split": "test"}))
    code = main(["sweep", "--study", str(path), "--seeds", "0-1", "--output-dir", str(out), "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("ispo sweep: error: --output-dir: ") and 'split: "test" there, "dev" now' in err


def test_a_finished_cell_whose_method_changed_is_refused(tmp_path, capsys, nothing_runs):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD)
    out = tmp_path / "out"
    (out / "IFD-only" / "seed0").mkdir(parents=True)
    (out / "IFD-only" / "seed0" / "run.json").write_text(json.dumps({"method": {"method": "ispo", "lambda_tok": 0.1}}))
    assert main(["sweep", "--study", str(path), "--seeds", "0", "--output-dir", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ispo sweep: error: methods.IFD-only: ") and "finished with other fields" in err


def test_sweep_is_registered_and_its_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as done:
        main(["sweep", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--study", "--seeds", "--output-dir", "--jobs", "--steps", "--task", "--split"):
        assert flag in text


def test_the_task_comes_from_the_flag_else_the_study_file(tmp_path):
    from ispo.study.cli import SweepArgs, prepare

    path = tmp_path / "study.yaml"
    path.write_text(GOOD)
    _, seeds, base = prepare(SweepArgs(study=str(path), seeds="100-104", output_dir=str(tmp_path), steps=1))
    assert seeds == [100, 101, 102, 103, 104] and (base.task, base.split, base.steps) == ("arithmetic", "dev", 1)
    assert base.eval.problems_per_difficulty == 20 and not base.progress  # quick evaluation, as ispo demo
    path.write_text("task: branching\n" + GOOD)
    _, _, base = prepare(SweepArgs(study=str(path), seeds="0", output_dir=str(tmp_path), split="test"))
    assert (base.task, base.warmstart.task, base.split, base.steps) == ("branching", "branching", "test", 100)
    _, _, base = prepare(SweepArgs(study=str(path), seeds="0", output_dir=str(tmp_path), task="arithmetic"))
    assert (base.task, base.warmstart.task) == ("arithmetic", "arithmetic")


def test_with_a_model_a_study_file_written_for_the_tiny_model_gets_the_chat_task(tmp_path, monkeypatch):
    """confirmation.yaml says ``task: arithmetic``; with --model the model's chat task is used, not refused."""
    import ispo.models.loading as loading
    from ispo.study.cli import SweepArgs, prepare
    from ispo.study.spec import StudyError

    monkeypatch.setattr(loading, "check_model_source", lambda source: None)  # no model needed to prepare
    path = tmp_path / "s.yaml"
    path.write_text(GOOD + "task: arithmetic\n")
    args = dict(study=str(path), seeds="100-102", output_dir=str(tmp_path / "out"), model="smollm2-135m-instruct")
    _, _, base = prepare(SweepArgs(**args))
    assert (base.task, base.model, base.steps) == ("word_problems", "smollm2-135m-instruct", 10)
    with pytest.raises(StudyError, match="--task: task arithmetic is for the tiny character model"):
        prepare(SweepArgs(**args, task="arithmetic"))  # asked for explicitly: still refused in one line
