import json

import pytest

from ispo.eval.records import RecordStore, record_key


def make(benchmark="b", problem_id="p", sample_index=0, **extra):
    return {"benchmark": benchmark, "problem_id": problem_id, "sample_index": sample_index, **extra}


def test_append_reload_and_skip_duplicates(tmp_path):
    path = tmp_path / "out" / "samples.jsonl"
    store = RecordStore(path)
    assert store.append([make(sample_index=0), make(sample_index=1)]) == 2
    assert store.append([make(sample_index=1, completion="again"), make(sample_index=2)]) == 1
    reloaded = RecordStore(path)
    assert len(reloaded) == 3 and ("b", "p", 1) in reloaded
    assert "completion" not in reloaded.records[("b", "p", 1)]  # the first record wins
    assert len(path.read_text().splitlines()) == 3


def test_a_partial_last_line_is_cut_before_appending(tmp_path):
    path = tmp_path / "samples.jsonl"
    RecordStore(path).append([make(sample_index=0)])
    with path.open("a") as handle:
        handle.write(json.dumps(make(sample_index=1))[:20])  # killed mid-write
    store = RecordStore(path)
    assert len(store) == 1
    store.append([make(sample_index=1)])
    lines = path.read_text().splitlines()
    assert [record_key(json.loads(line)) for line in lines] == [("b", "p", 0), ("b", "p", 1)]


def test_a_damaged_complete_line_is_an_error(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"benchmark": "b"}\n')
    with pytest.raises(ValueError, match="samples.jsonl:1: not a sample record"):
        RecordStore(path)


def test_a_complete_last_record_without_newline_is_kept_and_not_merged(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(make(sample_index=0)))  # e.g. edited by hand: no final newline
    store = RecordStore(path)
    assert len(store) == 1
    store.append([make(sample_index=1)])
    assert [record_key(json.loads(line)) for line in path.read_text().splitlines()] == [("b", "p", 0), ("b", "p", 1)]


def test_a_malformed_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(make(sample_index=0)) + "\n{oops\n" + json.dumps(make(sample_index=1)) + "\n")
    with pytest.raises(ValueError, match=r"samples\.jsonl:2: not valid JSON.*--overwrite"):
        RecordStore(path)
