"""Fixed rollouts fed straight to ``ISPOTrainer.score_batch``, bypassing generation.

Used in-process by test_trainer_signals.py and, through two_process_rewards.py, under
``accelerate launch --num_processes 2 --cpu``: the same global rollouts, split across processes.
"""

from __future__ import annotations

import math

import torch

NUM_GENERATIONS = 4
PROBLEMS = [("2+3", "5"), ("7*6", "42"), ("10-4", "6")]
COMPLETIONS = [  # 3 groups of 4; answers of different token lengths, some missing
    "2+3 is 5 so \\boxed{5}",
    "think \\boxed{6}",
    "no idea",
    "\\boxed{5}",
    "7*6=42, \\boxed{42}",
    "hmm 7 times 6 is \\boxed{48}",
    "\\boxed{42}",
    "it is \\boxed{4 2}",
    "\\boxed{6}",
    "10-4 = \\boxed{6}",
    "x",
    "take 10, minus 4: \\boxed{5}",
]
OUTCOMES = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, None, 1.0, 1.0, 0.0, 0.0]  # None: unscorable row
# the second half without answers: on two processes, only the first has counterfactuals to run
COMPLETIONS_LOPSIDED = COMPLETIONS[:6] + ["no answer", "still none", "x", "y", "z", "nothing"]


def global_inputs() -> list[dict]:
    return [
        {"prompt": [{"role": "user", "content": f"What is {q}? Answer in \\boxed{{}}."}], "answer": a}
        for q, a in PROBLEMS
        for _ in range(NUM_GENERATIONS)
    ]


def local_batch(tokenizer, rows: slice, device="cpu", completions=COMPLETIONS) -> tuple[dict, list[dict]]:
    """The output dict TRL would hand over for ``rows`` of the global batch, padded locally as TRL pads."""
    inputs = global_inputs()[rows]
    prompts = [tokenizer.apply_chat_template(x["prompt"], tokenize=False, add_generation_prompt=True) for x in inputs]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    completion_ids = [
        tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for c in completions[rows]
    ]
    width_p, width_c = max(map(len, prompt_ids)), max(map(len, completion_ids))
    pad = tokenizer.pad_token_id

    def tensor(rows_, width, left):
        ids = torch.full((len(rows_), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows_), width), dtype=torch.long)
        for i, r in enumerate(rows_):
            sl = slice(width - len(r), width) if left else slice(0, len(r))
            ids[i, sl], mask[i, sl] = torch.tensor(r), 1
        return ids.to(device), mask.to(device)

    p_ids, p_mask = tensor(prompt_ids, width_p, left=True)
    c_ids, c_mask = tensor(completion_ids, width_c, left=False)
    output = {
        "prompt_ids": p_ids,
        "prompt_mask": p_mask,
        "completion_ids": c_ids,
        "completion_mask": c_mask,
        "advantages": torch.zeros(len(inputs), device=device),
    }
    return output, inputs


def global_rewards(device="cpu") -> torch.Tensor:
    """(N, 1) rewards as ``_calculate_rewards`` returns them: gathered, NaN for None."""
    return torch.tensor([[math.nan if r is None else r] for r in OUTCOMES], device=device)


def perturb(model, scale: float = 0.05, seed: int = 1) -> None:
    """Move the policy away from its reference, deterministically, so that drift is non-zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator).to(p.device, p.dtype))


def score(trainer, rows: slice, completions=COMPLETIONS, *, with_trl_statistics: bool = False) -> dict:
    """Run the ISPO scoring on the fixed rollouts ``rows`` (the local part) and return the output dict.

    ``with_trl_statistics``: hand over pi_old log-probs and entropies as TRL's own forward would (so this
    process needs no pi_old forward of its own).
    """
    tokenizer = trainer.processing_class
    output, inputs = local_batch(tokenizer, rows, trainer.accelerator.device, completions)
    from ispo.trainer.trainer import BatchCapture

    trainer.model.train()
    capture = BatchCapture(rewards_per_func=global_rewards(trainer.accelerator.device))
    if with_trl_statistics:
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with torch.no_grad():
            logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, input_ids, attention_mask, output["completion_ids"].size(1), compute_entropy=True
            )
        output["old_per_token_logps"] = logps
        capture.forwards.append((logps, entropies, None))
    trainer.score_batch(output, inputs, capture)
    return output
