"""Fixtures shared across the test folders."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_demo_config(tmp_path):
    """``tiny_demo_config(**overrides)``: a ``DemoConfig`` whose warm start, training and evaluation take seconds.

    One step of 2 prompts x 4 rollouts, a 2-layer warm start trained for 5 steps, 2 held-out problems per
    level with one sampled answer each; any ``DemoConfig`` field can be overridden.
    """
    from ispo.demo.evaluate import HeldoutEvalConfig
    from ispo.demo.run import DemoConfig
    from ispo.demo.warmstart import WarmStartConfig

    def make(**overrides) -> DemoConfig:
        settings = dict(
            output_dir=str(tmp_path / "unused"),
            steps=1,
            prompts_per_step=2,
            num_generations=4,
            max_completion_length=24,
            warmstart=WarmStartConfig(
                hidden_size=32,
                num_layers=2,
                num_heads=2,
                num_kv_heads=1,
                problems_per_difficulty=50,
                steps=5,
                batch_size=8,
            ),
            eval=HeldoutEvalConfig(problems_per_difficulty=2, num_samples=1, max_new_tokens=24, greedy=False),
            progress=False,
        )
        return DemoConfig(**{**settings, **overrides})

    return make
