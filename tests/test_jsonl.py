"""``ispo.jsonl``: the one JSONL reader and its error policy."""

from __future__ import annotations

import json

import pytest

from ispo.jsonl import JsonlError, read_jsonl


def write(path, text: str):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_reads_objects_with_their_line_numbers_and_skips_blank_lines(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"a": 1}\n\n  \n{"b": NaN}\n')
    contents = read_jsonl(path)
    assert contents.records[0] == {"a": 1} and contents.line_numbers == [1, 4]
    assert contents.skipped == 0 and contents.notice() is None
    assert contents.complete_bytes == path.stat().st_size


def test_an_incomplete_last_line_is_skipped_counted_and_reported(tmp_path):
    complete = '{"step": 1}\n{"step": 2}\n'
    path = write(tmp_path / "metrics.jsonl", complete + '{"step": 3, "acc')
    contents = read_jsonl(path)
    assert [r["step"] for r in contents.records] == [1, 2]
    assert contents.truncated_line == 3 and contents.skipped == 1
    assert contents.complete_bytes == len(complete.encode())
    notice = contents.notice()
    assert str(path) in notice and "skipped 1 line" in notice and "line 3" in notice and "\n" not in notice


def test_a_write_cut_inside_a_multibyte_character_is_an_incomplete_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes('{"a": 1}\n{"b": "é'.encode()[:-1])
    assert read_jsonl(path).truncated_line == 2


def test_a_complete_last_line_without_newline_is_a_record(tmp_path):
    contents = read_jsonl(write(tmp_path / "a.jsonl", '{"a": 1}\n{"b": 2}'))
    assert contents.records == [{"a": 1}, {"b": 2}] and contents.skipped == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1}\n{oops\n{"b": 2}\n', r"a\.jsonl:2: not valid JSON"),
        ('{"a": 1}\n{oops\n', r"a\.jsonl:2: not valid JSON"),  # terminated: not a crash mid-write
        ('{"a": 1}\n[1, 2]\n', r"a\.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_a_malformed_complete_line_is_an_error_naming_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "a.jsonl", text)
    with pytest.raises(JsonlError, match=message):
        read_jsonl(path)
    with pytest.raises(ValueError):  # JsonlError is a ValueError
        read_jsonl(path)


def test_a_caller_may_tolerate_malformed_lines(tmp_path):
    contents = read_jsonl(write(tmp_path / "a.jsonl", '{"a": 1}\n{oops\n{"b": 2}\n{"c"'), skip_malformed=True)
    assert contents.records == [{"a": 1}, {"b": 2}]
    assert contents.malformed_lines == [2] and contents.truncated_line == 4 and contents.skipped == 2
    assert "skipped 2 lines" in contents.notice()


def test_non_objects_when_asked_and_limit(tmp_path):
    path = write(tmp_path / "a.jsonl", "".join(json.dumps(v) + "\n" for v in [1, [2], "x"]) + "{bad\n")
    assert read_jsonl(path, objects=False, limit=3).records == [1, [2], "x"]  # the bad line is never reached
    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "missing.jsonl")


def test_the_reader_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, ispo.jsonl; bad = [m for m in ('torch', 'numpy', 'yaml') if m in sys.modules]; assert not bad"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_metrics_writer_resume_tolerates_damaged_lines(tmp_path):
    """The one caller that tolerates malformed lines: a resumed run trims its own log, it never stops on it."""
    from ispo.trainer.metrics import MetricsWriter

    path = write(tmp_path / "metrics.jsonl", '{"step": 1}\n{oops\n{"step": 2}\n{"step": 3}\n{"step": 4, "a')
    MetricsWriter(path).write(3, {"loss": 0.5})
    assert [r["step"] for r in read_jsonl(path).records] == [1, 2, 3]
