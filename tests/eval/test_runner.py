"""The evaluation loop with a scripted backend: grading, records, resume, bad input.

The scripted backend answers from a table keyed by problem text, so these tests run the real
prompts, grader, record store and summary without a model.
"""

import json
import math

import pytest

from ispo.eval import BenchmarkError, EvalConfig, EvalError, evaluate
from ispo.eval.backends import Generation

from .conftest import write_jsonl

PROBLEMS = [
    {"id": "one", "problem": "What is 1+1?", "answer": "2"},
    {"id": "two", "problem": "What is 2+3?", "answer": "5"},
    {"id": "three", "problem": "What is half of one?", "answer": "\\frac{1}{2}"},
    {"id": "four", "problem": "What is 2*2?", "answer": "4"},
    {"id": "five", "problem": "What is 10-1?", "answer": "9"},
]
# Completions per problem text; "three" is answered in another but equal form.
ANSWERS = {
    "What is 1+1?": "1+1 is \\boxed{2}.",
    "What is 2+3?": "I think \\boxed{6}.",
    "What is half of one?": "Half is \\boxed{0.5}",
    "What is 2*2?": "\\boxed{4}",
    "What is 10-1?": "no idea",
}


class Interrupted(Exception):
    pass


class ScriptedBackend:
    def __init__(self, tokenizer, *, fail_after_calls=None, answers=ANSWERS):
        self.tokenizer = tokenizer
        self.calls = []
        self.prompts_seen = []
        self.fail_after_calls = fail_after_calls
        self.answers = answers

    def generate(self, prompts, *, temperature, top_p, max_new_tokens, seeds):
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise Interrupted
        self.calls.append(len(prompts))
        self.prompts_seen += [list(p) for p in prompts]
        generations = []
        for prompt in prompts:
            text = self.tokenizer.decode(prompt)
            completion = next(answer for problem, answer in self.answers.items() if problem in text)
            ids = self.tokenizer(completion, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            generations.append(Generation(ids, [math.log(0.5)] * len(ids), completion, "stop"))
        return generations


class NoBackend:
    """Fails the test if anything is generated."""

    tokenizer = None

    def generate(self, *args, **kwargs):
        raise AssertionError("nothing should be generated")


@pytest.fixture
def benchmark_file(tmp_path):
    return write_jsonl(tmp_path / "toy.jsonl", PROBLEMS)


def config(benchmark_file, output_dir, **overrides):
    return EvalConfig(model="scripted", benchmarks=[str(benchmark_file)], output_dir=str(output_dir), **overrides)


def read_records(output_dir):
    return [json.loads(line) for line in (output_dir / "samples.jsonl").read_text().splitlines()]


def test_scores_records_and_summary_files(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    summary = evaluate(config(benchmark_file, output_dir, batch_size=2), backend=ScriptedBackend(tokenizer))
    toy = summary["benchmarks"]["toy"]
    assert toy["metrics"]["pass@1"]["value"] == pytest.approx(3 / 5)
    assert summary["macro_average"]["pass@1"]["value"] == pytest.approx(3 / 5)
    records = {r["problem_id"]: r for r in read_records(output_dir)}
    assert set(records) == {p["id"] for p in PROBLEMS}
    assert records["three"]["correct"] is True and records["three"]["extracted_answer"] == "0.5"
    assert records["two"]["correct"] is False and records["five"]["extracted_answer"] is None
    expected_keys = {
        "benchmark",
        "problem_id",
        "sample_index",
        "gold",
        "completion",
        "extracted_answer",
        "correct",
        "num_tokens",
        "finish_reason",
        "mean_logprob",
        "answer_mean_logprob",
        "answer_mean_prob",
    }
    assert set(records["one"]) == expected_keys
    assert records["one"]["answer_mean_prob"] == pytest.approx(0.5)
    assert records["one"]["num_tokens"] == len(ANSWERS["What is 1+1?"]) + 1
    assert toy["confidence"]["correct"]["num_samples"] == 3 and toy["confidence"]["incorrect"]["num_with_answer"] == 1
    on_disk = json.loads((output_dir / "summary.json").read_text())
    assert on_disk["benchmarks"]["toy"]["metrics"] == toy["metrics"] and on_disk["config"]["model"] == "scripted"
    assert "| scripted | 60.0 | 60.0 |" in (output_dir / "summary.md").read_text()


def test_resume_after_an_interruption_never_redoes_or_duplicates(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    first = ScriptedBackend(tokenizer, fail_after_calls=1)
    with pytest.raises(Interrupted):
        evaluate(config(benchmark_file, output_dir, batch_size=2), backend=first)
    assert len(read_records(output_dir)) == 2  # the finished batch is on disk, the one in flight is lost

    second = ScriptedBackend(tokenizer)
    summary = evaluate(config(benchmark_file, output_dir, batch_size=2), backend=second)
    assert second.calls == [2, 1]  # only the three missing samples
    keys = [(r["benchmark"], r["problem_id"], r["sample_index"]) for r in read_records(output_dir)]
    assert len(keys) == len(set(keys)) == 5
    assert summary["benchmarks"]["toy"]["metrics"]["pass@1"]["value"] == pytest.approx(3 / 5)

    again = evaluate(config(benchmark_file, output_dir, batch_size=2), backend=NoBackend())
    assert again["benchmarks"]["toy"]["metrics"] == summary["benchmarks"]["toy"]["metrics"]


def test_resume_after_a_kill_mid_write(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    evaluate(config(benchmark_file, output_dir, limit=2), backend=ScriptedBackend(tokenizer))
    with (output_dir / "samples.jsonl").open("a") as handle:
        handle.write('{"benchmark": "toy", "problem_id": "thr')
    backend = ScriptedBackend(tokenizer)
    evaluate(config(benchmark_file, output_dir), backend=backend)
    assert sum(backend.calls) == 3 and len(read_records(output_dir)) == 5


def test_more_samples_later_only_adds_the_new_indices(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    evaluate(config(benchmark_file, output_dir, temperature=0.6, n_samples=2), backend=ScriptedBackend(tokenizer))
    backend = ScriptedBackend(tokenizer)
    summary = evaluate(config(benchmark_file, output_dir, temperature=0.6, n_samples=4), backend=backend)
    assert sum(backend.calls) == 5 * 2
    assert sorted({r["sample_index"] for r in read_records(output_dir)}) == [0, 1, 2, 3]
    assert summary["metrics"] == ["avg@4", "pass@2", "pass@4"]
    assert summary["benchmarks"]["toy"]["metrics"]["pass@4"]["value"] == pytest.approx(3 / 5)


def test_changed_generation_settings_are_refused_unless_overwriting(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    evaluate(config(benchmark_file, output_dir, limit=1), backend=ScriptedBackend(tokenizer))
    with pytest.raises(EvalError, match="max_new_tokens: 3072 -> 64"):
        evaluate(config(benchmark_file, output_dir, limit=1, max_new_tokens=64), backend=NoBackend())
    backend = ScriptedBackend(tokenizer)
    evaluate(config(benchmark_file, output_dir, limit=1, max_new_tokens=64, overwrite=True), backend=backend)
    assert backend.calls == [1] and len(read_records(output_dir)) == 1


def test_unparseable_golds_are_counted_listed_and_excluded(tmp_path, tokenizer):
    rows = PROBLEMS[:2] + [{"id": "tower", "problem": "What is a tower?", "answer": "9^{9^{9}}"}]
    answers = {**ANSWERS, "What is a tower?": "\\boxed{9^{9^{9}}}"}
    path = write_jsonl(tmp_path / "toy.jsonl", rows)
    summary = evaluate(config(path, tmp_path / "out"), backend=ScriptedBackend(tokenizer, answers=answers))
    toy = summary["benchmarks"]["toy"]
    assert toy["unparseable_golds"] == ["tower"] and toy["num_unparseable_golds"] == 1
    assert summary["unparseable_golds"] == {"toy": ["tower"]}
    assert toy["num_scored_problems"] == 2 and toy["metrics"]["pass@1"]["value"] == 0.5


def test_bad_benchmarks_fail_before_any_generation(tmp_path):
    with pytest.raises(BenchmarkError, match="unknown benchmark"):
        evaluate(EvalConfig(model="m", benchmarks=["aime2024"], output_dir=str(tmp_path)), backend=NoBackend())
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with pytest.raises(BenchmarkError, match="empty"):
        evaluate(EvalConfig(model="m", benchmarks=[str(empty)], output_dir=str(tmp_path)), backend=NoBackend())
    (tmp_path / "a").mkdir()
    same_stem = [write_jsonl(tmp_path / "t.jsonl", PROBLEMS), write_jsonl(tmp_path / "a" / "t.jsonl", PROBLEMS)]
    with pytest.raises(EvalError, match="both named 't'"):
        evaluate(
            EvalConfig(model="m", benchmarks=[str(p) for p in same_stem], output_dir=str(tmp_path)), backend=NoBackend()
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_samples": 4}, "greedy decoding"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"benchmarks": []}, "no benchmarks"),
        ({"prompt": "no placeholder"}, "problem"),
        ({"temperature": 0.6, "n_samples": 4, "pass_k": [8]}, "pass_k"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(EvalError, match=message):
        EvalConfig(model="m", output_dir="out", **overrides)


def test_config_accepts_comma_separated_benchmarks():
    assert EvalConfig(model="m", output_dir="o", benchmarks="math500, aime24,math500").benchmarks == [
        "math500",
        "aime24",
    ]
    assert EvalConfig(model="some/dir/ckpt-100/", output_dir="o").display_name == "ckpt-100"


def test_without_a_chat_template_the_plain_prompt_is_used_said_once_and_recorded(
    benchmark_file, tmp_path, tokenizer, caplog
):
    import copy

    plain_tokenizer = copy.deepcopy(tokenizer)
    plain_tokenizer.chat_template = None
    output_dir = tmp_path / "out"
    backend = ScriptedBackend(plain_tokenizer)
    summary = evaluate(config(benchmark_file, output_dir, batch_size=2), backend=backend)
    notices = [r.getMessage() for r in caplog.records if "chat template" in r.getMessage()]
    assert notices == [
        "ispo eval: scripted: the tokenizer has no chat template; "
        "using the plain prompt (prompt_format in summary.json)"
    ]
    assert summary["prompt_format"] == "plain (tokenizer has no chat template)"
    assert json.loads((output_dir / "summary.json").read_text())["prompt_format"] == summary["prompt_format"]
    assert summary["benchmarks"]["toy"]["metrics"]["pass@1"]["value"] == pytest.approx(3 / 5)
    # the prompts were the plain template, not the chat one
    assert plain_tokenizer.decode(backend.prompts_seen[0]).startswith("Question: ")
    again = evaluate(config(benchmark_file, output_dir, batch_size=2), backend=NoBackend())  # nothing to generate
    assert again["prompt_format"] == summary["prompt_format"]


def test_chat_insists_on_the_template_and_fails_before_generating(benchmark_file, tmp_path, tokenizer):
    import copy

    plain_tokenizer = copy.deepcopy(tokenizer)
    plain_tokenizer.chat_template = None
    backend = ScriptedBackend(plain_tokenizer)
    with pytest.raises(EvalError, match="scripted: --chat: the tokenizer has no chat template"):
        evaluate(config(benchmark_file, tmp_path / "out", chat=True), backend=backend)
    assert backend.calls == []
    summary = evaluate(config(benchmark_file, tmp_path / "chat", chat=True), backend=ScriptedBackend(tokenizer))
    assert summary["prompt_format"] == "qwen_math (chat template)"


def test_chat_without_a_template_on_the_command_line_is_one_line_and_exit_2(
    benchmark_file, tmp_path, tokenizer, monkeypatch, capsys
):
    import copy

    from ispo.cli import main

    plain_tokenizer = copy.deepcopy(tokenizer)
    plain_tokenizer.chat_template = None
    monkeypatch.setattr("ispo.eval.runner.make_backend", lambda config: ScriptedBackend(plain_tokenizer))
    argv = ["eval", "--model", "base-model", "--benchmarks", str(benchmark_file), "--output-dir", str(tmp_path / "o")]
    assert main([*argv, "--chat"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "ispo eval: error: base-model: --chat: the tokenizer has no chat template; leave --chat out to use the plain "
        "prompt, or pass --tokenizer with a chat template"
    ]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["prompt_format"] == "plain (tokenizer has no chat template)"


def test_a_damaged_samples_file_is_a_clear_error(benchmark_file, tmp_path, tokenizer):
    output_dir = tmp_path / "out"
    evaluate(config(benchmark_file, output_dir, limit=2), backend=ScriptedBackend(tokenizer))
    lines = (output_dir / "samples.jsonl").read_text().splitlines()
    (output_dir / "samples.jsonl").write_text(lines[0] + "\n{oops\n" + lines[1] + "\n")
    with pytest.raises(EvalError, match=r"samples\.jsonl:2: not valid JSON"):
        evaluate(config(benchmark_file, output_dir, limit=2), backend=NoBackend())
