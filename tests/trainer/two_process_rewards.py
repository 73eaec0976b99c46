"""Score the fixed rollouts on 1 or N processes; the main process writes the global results as JSON.

    python two_process_rewards.py MODEL_DIR OUT.json [VARIANT]
    accelerate launch --multi_gpu --num_processes 2 two_process_rewards.py MODEL_DIR OUT.json [VARIANT]

VARIANT: "" (the fixed rollouts), "lopsided" (answers on the first process only), "fallback_one_rank"
(the second process has TRL's pi_old statistics, the first must run a forward for them). Also records
how many forwards each process ran: sharded models (ZeRO-3, FSDP) need them equal.
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


def main(model_dir: str, out_path: str, variant: str = "") -> None:
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
    forwards, scoring = [], []
    count_forwards, score_rollouts = trainer._get_per_token_logps_and_entropies, trainer._score_rollouts

    def counted(*args, **kwargs):
        if scoring:  # forwards of the scoring stages only, not the test's own set-up
            forwards.append(1)
        return count_forwards(*args, **kwargs)

    def scored(*args, **kwargs):
        scoring.append(True)
        try:
            return score_rollouts(*args, **kwargs)
        finally:
            scoring.clear()

    trainer._get_per_token_logps_and_entropies = counted
    trainer._score_rollouts = scored
    completions = fixed.COMPLETIONS_LOPSIDED if variant == "lopsided" else fixed.COMPLETIONS
    rows = slice(state.process_index * local, (state.process_index + 1) * local)
    with_trl = variant == "fallback_one_rank" and state.process_index == 1
    output = fixed.score(trainer, rows, completions, with_trl_statistics=with_trl)
    forwards_per_process = trainer.accelerator.gather(torch.tensor([len(forwards)])).tolist()
    advantages = trainer.accelerator.gather(output["advantages"])
    last = trainer._ispo_last
    if state.is_main_process:
        result = {key: last[key].tolist() for key in ("outcome", "ifd", "token_reward", "composite", "advantages")}
        result["gathered_local_advantages"] = advantages.tolist()
        result["critical_count"] = int(last["critical"].sum())
        result["num_processes"] = state.num_processes
        result["forwards_per_process"] = forwards_per_process
        with open(out_path, "w") as handle:
            json.dump(result, handle)
    state.wait_for_everyone()
    # Tear the gloo group down before interpreter exit: left to destructors, its threads sometimes
    # abort the process ("terminate called without an active exception") after the work is done.
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:4])
