"""Score the fixed rollouts on 1 or N processes; the main process writes the global results as JSON.

    python two_process_rewards.py MODEL_DIR OUT.json [VARIANT]
    accelerate launch --multi_gpu --num_processes 2 two_process_rewards.py MODEL_DIR OUT.json [VARIANT]

VARIANT: "" (the fixed rollouts), "lopsided" (answers on the first process only), "fallback_one_rank"
(the second process has TRL's pi_old statistics, the first must run a forward for them), or comma-separated
``key=value`` settings for a registered method: "method=rlpr", "method=zvp,outcomes=zero_variance",
"method=rlpr,rlpr_std_filter=true". ``outcomes`` picks a set of ``OUTCOMES``; any other key is an
``ISPOConfig`` field, its value read as JSON when it parses (true, 0.5) and as a string otherwise. A method
variant runs without the ISPO diagnostics (``ispo_diagnostics=False``) so that only its own passes run, and
writes its global composite reward and advantages ((N,) or (N, T)). Also records how many forwards each
process ran: sharded models (ZeRO-3, FSDP) need them equal.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import ispo_fixed_rollouts as fixed
import torch
from datasets import Dataset

from ispo import ISPOConfig, ISPOTrainer

# Group 1 all correct, group 2 all wrong with an unscorable row (it straddles the two processes), group 3
# mixed: RL-ZVP's three cases.
ZERO_VARIANCE_OUTCOMES = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, None, 0.0, 1.0, 1.0, 0.0, 0.0]
OUTCOMES = {"fixed": fixed.OUTCOMES, "zero_variance": ZERO_VARIANCE_OUTCOMES}


def method_settings(variant: str) -> dict | None:
    """``{"method": ..., field: value, ...}`` from a "key=value,..." variant; None for the named variants."""
    if "=" not in variant:
        return None
    settings = {}
    for item in variant.split(","):
        key, _, text = item.partition("=")
        try:
            settings[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            settings[key.strip()] = text.strip()
    if "method" not in settings:
        raise ValueError(f"variant {variant!r}: key=value settings need method=NAME")
    return settings


def main(model_dir: str, out_path: str, variant: str = "") -> None:
    from accelerate import PartialState

    total = len(fixed.COMPLETIONS)
    local = total // int(os.environ.get("WORLD_SIZE", "1"))  # before any accelerate state exists
    settings = method_settings(variant)
    if settings is None:
        # the drift filter needs a policy that has moved from its base: at 0.0 nats every token counts as drifted
        config = dict(lambda_ifd=0.3, lambda_tok=0.3, entropy_top_frac=0.3, drift_threshold=0.0)
    else:
        fixed.OUTCOMES = OUTCOMES[settings.pop("outcomes", "fixed")]  # read by fixed.global_rewards
        config = dict(ispo_diagnostics=False, **settings)
    args = ISPOConfig(
        output_dir=tempfile.mkdtemp(),
        use_cpu=True,
        bf16=False,
        report_to=[],
        seed=0,
        num_generations=fixed.NUM_GENERATIONS,
        per_device_train_batch_size=local,
        max_completion_length=32,
        disable_tqdm=True,
        **config,
    )
    trainer = ISPOTrainer(model_dir, args=args, train_dataset=Dataset.from_list(fixed.global_inputs()))
    state = PartialState()
    assert state.num_processes * local == total, (state.num_processes, local)
    fixed.perturb(trainer.model)
    forwards, scoring = [], []
    count_forwards, score_batch = trainer._get_per_token_logps_and_entropies, trainer.score_batch

    def counted(*args, **kwargs):
        if scoring:  # forwards of the scoring stages only, not the test's own set-up
            forwards.append(1)
        return count_forwards(*args, **kwargs)

    def scored(*args, **kwargs):
        scoring.append(True)
        try:
            return score_batch(*args, **kwargs)
        finally:
            scoring.clear()

    trainer._get_per_token_logps_and_entropies = counted
    trainer.score_batch = scored
    completions = fixed.COMPLETIONS_LOPSIDED if variant == "lopsided" else fixed.COMPLETIONS
    rows = slice(state.process_index * local, (state.process_index + 1) * local)
    with_trl = variant == "fallback_one_rank" and state.process_index == 1
    output = fixed.score(trainer, rows, completions, with_trl_statistics=with_trl)
    forwards_per_process = trainer.accelerator.gather(torch.tensor([len(forwards)])).tolist()
    local_advantages = output["advantages"]
    if local_advantages.dim() == 2:  # per-token advantages: each process's own token width
        local_advantages = trainer.accelerator.pad_across_processes(local_advantages, dim=1)
    advantages = trainer.accelerator.gather(local_advantages)
    record = trainer.last_record
    if state.is_main_process:
        result = {
            "outcome": record.batch.outcome.tolist(),
            "composite": record.rewards.tolist(),
            "advantages": record.advantages.tolist(),
        }
        if settings is None:
            result["ifd"] = record.batch.signals.ifd.tolist()
            result["token_reward"] = record.batch.signals.token_reward.tolist()
        result["gathered_local_advantages"] = advantages.tolist()
        if settings is None:
            result["critical_count"] = int(record.batch.signals.num_critical.sum())
        result["method"] = args.method
        result["num_processes"] = state.num_processes
        result["forwards_per_process"] = forwards_per_process
        with open(out_path, "w") as handle:
            json.dump(result, handle)
    state.wait_for_everyone()


if __name__ == "__main__":
    from ispo.train import release_distributed

    torch.set_num_threads(1)
    main(*sys.argv[1:4])
    release_distributed()  # as `ispo train` does: the trainer freed and the group torn down before exit
