import pytest

from ispo.eval import BENCHMARKS, PAPER_BENCHMARKS, BenchmarkError, Problem, load_benchmark
from ispo.eval.benchmarks import display_name, load_jsonl, transform_answer

from .conftest import write_jsonl

ROWS = [
    {"id": "p1", "problem": "What is 1+1?", "answer": "2", "solution": "ignored"},
    {"id": "p2", "problem": "What is 2+2?", "answer": 4},
    {"id": 3, "problem": "Name two primes.", "answer": ["2", "$3$"]},
]


def test_load_jsonl_reads_the_schema_and_ignores_extra_fields(tmp_path):
    problems = load_jsonl(write_jsonl(tmp_path / "b.jsonl", ROWS))
    assert problems == [
        Problem("p1", "What is 1+1?", "2"),
        Problem("p2", "What is 2+2?", "4"),
        Problem("3", "Name two primes.", "2,3"),
    ]


def test_limit_keeps_the_first_problems(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", ROWS)
    assert [p.id for p in load_jsonl(path, limit=2)] == ["p1", "p2"]
    with pytest.raises(BenchmarkError, match="limit"):
        load_benchmark(str(path), limit=0)


def test_any_jsonl_path_is_a_benchmark_named_by_its_stem(tmp_path):
    name, problems = load_benchmark(str(write_jsonl(tmp_path / "my_set.jsonl", ROWS)))
    assert name == "my_set" and len(problems) == 3


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (["", "  "], "empty"),
        (['{"id": "a", "problem": "x"}'], r"b\.jsonl:1: missing field\(s\) answer"),
        (
            ['{"id": "a", "problem": "x", "answer": "1"}', '{"problem": "y", "answer": "2"}'],
            r":2: missing field\(s\) id",
        ),
        (["{not json"], r":1: not valid JSON"),
        (['["a", "b"]'], "JSON object"),
        (
            ['{"id": "a", "problem": "x", "answer": "1"}', '{"id": "a", "problem": "y", "answer": "2"}'],
            "duplicate id 'a'",
        ),
        (['{"id": "a", "problem": "x", "answer": " "}'], "field 'answer' is empty"),
        (['{"id": "a", "problem": null, "answer": "1"}'], "field 'problem' is empty"),
        (['{"id": "a", "problem": {"text": "x"}, "answer": "1"}'], "must be strings"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, lines, message):
    path = write_jsonl(tmp_path / "b.jsonl", lines) if lines else tmp_path / "b.jsonl"
    path.touch()
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(str(path))


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(BenchmarkError, match="unknown benchmark 'math5000'.*math500.*gsm8k"):
        load_benchmark("math5000")
    with pytest.raises(BenchmarkError, match="unknown benchmark 'math5000'"):
        load_benchmark("math5000", data_dir=tmp_path)


def test_missing_file_and_missing_dir(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark(str(tmp_path / "nope.jsonl"))
    with pytest.raises(BenchmarkError, match=r"no aime24\.jsonl in"):
        load_benchmark("aime24", data_dir=tmp_path)
    with pytest.raises(BenchmarkError, match="not a directory"):
        load_benchmark("aime24", data_dir=tmp_path / "absent")


def test_data_dir_reads_name_jsonl_and_the_gsm8k_alias(tmp_path):
    write_jsonl(tmp_path / "amc23.jsonl", ROWS[:1])
    write_jsonl(tmp_path / "gsm8k_test.jsonl", ROWS[:2])
    write_jsonl(tmp_path / "custom.jsonl", ROWS)
    assert load_benchmark("amc23", data_dir=tmp_path)[0] == "amc23"
    name, problems = load_benchmark("gsm8k", data_dir=tmp_path)
    assert name == "gsm8k" and len(problems) == 2
    assert len(load_benchmark("custom", data_dir=tmp_path)[1]) == 3  # any file in the folder works by name


class FakeDataset:
    def __init__(self, rows):
        self.rows = rows
        self.column_names = list(rows[0])

    def __iter__(self):
        return iter(self.rows)


def fake_hub(monkeypatch, rows, calls=None):
    import datasets

    def load_dataset(path, name=None, split=None):
        if calls is not None:
            calls.append((path, name, split))
        if rows is None:
            raise ConnectionError("offline")
        return FakeDataset(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


def test_hub_gsm8k_keeps_the_text_after_hashes(monkeypatch):
    calls = []
    fake_hub(monkeypatch, [{"question": "q?", "answer": "work <<1+1=2>>\n#### 1,234"}], calls)
    name, problems = load_benchmark("gsm8k")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert problems == [Problem("gsm8k-0", "q?", "1234")]


def test_hub_olympiadbench_joins_its_answer_list(monkeypatch):
    fake_hub(monkeypatch, [{"id": 7, "question": "q?", "final_answer": ["$69$", "$84$"]}])
    assert load_benchmark("olympiadbench")[1] == [Problem("7", "q?", "69,84")]


def test_hub_column_and_network_errors_are_clear(monkeypatch):
    fake_hub(monkeypatch, [{"prompt": "q?", "answer": "1"}])
    with pytest.raises(BenchmarkError, match="HuggingFaceH4/MATH-500 has no column.*problem"):
        load_benchmark("math500")
    fake_hub(monkeypatch, None)
    with pytest.raises(BenchmarkError, match="could not load.*--data-dir"):
        load_benchmark("aime24")


def test_transform_answer():
    assert transform_answer("a\n#### 18", "after_hash") == "18"
    assert transform_answer(["$\\frac{1}{2}$"], "join_list") == "\\frac{1}{2}"
    with pytest.raises(BenchmarkError):
        transform_answer("no hashes", "after_hash")


def test_registry_covers_the_cli_names():
    assert set(BENCHMARKS) == {"math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench", "gsm8k"}
    assert set(PAPER_BENCHMARKS) <= set(BENCHMARKS)
    assert display_name("math500") == "MATH-500" and display_name("my_file") == "my_file"


@pytest.mark.data
def test_every_shared_benchmark_loads(benchmarks_dir):
    sizes = {
        "math500": 500,
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
        "minerva": 272,
        "olympiadbench": 675,
        "gsm8k": 1319,
    }
    for name, size in sizes.items():
        loaded_name, problems = load_benchmark(name, data_dir=benchmarks_dir)
        assert loaded_name == name and len(problems) == size
        assert len({p.id for p in problems}) == size


def test_an_incomplete_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    path = write_jsonl(tmp_path / "b.jsonl", ROWS[:2])
    with path.open("a") as handle:
        handle.write('{"id": "p3", "probl')
    assert [p.id for p in load_jsonl(path)] == ["p1", "p2"]
    assert "b.jsonl: skipped 1 line" in caplog.text
