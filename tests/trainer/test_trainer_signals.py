"""The ISPO signals on fixed rollouts: IFD against a plain-loop reference, bad values, 1 vs 2 processes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import ispo_fixed_rollouts as fixed
import pytest
import torch

from ispo.trainer.trainer import BatchCapture

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


@pytest.fixture
def trainer_factory(tiny_model_path, tmp_path, config_kwargs):
    from datasets import Dataset

    from ispo import ISPOConfig, ISPOTrainer

    def make(**overrides):
        overrides.setdefault("per_device_train_batch_size", len(fixed.COMPLETIONS))
        overrides.setdefault("num_generations", fixed.NUM_GENERATIONS)
        args = ISPOConfig(**config_kwargs(tmp_path / "out", **overrides))
        trainer = ISPOTrainer(tiny_model_path, args=args, train_dataset=Dataset.from_list(fixed.global_inputs()))
        fixed.perturb(trainer.model)
        return trainer

    return make


def _answer_logps(model, ids: list[int], start: int, temperature: float) -> torch.Tensor:
    """log p of ids[start:] given ids[:start], from the full logits (plain loop reference)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0] / temperature
    logps = torch.log_softmax(logits.float(), dim=-1)
    return torch.stack([logps[t - 1, ids[t]] for t in range(start, len(ids))])


