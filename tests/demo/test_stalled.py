"""The Fig. 6 measurement (``ispo.demo.stalled``): which groups count as stalled, how "solved" is graded,
and the order contract with TRL that maps a step's groups to the RL records."""

from __future__ import annotations

import pytest

from ispo.demo.run import rl_records
from ispo.demo.stalled import GroupOutcome, early_steps, solved_fraction, stalled_prompts


def test_early_steps_are_the_first_quarter_and_at_least_one():
    assert [early_steps(n) for n in (1, 3, 4, 10, 100, 300)] == [1, 1, 1, 3, 25, 75]


def test_stalled_prompts_are_the_all_wrong_groups_of_the_early_steps():
    groups = [
        GroupOutcome(1, 0, 0, 4),  # all wrong, early: stalled
        GroupOutcome(1, 1, 2, 4),
        GroupOutcome(3, 5, 0, 4),  # all wrong, early (steps 1-3 of 10): stalled
        GroupOutcome(4, 7, 0, 4),  # all wrong, but after the early checkpoint
        GroupOutcome(2, 3, 4, 4),  # all right
    ]
    assert stalled_prompts(groups, steps=10) == [0, 5]
    assert stalled_prompts(groups, steps=4) == [0]


class _Generation:
    def __init__(self, text):
        self.text = text


class _Backend:
    """Answers every prompt 7 on odd seeds and 0 on even ones."""

    def __init__(self, model, tokenizer):
        self.calls = []

    def generate(self, prompt_ids, *, temperature, top_p, max_new_tokens, seeds):
        return [_Generation("\\boxed{7}" if seed % 2 else "\\boxed{0}") for seed in seeds]


class _Model:
    training = True

    def train(self, mode=True):
        self.training = mode


def test_a_prompt_is_solved_when_any_sample_is_correct(monkeypatch):
    import ispo.demo.evaluate as evaluate
    import ispo.eval.backends as backends
    import ispo.eval.runner as runner

    monkeypatch.setattr(backends, "HFBackend", _Backend)
    monkeypatch.setattr(evaluate, "prompt_token_ids", lambda tokenizer, prompt: [1, 2])
    records = [{"prompt": "a", "answer": "7"}, {"prompt": "b", "answer": "8"}]
    settings = dict(temperature=1.0, max_new_tokens=8, batch_size=3, seed=0)
    # seeds 0..3 for sample k: an odd seed answers 7, so prompt "a" is solved once any sample's seed is odd
    monkeypatch.setattr(runner, "sample_seed", lambda seed, name, key, k: k)
    model = _Model()
    assert solved_fraction(model, None, records, [0, 1], samples=1, **settings) == 0.0  # seed 0 only
    assert solved_fraction(model, None, records, [0, 1], samples=2, **settings) == 0.5  # "a" by its 2nd
    assert solved_fraction(model, None, records, [0], samples=4, **settings) == 1.0
    assert solved_fraction(model, None, records, [], samples=4, **settings) is None
    assert model.training  # left as it was found


@pytest.mark.slow
def test_groups_follow_the_rl_records_in_trl_order(tmp_path, monkeypatch, tiny_demo_config):
    """Step s trains on records (s-1)P .. sP-1, each repeated G times in a row: the recorder's mapping."""
    from ispo.demo.run import method_fields, train_method, warm_start_folder
    from ispo.trainer import ISPOTrainer

    monkeypatch.setenv("ISPO_CACHE", str(tmp_path / "cache"))
    config = tiny_demo_config(steps=3, num_generations=3, max_completion_length=16)
    seen: list[list[str]] = []
    original = ISPOTrainer._generate_and_score_completions

    def recording(self, inputs):
        seen.append([row["prompt"] for row in inputs])
        return original(self, inputs)

    monkeypatch.setattr(ISPOTrainer, "_generate_and_score_completions", recording)
    _, _, _, groups = train_method(config, method_fields("ispo"), warm_start_folder(config), tmp_path / "run")
    records = rl_records(config)
    assert len(seen) == config.steps
    for step, prompts in enumerate(seen, start=1):
        expected = records[(step - 1) * 2 : step * 2]
        assert prompts == [r["prompt"] for r in expected for _ in range(3)]
    expected_groups = [(s, i, 3) for s in (1, 2, 3) for i in (2 * s - 2, 2 * s - 1)]
    assert [(g.step, g.prompt_index, g.size) for g in groups] == expected_groups
    assert all(0 <= g.correct <= 3 for g in groups)
