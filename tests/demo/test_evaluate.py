"""The demo's held-out evaluation: through ``ispo.eval``'s HF backend, by difficulty, deterministic for a seed."""

from __future__ import annotations

import pytest

from ispo.data.synthetic import CHARACTERS
from ispo.demo.evaluate import HeldoutEvalConfig, evaluate_heldout, heldout_problems
from ispo.eval.backends import Generation, HFBackend


@pytest.fixture(scope="module")
def model_and_tokenizer():
    from ispo.models.tiny import build_char_tokenizer, build_tiny_model

    tokenizer = build_char_tokenizer(CHARACTERS)
    return build_tiny_model(tokenizer, hidden_size=32, num_layers=2, seed=0), tokenizer


def test_accuracy_by_difficulty_from_the_eval_backend(model_and_tokenizer, monkeypatch):
    """Easy problems answered right, the others wrong; sampled at the RL temperature, then greedy."""
    model, tokenizer = model_and_tokenizer
    problems = heldout_problems(3)
    answers = {problem.prompt: problem for problem in problems}
    calls = []

    def scripted(self, prompts, *, temperature, top_p, max_new_tokens, seeds):
        calls.append((len(prompts), temperature, max_new_tokens))
        generations = []
        for ids in prompts:
            problem = answers[tokenizer.decode(ids)]
            answer = problem.answer if problem.difficulty == "easy" else problem.answer + 1
            generations.append(Generation([1], [0.0], f"{problem.expression}={answer}\n\\boxed{{{answer}}}", "stop"))
        return generations

    monkeypatch.setattr(HFBackend, "generate", scripted)
    model.train()
    config = HeldoutEvalConfig(num_samples=2, batch_size=4, max_new_tokens=7)
    results = evaluate_heldout(model, tokenizer, problems, config, progress=False)
    assert results == {
        "sampled/easy": 1.0,
        "sampled/medium": 0.0,
        "sampled/hard": 0.0,
        "sampled/all": pytest.approx(1 / 3),
        "greedy/easy": 1.0,
        "greedy/medium": 0.0,
        "greedy/hard": 0.0,
        "greedy/all": pytest.approx(1 / 3),
    }
    assert calls == [(4, 1.0, 7)] * 4 + [(2, 1.0, 7)] + [(4, 0.0, 7)] * 2 + [(1, 0.0, 7)]  # 18 sampled, 9 greedy
    assert model.training  # the caller's mode is restored


def test_samples_are_deterministic_for_a_seed(model_and_tokenizer, monkeypatch):
    model, tokenizer = model_and_tokenizer
    seen = []
    generate = HFBackend._generate

    def spy(self, *args):
        generations = generate(self, *args)
        seen.append([g.token_ids for g in generations])
        return generations

    monkeypatch.setattr(HFBackend, "_generate", spy)
    problems = heldout_problems(2)

    def run(seed):
        seen.clear()
        evaluate_heldout(
            model,
            tokenizer,
            problems,
            HeldoutEvalConfig(num_samples=2, max_new_tokens=8, greedy=False, seed=seed),
            progress=False,
        )
        return list(seen)

    first = run(0)
    assert run(0) == first
    assert run(1) != first