def _reference_ifd(trainer, mode: str) -> list[float]:
    """S_i by the definition (spec s1), one rollout at a time, with the marker and answer found by hand."""
    tokenizer, model, temperature = trainer.processing_class, trainer.model, trainer.args.temperature
    values = []
    for x, completion in zip(fixed.global_inputs(), fixed.COMPLETIONS, strict=True):
        prompt = tokenizer(
            tokenizer.apply_chat_template(x["prompt"], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
        marker_at = completion.rfind("\\boxed{")
        if marker_at < 0 or not completion.endswith("}"):
            values.append(0.0)
            continue
        thinking, answer = completion[:marker_at], completion[marker_at + len("\\boxed{") : -1]
        if mode == "reference":
            answer = x["answer"]
        encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # char-level: no merges
        with_ids = prompt + encode(thinking + "\\boxed{" + answer)
        without_ids = prompt + encode("\\boxed{" + answer)
        n = len(encode(answer))
        with_logps = _answer_logps(model, with_ids, len(with_ids) - n, temperature)
        without_logps = _answer_logps(model, without_ids, len(without_ids) - n, temperature)
        values.append((with_logps - without_logps).mean().item())
    return values


@pytest.mark.parametrize("mode", ["sampled", "reference"])
def test_conditional_ifd_matches_the_definition(trainer_factory, mode):
    trainer = trainer_factory(ifd_answer=mode)
    fixed.score(trainer, slice(None))
    expected = torch.tensor(_reference_ifd(trainer, mode))
    torch.testing.assert_close(trainer.last_record.batch.signals.ifd, expected, rtol=1e-4, atol=1e-5)
    assert (expected != 0).sum() >= 6


def test_composite_and_advantages_follow_core(trainer_factory):
    from ispo.core import group_advantages

    trainer = trainer_factory(critical="entropy")
    output = fixed.score(trainer, slice(None))
    record = trainer.last_record
    assert torch.isnan(record.rewards[7]) and output["advantages"][7] == 0  # unscorable row
    assert torch.equal(output["advantages"], group_advantages(record.rewards, fixed.NUM_GENERATIONS))
    # outcome dominance inside each group
    composite, outcome = record.rewards.view(-1, 4), record.batch.outcome.view(-1, 4)
    for c, o in zip(composite, outcome, strict=True):
        right, wrong = c[o == 1], c[o == 0]
        if len(right) and len(wrong):
            assert right.min() > wrong.max()
    metrics = record.metrics
    assert metrics["no_answer_rate"] == pytest.approx(2 / 12)
    assert metrics["accuracy"] == pytest.approx(6 / 11)
    assert 0 < metrics["critical/frac"] <= 0.5


def test_first_step_policy_is_the_base_so_no_token_is_critical(tiny_model_path, tmp_path, config_kwargs):
    """Eq. 5 on the first step: pi_old == pi_base, every drift is 0 < 0.3 nats, so D and C are empty and
    every R_token is 0 (the token term starts only once the policy has moved)."""
    from datasets import Dataset

    from ispo import ISPOConfig, ISPOTrainer

    args = ISPOConfig(
        **config_kwargs(
            tmp_path / "out", per_device_train_batch_size=len(fixed.COMPLETIONS), num_generations=fixed.NUM_GENERATIONS
        )
    )
    trainer = ISPOTrainer(tiny_model_path, args=args, train_dataset=Dataset.from_list(fixed.global_inputs()))
    fixed.score(trainer, slice(None))  # no perturbation: the policy is the frozen base
    record = trainer.last_record
    signals = record.batch.signals
    assert record.metrics["critical/frac"] == 0 and record.metrics["critical/drift_frac"] == 0
    assert record.metrics["critical/entropy_frac"] > 0  # the entropy filter alone still selects
    assert torch.equal(signals.token_reward, torch.zeros_like(signals.token_reward))
    assert bool((signals.ifd != 0).any())  # the IFD term is there from the first step


def test_non_finite_log_probs_stop_with_the_step(trainer_factory):
    trainer = trainer_factory(critical="entropy")
    trainer.state.global_step = 7
    output, inputs = fixed.local_batch(trainer.processing_class, slice(None))
    logps = torch.zeros(output["completion_ids"].shape)
    logps[3, 2] = float("nan")
    output["old_per_token_logps"] = logps
    trainer.model.train()
    capture = BatchCapture(rewards_per_func=fixed.global_rewards(), forwards=[(logps, torch.ones_like(logps), None)])
    with pytest.raises(FloatingPointError, match="step 7"):
        trainer.score_batch(output, inputs, capture)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch_two() -> list[str]:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    # On CPU, `--multi_gpu` is what starts N torchrun workers (gloo); `--cpu` alone starts one process.
    return [
        accelerate,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
    ]


def _errors(stderr: str) -> str:
    """The stderr lines worth reading (no progress bars or deprecation warnings)."""
    lines = [
        line
        for line in stderr.splitlines()
        if "Warning" not in line and "warnings.warn" not in line and "it/s]" not in line and line.strip()
    ]
    return "\n".join(lines[-60:])


_SIGNAL_DEATH = re.compile(r"failed \(exitcode: -(\d+)\)")


def _died_of_a_signal(result: subprocess.CompletedProcess) -> int | None:
    """The signal that killed a worker of a failed launch (not the launcher's SIGTERM to its siblings), or None.

    torchrun's agent logs ``failed (exitcode: -N)`` for the worker that died first; a Python exception
    in a worker is exit code 1 and never matches.
    """
    if result.returncode == 0:
        return None
    signals = [int(n) for n in _SIGNAL_DEATH.findall(result.stderr)]
    return next((n for n in signals if n != signal.SIGTERM), None)


def _run_launched(make_command, env: dict) -> subprocess.CompletedProcess:
    """Run a (multi-process) command; one retry, on a fresh port, if it hangs or a worker dies of a signal.

    A normal run takes about 10 s. Two rare faults of the two-process launch, neither reproduced on
    demand, get one retry: a hang until the timeout (about once in 35 runs when first seen; cause not
    found: rendezvous or teardown), and a worker killed by SIGABRT with libstdc++'s "terminate called
    without an active exception" and no Python traceback (once in a CI run, none in 135 launches here,
    idle or under load). The likely cause of the second, the trainer and with it DDP's hold on the
    process group outliving the interpreter's shutdown, is removed (`ispo.train.release_distributed`);
    the retry stays because the fix could not be shown to work on a fault this rare. A second fault
    fails the test; the first is reported as a warning with the tail of its output so that it stays
    visible. A Python error in a worker is never retried.
    ``make_command`` is called once per attempt (a fresh port, a clean output folder).
    """
    for attempt in (1, 2):
        try:
            result = subprocess.run(make_command(), env=env, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as hang:
            if attempt == 2:
                raise
            stderr = hang.stderr.decode(errors="replace") if isinstance(hang.stderr, bytes) else hang.stderr or ""
            warnings.warn(
                f"launch hung for 120 s, retrying once; its stderr ended with:\n{_errors(stderr)}", stacklevel=2
            )
            continue
        killed_by = _died_of_a_signal(result)
        if killed_by is None or attempt == 2:
            return result
        warnings.warn(
            f"a worker died of signal {killed_by}, retrying once; stdout ended with:\n{result.stdout[-2000:]}\n"
            f"stderr ended with:\n{_errors(result.stderr)}",
            stacklevel=2,
        )
    raise AssertionError("unreachable")


def _run_scoring(make_launcher, model_path: str, out: Path, variant: str = "") -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    result = _run_launched(
        lambda: make_launcher() + [str(HERE / "two_process_rewards.py"), model_path, str(out), variant], env
    )
    assert result.returncode == 0, _errors(result.stderr)
    return json.loads(out.read_text())


@pytest.mark.spawn
@pytest.mark.timeout(300)
def test_two_processes_compute_the_same_composite_rewards(tiny_model_path, tmp_path):
    """Same fixed rollouts, split 6 + 6 over two processes (a group straddles them, token widths differ)."""
    one = _run_scoring(lambda: [sys.executable], tiny_model_path, tmp_path / "one.json")
    two = _run_scoring(_launch_two, tiny_model_path, tmp_path / "two.json")
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert one["critical_count"] == two["critical_count"] > 0
    for key in ("outcome", "ifd", "token_reward", "composite", "advantages", "gathered_local_advantages"):
        a, b = torch.tensor(one[key]), torch.tensor(two[key])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, equal_nan=True, msg=key)
    assert two["gathered_local_advantages"] == pytest.approx(two["advantages"], nan_ok=True)
    assert not all(math.isclose(x, 0) for x in one["advantages"])
    assert two["forwards_per_process"][0] == two["forwards_per_process"][1]


@pytest.mark.spawn
@pytest.mark.timeout(300)
def test_processes_run_equal_forwards_when_only_one_has_answers(tiny_model_path, tmp_path):
    """ZeRO-3 / FSDP gather parameters inside every forward: a process with no counterfactual runs a dummy."""
    two = _run_scoring(_launch_two, tiny_model_path, tmp_path / "two.json", variant="lopsided")
    assert two["num_processes"] == 2
    assert two["forwards_per_process"][0] == two["forwards_per_process"][1] >= 3
    assert any(v != 0 for v in two["ifd"][:6]) and all(v == 0 for v in two["ifd"][6:])


@pytest.mark.spawn
@pytest.mark.timeout(300)
def test_pi_old_forward_is_agreed_when_only_one_process_needs_it(tiny_model_path, tmp_path):
    """One process has TRL's pi_old statistics, the other must run a forward: both run it (no lone sharded forward)."""
    two = _run_scoring(_launch_two, tiny_model_path, tmp_path / "two.json", variant="fallback_one_rank")
    assert two["num_processes"] == 2
    assert two["forwards_per_process"][0] == two["forwards_per_process"][1]


@pytest.mark.spawn
@pytest.mark.timeout(300)
def test_two_process_training_runs_end_to_end(tmp_path):
    """The whole pipeline (generation hook, gathers, counterfactuals) under DDP with two gloo workers."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    arguments = [
        "-m",
        "ispo",
        "train",
        "--config",
        str(HERE.parents[1] / "recipes" / "tiny_cpu.yaml"),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--max_completion_length",
        "16",
        "--tiny_hidden_size",
        "32",
        "--output_dir",
        str(out),
    ]

    def command() -> list[str]:
        shutil.rmtree(out, ignore_errors=True)  # a retried launch starts from an empty folder
        return _launch_two() + arguments

    result = _run_launched(command, env)
    assert result.returncode == 0, result.stdout[-2000:] + "\n" + _errors(result.stderr)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    # step 1 measures the recorded decoding statistics against a forward on both processes (fp32: equal);
    # step 2 uses them, drift filter included
    assert [r["ispo/pi_old_from_generation"] for r in records] == [0.0, 1.0]
    # the entropy filter selects on every step; at step 1 the policy is its base, so the drift filter is empty
    assert records[-1]["critical/entropy_frac"] > 0 and records[0]["critical/drift_frac"] == 0


@pytest.mark.spawn
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("variant", "forwards"),
    [
        # RLPR: the gold answer after each rollout's reasoning (one chunk per process) and once per prompt
        # without it (one chunk), no pi_old forward; the std filter's EMA from the global rewards
        ("method=rlpr,rlpr_std_filter=true,rlpr_filter_beta=1.0", 2),
        # RL-ZVP: only the pi_old forward; an all-wrong group straddles the processes
        ("method=zvp,outcomes=zero_variance,zvp_alpha=0.3", 1),
    ],
)
def test_two_processes_compute_the_same_method_advantages(tiny_model_path, tmp_path, variant, forwards):
    """A method's rewards and (per-token) advantages do not depend on how the rows are split over processes."""
    one = _run_scoring(lambda: [sys.executable], tiny_model_path, tmp_path / "one.json", variant)
    two = _run_scoring(_launch_two, tiny_model_path, tmp_path / "two.json", variant)
    method = variant.split(",")[0].removeprefix("method=")
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert one["method"] == two["method"] == method
    for key in ("outcome", "composite", "advantages", "gathered_local_advantages"):
        a, b = torch.tensor(one[key]), torch.tensor(two[key])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, equal_nan=True, msg=key)
    torch.testing.assert_close(torch.tensor(two["gathered_local_advantages"]), torch.tensor(two["advantages"]))
    assert torch.tensor(one["advantages"]).abs().sum() > 0
    assert one["forwards_per_process"] == [forwards] and two["forwards_per_process"] == [forwards, forwards]


def test_ispo_gathers_only_per_rollout_scalars(trainer_factory):
    """ISPO's critical tokens depend on their own rollout alone: only (N,) tensors cross processes, so the
    per-step traffic is O(N) whatever the completion length (docs/algorithm.md, "Where the signals are
    computed"). A method that reads per-token statistics (token_credit="critical") still gathers (N, T)."""

    def traffic(trainer) -> list[tuple[int, ...]]:
        shapes, gather = [], trainer.accelerator.gather

        def counted(values):
            shapes.append(tuple(values.shape))
            return gather(values)

        trainer.accelerator.gather = counted
        fixed.score(trainer, slice(None))
        return shapes

    rows = len(fixed.COMPLETIONS)
    shapes = traffic(trainer_factory())
    # per-rollout scalars, and one per-process flag (whether recorded decoding statistics match a forward)
    assert shapes and all(shape in ((rows,), (1,)) for shape in shapes), shapes
    assert sum(shape[0] for shape in shapes) <= 12 * rows  # at most a dozen numbers per rollout
    per_token = traffic(trainer_factory(token_credit="critical"))
    assert any(len(shape) == 2 for shape in per_token)
