"""`ispo report` on small synthetic metrics files: plots, table, CLI, and that it stays light."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from ispo import report


def write_run(folder, *, steps=12, hc_slope=0.02, with_eval=True, name=None, extra=None):
    folder.mkdir(parents=True)
    with open(folder / "metrics.jsonl", "w") as f:
        for step in range(1, steps + 1):
            record = {
                "step": step,
                "accuracy": 0.3 + 0.01 * step,
                "zero_adv_rate/outcome": 0.6 - 0.01 * step,
                "zero_adv_rate/composite": 0.0,
                "hc/incorrect": 0.5 + hc_slope * step,
                "hc/correct": 0.8,
                "ifd/correct": 1.0,
                "ifd/incorrect": None if step == 3 else 0.4,  # a step with no incorrect rollouts
                "critical/frac": 0.1,
                "entropy": 0.9 - 0.01 * step,
                "completion_length": 40.0,
                "step_time": 2.0,
                **(extra or {}),
            }
            f.write(json.dumps(record) + "\n")
        f.write("\n")  # trailing blank line is fine
    if with_eval:
        (folder / "eval.json").write_text(
            json.dumps(
                {
                    "before": {"sampled/easy": 0.5, "sampled/medium": 0.2, "sampled/hard": 0.05},
                    "after": {"sampled/easy": 0.7, "sampled/medium": 0.3, "sampled/hard": 0.08},
                }
            )
        )
    if name:
        (folder / "run.json").write_text(json.dumps({"name": name, "wall_seconds": 123.4}))
    return folder


def test_report_writes_plots_and_table(tmp_path):
    grpo = write_run(tmp_path / "grpo", name="GRPO")
    ispo_run = write_run(tmp_path / "ispo", name="ISPO", hc_slope=0.0)
    out = tmp_path / "out"
    path = report.make_report([grpo, ispo_run], out)
    text = path.read_text()
    for image in ("training_dynamics.png", "heldout_accuracy.png"):
        assert (out / image).stat().st_size > 1000
        assert f"]({image})" in text
    assert "| GRPO | before | 0.500 | 0.200 | 0.050 |" in text
    assert "| ISPO | after | 0.700 | 0.300 | 0.080 |" in text
    # hc/incorrect early vs late: mean of the first and last 3 of 12 steps
    grpo_early, grpo_late = 0.5 + 0.02 * 2, 0.5 + 0.02 * 11
    assert f"| hc/incorrect | {grpo_early:.3f} | {grpo_late:.3f} | 0.500 | 0.500 |" in text
    assert "| GRPO | 12 | 123 s |" in text


def test_report_without_eval_or_run_json(tmp_path):
    run_dir = write_run(tmp_path / "plain", with_eval=False, steps=3)
    path = report.make_report([run_dir], tmp_path / "out")
    text = path.read_text()
    assert not (tmp_path / "out" / "heldout_accuracy.png").exists()
    assert "Held-out accuracy" not in text
    assert "| plain | 3 | 6 s |" in text  # wall time summed from step_time


def test_missing_keys_show_as_not_logged(tmp_path):
    run_dir = tmp_path / "sparse"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "accuracy": 0.5}\n{"step": 2, "accuracy": NaN}\n')
    path = report.make_report([run_dir], tmp_path / "out")
    text = path.read_text()
    assert "| accuracy | 0.500 | 0.500 |" in text
    assert "| hc/incorrect |" not in text


def test_bad_input_names_the_line(tmp_path):
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n{oops\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        report.load_run(run_dir)
    with pytest.raises(FileNotFoundError):
        report.load_run(tmp_path / "nothing")


def test_duplicate_names_are_disambiguated(tmp_path):
    a = write_run(tmp_path / "a" / "run", with_eval=False)
    b = write_run(tmp_path / "b" / "run", with_eval=False)
    text = report.make_report([a, b], tmp_path / "out").read_text()
    assert "run[0]" in text and "run[1]" in text


def test_smooth_and_early_late():
    assert report.smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert report.early_late([1.0, 2.0, 3.0, 4.0]) == (1.0, 4.0)
    assert report.early_late([]) == (None, None)
    # a quarter rounded up, as the Fig. 6 early checkpoint: steps 1-3 and 8-10 of 10
    assert report.early_late([float(i) for i in range(1, 11)]) == (2.0, 9.0)
    assert [report.window_length(n) for n in (1, 3, 4, 10, 100, 300)] == [1, 1, 1, 3, 25, 75]
    early, late = report.early_late([float(i) for i in range(10)], 0.2)
    assert math.isclose(early, 0.5) and math.isclose(late, 8.5)


def test_cli_does_not_import_torch(tmp_path):
    run_dir = write_run(tmp_path / "grpo", name="GRPO")
    code = (
        "import sys; from ispo.cli import main; rc = main(sys.argv[1:]); "
        "bad = [m for m in ('torch', 'trl', 'transformers') if m in sys.modules]; "
        "assert not bad, bad; raise SystemExit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "report", str(run_dir), "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.md").exists()


def test_wall_time_from_elapsed(tmp_path):
    run_dir = write_run(tmp_path / "r", with_eval=False, steps=2, extra={"elapsed_s": 50.0})
    assert report.load_run(run_dir).wall_seconds() == 50.0


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "ispo", "report", *map(str, argv)], capture_output=True, text=True)


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    result = run_cli(tmp_path / "no-such-run", "--output-dir", tmp_path / "out")
    assert result.returncode == 2
    expected = f"ispo report: error: run folder {tmp_path / 'no-such-run'} does not exist"
    assert result.stderr.strip().splitlines() == [expected]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(empty)
    assert result.returncode == 2 and "has no metrics.jsonl" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_truncated_last_line_is_skipped_said_once_and_reported(tmp_path):
    run_dir = write_run(tmp_path / "crashed", steps=5, with_eval=False)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "accuracy": 0.')  # the run died mid-write
    result = run_cli(run_dir, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    (notice,) = result.stderr.strip().splitlines()
    assert str(run_dir / "metrics.jsonl") in notice and "skipped 1 line" in notice and "line 7" in notice
    text = (tmp_path / "out" / "report.md").read_text()
    assert "5 steps; 1 incomplete line of metrics.jsonl skipped" in text
    assert "| crashed | 5 |" in text


def test_a_malformed_middle_line_is_still_an_error_on_the_command_line(tmp_path):
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n{oops\n{"step": 3}\n')
    result = run_cli(run_dir)
    assert result.returncode == 2 and "metrics.jsonl:2: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
