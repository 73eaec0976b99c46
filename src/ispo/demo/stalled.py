"""The paper's Fig. 6 measurement in one cell: are the prompts whose whole group was wrong early solved later?

A group whose G rollouts are all wrong has zero outcome advantage, so GRPO's gradient on that prompt is 0;
ISPO's intrinsic terms still rank the rollouts (docs/algorithm.md). The paper's claim is that this
gradient is productive. What a cell measures (docs/study.md, "the paper's Fig. 6 quantity"):

1. while training, each group's number of correct rollouts (``GroupOutcomeRecorder``);
2. the *stalled* prompts: those whose group was all wrong during the first quarter of the steps (the
   early checkpoint, the same "early" as the study's failure-mode indices);
3. after training, G fresh samples per stalled prompt from the trained policy, at the training
   temperature and completion length; a prompt is *solved later* when at least one is correct (the
   criterion its group failed);
4. the same samples from the starting model, as the reference a fresh draw gives by chance alone (a
   group of G wrong rollouts at a success rate p is solved on a new draw with probability 1 - (1 - p)^G).

Sampling is seeded per prompt and sample (``ispo.eval.runner.sample_seed``), so the start model and the
trained one are compared on the same seeds, and GRPO and ISPO on the same prompts wherever their
stalled sets overlap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from transformers import TrainerCallback

from ispo.report import window_length


@dataclass(frozen=True)
class GroupOutcome:
    """One training group: the step that sampled it (1-based), its prompt's index in the RL records."""

    step: int
    prompt_index: int
    correct: int  # rollouts with R_o = 1
    size: int  # G


class GroupOutcomeRecorder(TrainerCallback):
    """Keeps every training group's outcome, read from ``trainer.last_record`` at the end of each step.

    Assumes the demo's order: one generation batch per optimizer step and the RL records taken in
    order (``shuffle_dataset=False``), so step s holds prompts (s - 1) * P .. s * P - 1, each repeated G
    times in a row (tests/demo/test_stalled.py checks this against TRL).
    """

    def __init__(self, trainer, prompts_per_step: int) -> None:
        self.trainer = trainer
        self.prompts_per_step = prompts_per_step
        self.groups: list[GroupOutcome] = []
        self._last = None

    def on_step_end(self, args, state, control, **kwargs):
        record = self.trainer.last_record
        if record is None or record is self._last:
            raise RuntimeError(
                "GroupOutcomeRecorder needs one generation batch per step (gradient_accumulation_steps 1, "
                "steps_per_generation 1)"
            )
        self._last = record
        size = record.batch.num_generations
        correct = record.batch.correct.view(-1, size).sum(dim=1).tolist()  # (P,) correct rollouts per group
        if len(correct) != self.prompts_per_step:
            raise RuntimeError(f"expected {self.prompts_per_step} groups per step, the batch has {len(correct)}")
        first = (state.global_step - 1) * self.prompts_per_step
        self.groups += [GroupOutcome(state.global_step, first + j, int(n), size) for j, n in enumerate(correct)]


def early_steps(steps: int) -> int:
    """The steps of the early checkpoint: the first quarter rounded up, at least one (``report.window_length``,
    the indices' "early")."""
    return window_length(steps)


def stalled_prompts(groups: list[GroupOutcome], steps: int) -> list[int]:
    """Indices (into the RL records) of the prompts whose group was all wrong in the early steps, in order."""
    last = early_steps(steps)
    return sorted({g.prompt_index for g in groups if g.step <= last and g.correct == 0})


def solved_fraction(
    model, tokenizer, records: list[dict], indices: list[int], *, samples, temperature, max_new_tokens, batch_size, seed
) -> float | None:
    """Share of the prompts ``records[i]`` (i in ``indices``) with at least one correct sample of ``samples``.

    None when ``indices`` is empty. Graded by ``ispo.answers.verify_batch``, as the held-out evaluation.
    """
    from ispo.answers import verify_batch
    from ispo.demo.evaluate import prompt_token_ids
    from ispo.eval.backends import HFBackend
    from ispo.eval.runner import sample_seed

    if not indices:
        return None
    was_training = model.training
    backend = HFBackend(model, tokenizer)  # puts the model in eval mode
    pairs = [(i, k) for i in indices for k in range(samples)]
    ids = {i: prompt_token_ids(tokenizer, records[i]["prompt"]) for i in indices}
    keys = {i: json.dumps(records[i]["prompt"], sort_keys=True) for i in indices}
    texts: list[str] = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        generations = backend.generate(
            [ids[i] for i, _ in batch],
            temperature=temperature,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            seeds=[sample_seed(seed, "stalled", keys[i], k) for i, k in batch],
        )
        texts += [generation.text for generation in generations]
    model.train(was_training)
    correct = verify_batch([str(records[i]["answer"]) for i, _ in pairs], texts)
    solved = {i: False for i in indices}
    for (i, _), ok in zip(pairs, correct, strict=True):
        solved[i] = solved[i] or bool(ok)
    return sum(solved.values()) / len(solved)


def measure_stalled(config, groups: list[GroupOutcome], records, trained, tokenizer, start_model) -> dict:
    """The ``stalled`` entry of a cell's eval.json: the Fig. 6 quantity of the trained and the start model.

    ``config`` is the cell's ``DemoConfig`` (steps, G, temperature, completion length, eval batch size, seed).
    """
    indices = stalled_prompts(groups, config.steps)
    last = early_steps(config.steps)
    settings = dict(
        samples=config.num_generations,
        temperature=config.temperature,
        max_new_tokens=config.max_completion_length,
        batch_size=config.eval.batch_size,
        seed=config.seed,
    )
    by_difficulty: dict[str, int] = {}
    for i in indices:
        level = records[i].get("difficulty", "all")
        by_difficulty[level] = by_difficulty.get(level, 0) + 1
    return {
        "early_steps": last,
        "early_groups": sum(1 for g in groups if g.step <= last),
        "stalled": len(indices),
        "stalled_by_difficulty": by_difficulty,
        "samples": config.num_generations,
        "solved_later": solved_fraction(trained, tokenizer, records, indices, **settings),
        "solved_at_start": solved_fraction(start_model, tokenizer, records, indices, **settings),
        "groups": [asdict(g) for g in groups],
    }
