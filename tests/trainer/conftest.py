"""Shared fixtures for the trainer tests: a tiny offline model saved to disk, small datasets, configs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    from ispo.models.tiny import save_tiny_model

    # saved, not in memory: TRL rebuilds reference models from the model's path
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", hidden_size=32, num_layers=1))


def arithmetic_rows(count: int = 8) -> list[dict]:
    return [
        {"prompt": [{"role": "user", "content": f"{a}+{b}? Answer in \\boxed{{}}."}], "answer": str(a + b)}
        for a, b in [(i % 5, i // 5) for i in range(count)]
    ]


@pytest.fixture
def dataset():
    from datasets import Dataset

    return Dataset.from_list(arithmetic_rows())


def parity_reward(completions, **kwargs) -> list[float]:
    """An outcome reward a random model earns half the time, so groups are not all equal."""
    return [float(len(c[0]["content"] if isinstance(c, list) else c) % 2) for c in completions]


def _config_kwargs(output_dir, **overrides) -> dict:
    kwargs = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        bf16=False,
        seed=0,
        num_generations=4,
        per_device_train_batch_size=8,
        max_completion_length=12,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(name="parity_reward")
def parity_reward_fixture():
    return parity_reward


@pytest.fixture
def config_kwargs():
    """``config_kwargs(output_dir, **overrides)``: small, fast, deterministic CPU settings."""
    return _config_kwargs
