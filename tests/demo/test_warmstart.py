"""The warm start: its loss falls, it is reproducible, and it caches by its settings."""

from __future__ import annotations

import json

import pytest

from ispo.data.synthetic import DIFFICULTIES
from ispo.demo import warmstart
from ispo.demo.warmstart import WarmStartConfig

TINY = WarmStartConfig(
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    num_kv_heads=1,
    problems_per_difficulty=50,
    steps=40,
    batch_size=16,
    learning_rate=1e-2,
    warmup_steps=5,
)


def test_loss_falls():
    tokenizer = warmstart.build_tokenizer()
    from ispo.models.tiny import build_tiny_model

    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1)
    losses = warmstart.train_sft(model, tokenizer, TINY, progress=False)
    assert len(losses) == TINY.steps
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_labels_mask_the_prompt_and_padding():
    tokenizer = warmstart.build_tokenizer()
    input_ids, attention_mask, labels = warmstart.encode_batch(
        tokenizer, [("Q: 1+2\n", "1+2=3\n\\boxed{3}"), ("Q: 5\n", "x")]
    )
    prompt_len = len("Q: 1+2\n")
    assert (labels[0, :prompt_len] == -100).all()
    assert labels[0, prompt_len] == tokenizer.convert_tokens_to_ids("1")
    assert labels[0, attention_mask[0].sum() - 1] == tokenizer.eos_token_id
    assert (labels[1][attention_mask[1] == 0] == -100).all()
    assert (
        tokenizer.decode(input_ids[0][attention_mask[0] == 1], skip_special_tokens=True) == "Q: 1+2\n1+2=3\n\\boxed{3}"
    )


def test_examples_are_seeded_and_from_the_train_split():
    a = warmstart.sft_examples(TINY)
    assert a == warmstart.sft_examples(TINY)
    assert a != warmstart.sft_examples(WarmStartConfig(**{**TINY.__dict__, "seed": 1}))
    from ispo.data.synthetic import split_of

    assert all(split_of(prompt[3:-1]) == "train" for prompt, _ in a)
    assert len(DIFFICULTIES) == 3


def test_cache_key_depends_on_every_setting():
    assert TINY.key() == WarmStartConfig(**TINY.__dict__).key()
    assert TINY.key() != WarmStartConfig(**{**TINY.__dict__, "error_rate": 0.3}).key()
    assert warmstart.cache_root().name


@pytest.mark.slow
def test_warm_start_caches_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("ISPO_CACHE", str(tmp_path))
    config = WarmStartConfig(**{**TINY.__dict__, "steps": 3})
    folder = warmstart.warm_start(config, progress=False)
    assert folder.parent == tmp_path / "warmstart" and folder.name == config.key()
    info = json.loads((folder / "warmstart.json").read_text())
    assert info["key"] == config.key()
    mtime = (folder / "model.safetensors").stat().st_mtime
    assert warmstart.warm_start(config, progress=False) == folder  # cached: not retrained
    assert (folder / "model.safetensors").stat().st_mtime == mtime
    model, tokenizer = warmstart.load_warm_start(folder)
    # the tokenizer must keep spaces and newlines (AutoTokenizer would not)
    ids = tokenizer(["Q: 1+2\n"], add_special_tokens=False)["input_ids"][0]
    assert tokenizer.decode(ids) == "Q: 1+2\n"


def test_arithmetic_cache_key_is_the_one_cached_before_tasks_existed():
    """Leaving ``task`` out of the arithmetic key keeps every cached arithmetic warm start valid."""
    assert WarmStartConfig().key() == "6b8d8d0bd5436d03"  # the demo's default warm start, cached before tasks
    assert WarmStartConfig.for_task("arithmetic").key() == WarmStartConfig().key()
    branching = WarmStartConfig.for_task("branching")
    assert branching.task == "branching"
    assert branching.key() != WarmStartConfig(**{**branching.__dict__, "task": "arithmetic"}).key()
    assert WarmStartConfig.for_task("branching", steps=7).steps == 7
    # the branching warm start calibrated in docs/study.md: changing its settings means calibrating again
    assert branching.key() == "7696ad2a7b900c89"


def test_arithmetic_examples_are_the_ones_before_tasks_existed():
    """The arithmetic SFT stream is unchanged (same seed string, same pools), so its warm start is too."""
    import random

    from ispo.data import synthetic

    rng = random.Random(f"ispo-warmstart/{TINY.seed}")
    pools = [
        synthetic.generate_problems(TINY.problems_per_difficulty, name, split="train", seed=TINY.seed)
        for name in synthetic.DIFFICULTIES
    ]
    expected = []
    for _ in range(TINY.steps * TINY.batch_size):
        problem = rng.choice(rng.choices(pools, weights=TINY.difficulty_weights)[0])
        expected.append((problem.prompt, synthetic.solution_text(problem, error_rate=TINY.error_rate, rng=rng)))
    assert warmstart.sft_examples(TINY) == expected


def test_branching_examples_tokenizer_and_unknown_task():
    from ispo.data import branching

    config = WarmStartConfig(**{**TINY.__dict__, "task": "branching"})
    examples = warmstart.sft_examples(config)
    assert len(examples) == config.steps * config.batch_size
    assert all(prompt.startswith("Q: ") and ";" in prompt for prompt, _ in examples)
    assert all(branching.split_of(prompt[3:-1]) == "train" for prompt, _ in examples)
    rule_counts = {prompt.count(";") for prompt, _ in examples}  # one "; " before each rule
    assert rule_counts == {spec.num_steps[0] for spec in branching.DIFFICULTIES.values()}  # every level is there
    tokenizer = warmstart.build_tokenizer("branching")
    text = "".join(prompt + solution for prompt, solution in examples[:200])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and tokenizer.decode(ids) == text
    # the arithmetic vocabulary lacks the branching characters: each task needs its own tokenizer
    arithmetic_tokenizer = warmstart.build_tokenizer()
    assert arithmetic_tokenizer.unk_token_id in arithmetic_tokenizer(";?", add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        WarmStartConfig(task="nope")
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        WarmStartConfig.for_task("nope")
