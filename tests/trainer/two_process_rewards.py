"""Score the fixed rollouts on 1 or N processes; the main process writes the global results as JSON.

    python two_process_rewards.py MODEL_DIR OUT.json
    accelerate launch --num_processes 2 --cpu two_process_rewards.py MODEL_DIR OUT.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import torch
from datasets import Dataset

import ispo_fixed_rollouts as fixed
from ispo import ISPOConfig, ISPOTrainer


def main(model_dir: str, out_path: str) -> None:
    from accelerate import PartialState

    total = len(fixed.COMPLETIONS)
    local = total // int(os.environ.get("WORLD_SIZE", "1"))  # before any accelerate state exists
    args = ISPOConfig(
        output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=False, report_to=[], seed=0,
        num_generations=fixed.NUM_GENERATIONS, per_device_train_batch_size=local, max_completion_length=32,
        lambda_ifd=0.3, lambda_tok=0.3, rho_h=0.3, disable_tqdm=True,
    )
    trainer = ISPOTrainer(model_dir, args=args, train_dataset=Dataset.from_list(fixed.global_inputs()))
    state = PartialState()
    assert state.num_processes * local == total, (state.num_processes, local)
    fixed.perturb(trainer.model)
    rows = slice(state.process_index * local, (state.process_index + 1) * local)
    output = fixed.score(trainer, rows)
    advantages = trainer.accelerator.gather(output["advantages"])
    last = trainer._ispo_last
    if state.is_main_process:
        result = {key: last[key].tolist() for key in ("outcome", "ifd", "token_reward", "composite", "advantages")}
        result["gathered_local_advantages"] = advantages.tolist()
        result["critical_count"] = int(last["critical"].sum())
        result["num_processes"] = state.num_processes
        with open(out_path, "w") as handle:
            json.dump(result, handle)
    state.wait_for_everyone()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:3])
