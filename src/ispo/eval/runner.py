"""The evaluation loop: prompts -> batched generation -> ``ispo.answers`` -> records -> summary.

``evaluate(EvalConfig(...))`` writes into ``output_dir``:

- ``samples.jsonl``: one record per (benchmark, problem id, sample index), appended and fsynced
  after every batch. A rerun skips the keys already there, so it never redoes or duplicates work,
  and an interrupted run loses at most the batch in flight.
- ``run_config.json``: the settings that change what is generated. A rerun with different ones is
  refused (mixing them would corrupt the scores); ``--overwrite`` starts afresh.
- ``summary.json`` and ``summary.md``: see :mod:`ispo.eval.summary`.

Answers are graded by ``ispo.answers.verify_batch``, the function the training reward calls. With
``flexible_extract`` the last number of each completion is graded too, as separate ``flexible``
metrics (:mod:`ispo.eval.flexible`); the strict scores do not change.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ispo.answers import ANSWER_FORMATS, AnswerFormat, extract_answer, verify_batch
from ispo.eval.backends import Backend, Generation
from ispo.eval.benchmarks import PAPER_BENCHMARKS, Problem, load_benchmark
from ispo.eval.confidence import answer_confidences
from ispo.eval.flexible import add_flexible
from ispo.eval.prompts import NO_CHAT_TEMPLATE, PromptFormat, choose_prompt_format, encode_prompt, resolve_template
from ispo.eval.records import RecordStore
from ispo.eval.summary import markdown_report, summarize
from ispo.models.loading import ModelSourceError, check_model_source, first_line, looks_local, resolve_model

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
RUN_CONFIG_FILE = "run_config.json"
# Settings that change the generated samples; the others (benchmarks, limit, n_samples, batch
# size, backend) only change which samples exist or how fast they come.
GENERATION_KEYS = (
    "model",
    "tokenizer",
    "prompt",
    "chat",
    "answer_format",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
)


class EvalError(ValueError):
    """A configuration or output directory that cannot be evaluated; the message says how to fix it."""


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class EvalConfig:
    """Settings of one ``ispo eval`` run; each field is a ``--flag`` of the command (``_`` -> ``-``)."""

    model: str = field(
        metadata=_help(
            "hub id, local folder (save_pretrained / ispo train checkpoint), .gguf file, or smollm2-135m-instruct"
        )
    )
    output_dir: str = field(metadata=_help("where samples.jsonl, summary.json and summary.md go; reruns resume"))
    tokenizer: str | None = field(
        default=None, metadata=_help("tokenizer to load when the checkpoint has none (default: the model's)")
    )
    benchmarks: list[str] = field(
        default_factory=lambda: list(PAPER_BENCHMARKS),
        metadata=_help(
            "comma-separated names (aime24, aime25, amc23, math500, olympiadbench, minerva, gsm8k) or .jsonl paths"
        ),
    )
    data_dir: str | None = field(default=None, metadata=_help("read DIR/<name>.jsonl instead of the hub"))
    limit: int | None = field(default=None, metadata=_help("evaluate only the first K problems of each benchmark"))
    n_samples: int = field(default=1, metadata=_help("samples per problem (avg@n, pass@k); 1 for greedy"))
    temperature: float = field(default=0.0, metadata=_help("0 = greedy pass@1; the paper samples at 0.6"))
    top_p: float = field(default=1.0, metadata=_help("nucleus sampling mass (sampling only)"))
    max_new_tokens: int = field(default=3072, metadata=_help("generation budget per sample"))
    batch_size: int = field(default=32, metadata=_help("prompts per generate call; records are flushed per batch"))
    backend: Literal["hf", "vllm"] = field(
        default="hf", metadata=_help("hf: transformers generate; vllm: needs ispo[vllm]")
    )
    prompt: str = field(
        default="qwen_math",
        metadata=_help("qwen_math (chat), plain, @FILE, or a template with {problem} (and {instruction})"),
    )
    chat: bool | None = field(
        default=None,
        metadata=_help("apply the chat template (default: for qwen_math, when the tokenizer has one; --chat insists)"),
    )
    answer_format: AnswerFormat = field(default="boxed", metadata=_help("where the answer is read"))
    flexible_extract: bool = field(
        default=False,
        metadata=_help(
            "also report 'flexible' metrics: the last number in the completion is the answer "
            "(lm-evaluation-harness's GSM8K flexible-extract); the strict metrics and the training reward "
            "read only --answer-format (docs/eval.md)"
        ),
    )
    pass_k: list[int] | None = field(default=None, metadata=_help("k of pass@k (default: powers of 2 up to n, and n)"))
    seed: int = field(default=0, metadata=_help("sampling and bootstrap seed"))
    bootstrap_resamples: int = field(default=1000, metadata=_help("resamples of the 95% bootstrap intervals"))
    verify_timeout: float = field(default=5.0, metadata=_help("seconds allowed to grade one answer"))
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(
        default="auto", metadata=_help("model dtype (auto: bfloat16 on GPU, float32 on CPU)")
    )
    device: str = field(default="auto", metadata=_help("hf backend device: auto, cpu, cuda, cuda:1, ..."))
    model_name: str | None = field(
        default=None, metadata=_help("row label in the table (default: the model's folder name)")
    )
    overwrite: bool = field(default=False, metadata=_help("delete this output directory's samples and start afresh"))
    trust_remote_code: bool = field(default=False, metadata=_help("allow custom model code from the hub"))
    tensor_parallel_size: int = field(default=1, metadata=_help("vllm only: GPUs per model"))
    gpu_memory_utilization: float = field(default=0.9, metadata=_help("vllm only: share of GPU memory to use"))

    def __post_init__(self) -> None:
        if isinstance(self.benchmarks, str):
            self.benchmarks = [name.strip() for name in self.benchmarks.split(",")]
        self.benchmarks = list(dict.fromkeys(name for name in self.benchmarks if name))
        if not self.benchmarks:
            raise EvalError("no benchmarks given")
        checks = [
            (self.n_samples >= 1, f"n_samples must be >= 1, got {self.n_samples}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (
                self.temperature > 0 or self.n_samples == 1,
                "greedy decoding (temperature 0) gives the same sample every time: use --n-samples 1, "
                "or a temperature > 0 for avg@n / pass@k",
            ),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (self.backend in ("hf", "vllm"), f"backend must be hf or vllm, got {self.backend!r}"),
            (self.answer_format in ANSWER_FORMATS, f"unknown answer_format {self.answer_format!r}"),
            (self.bootstrap_resamples >= 1, "bootstrap_resamples must be >= 1"),
            (self.verify_timeout > 0, "verify_timeout must be > 0"),
            (
                self.pass_k is None or all(1 <= k <= self.n_samples for k in self.pass_k),
                f"every pass_k must be in [1, n_samples={self.n_samples}], got {self.pass_k}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise EvalError(message)
        try:
            resolve_template(self.prompt)
        except ValueError as error:
            raise EvalError(str(error)) from None

    @property
    def display_name(self) -> str:
        return self.model_name or Path(self.model.rstrip("/")).name or self.model


def make_backend(config: EvalConfig) -> Backend:
    """The backend the config asks for; vLLM is imported here and nowhere else."""
    try:  # a .gguf file or a packaged model: its converted copy (ispo.models.loading.resolve_model)
        model = resolve_model(config.model)
        tokenizer = resolve_model(config.tokenizer) if config.tokenizer else None
        if looks_local(model):  # a hub id is checked by loading it, below
            check_model_source(model)
    except ModelSourceError as error:
        raise EvalError(str(error)) from None
    if config.backend == "vllm":
        from ispo.eval.backends import VLLMBackend

        return VLLMBackend(
            model,
            tokenizer=tokenizer,
            dtype=config.dtype,
            seed=config.seed,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            trust_remote_code=config.trust_remote_code,
        )
    from ispo.eval.backends import HFBackend

    try:
        return HFBackend.from_pretrained(
            model,
            tokenizer=tokenizer,
            dtype=config.dtype,
            device=config.device,
            trust_remote_code=config.trust_remote_code,
        )
    except OSError as error:  # a checkpoint folder without weights or tokenizer, say
        raise EvalError(f"model {config.model!r} cannot be loaded: {first_line(error)}") from None


def evaluate(config: EvalConfig, *, backend: Backend | None = None) -> dict:
    """Run (or resume) one evaluation and return the summary also written to ``summary.json``.

    ``backend`` overrides the one built from the config (tests pass an in-memory model). The model
    is not loaded at all when every sample is already on disk.
    """
    benchmarks = _load_benchmarks(config)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if config.overwrite:
        for name in (SAMPLES_FILE, RUN_CONFIG_FILE, "summary.json", "summary.md"):
            (output_dir / name).unlink(missing_ok=True)
    try:
        store = RecordStore(output_dir / SAMPLES_FILE)
    except ValueError as error:  # a damaged samples.jsonl: the message names the line
        raise EvalError(str(error)) from None
    run_settings = _check_run_config(config, output_dir, has_samples=len(store) > 0)

    pending = {
        name: [(p, i) for p in problems for i in range(config.n_samples) if (name, p.id, i) not in store]
        for name, problems in benchmarks.items()
    }
    total_pending = sum(len(items) for items in pending.values())
    logger.info("%d samples to generate, %d already in %s", total_pending, len(store), store.path)
    if total_pending:
        backend = backend or make_backend(config)
        prompt_format = _choose_prompt_format(config, backend.tokenizer, run_settings, has_samples=len(store) > 0)
        run_settings["prompt_format"] = prompt_format.description
        _write_json(output_dir / RUN_CONFIG_FILE, run_settings)
        for name, items in pending.items():
            if items:
                _generate_benchmark(
                    config, backend, store, name, items, prompt_format, total=len(benchmarks[name]) * config.n_samples
                )

    records = list(store.records.values())
    if config.flexible_extract:  # samples written without the flag are graded here, in memory
        add_flexible(records, timeout=config.verify_timeout)
    summary = summarize(
        benchmarks,
        records,
        model_name=config.display_name,
        n_samples=config.n_samples,
        temperature=config.temperature,
        pass_ks=config.pass_k,
        num_resamples=config.bootstrap_resamples,
        seed=config.seed,
        flexible=config.flexible_extract,
    )
    summary["prompt_format"] = run_settings.get("prompt_format")
    summary["config"] = asdict(config)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (output_dir / "summary.md").write_text(markdown_report(summary))
    return summary


def _load_benchmarks(config: EvalConfig) -> dict[str, list[Problem]]:
    benchmarks: dict[str, list[Problem]] = {}
    for entry in config.benchmarks:
        name, problems = load_benchmark(entry, data_dir=config.data_dir, limit=config.limit)
        if name in benchmarks:
            raise EvalError(f"two benchmarks are both named {name!r}; rename one of the files")
        benchmarks[name] = problems
    return benchmarks


def _check_run_config(config: EvalConfig, output_dir: Path, *, has_samples: bool) -> dict:
    """Refuse to add samples generated with other settings to the ones already there; returns the
    settings now in ``run_config.json`` (with the prompt format of the samples on disk, if known)."""
    settings = {key: getattr(config, key) for key in GENERATION_KEYS}
    settings["prompt"] = resolve_template(config.prompt)  # a changed @FILE counts as a change
    path = output_dir / RUN_CONFIG_FILE
    if has_samples and path.exists():
        stored = json.loads(path.read_text())
        changed = [key for key in GENERATION_KEYS if stored.get(key) != settings[key]]
        if changed:
            details = "; ".join(f"{key}: {stored.get(key)!r} -> {settings[key]!r}" for key in changed)
            raise EvalError(
                f"{output_dir} holds samples generated with other settings ({details}); "
                "use another --output-dir, or --overwrite to discard them"
            )
        if stored.get("prompt_format"):
            settings["prompt_format"] = stored["prompt_format"]
    _write_json(path, settings)
    return settings


def _choose_prompt_format(config: EvalConfig, tokenizer, run_settings: dict, *, has_samples: bool) -> PromptFormat:
    """The prompt format for this tokenizer, with a one-line notice when it falls back to the plain prompt."""
    try:
        chosen = choose_prompt_format(tokenizer, resolve_template(config.prompt), config.chat)
    except ValueError as error:  # --chat with a tokenizer without a chat template
        raise EvalError(f"{config.tokenizer or config.model}: {error}") from None
    before = run_settings.get("prompt_format")
    if has_samples and before and before != chosen.description:
        raise EvalError(
            f"{config.output_dir} holds samples with prompt format {before!r}, now {chosen.description!r}; "
            "use another --output-dir, or --overwrite to discard them"
        )
    if chosen.description == NO_CHAT_TEMPLATE:
        logger.warning(
            "ispo eval: %s: the tokenizer has no chat template; using the plain prompt (prompt_format in summary.json)",
            config.tokenizer or config.model,
        )
    return chosen


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def sample_seed(seed: int, benchmark: str, problem_id: str, sample_index: int) -> int:
    """A 31-bit seed of one sample, stable across runs and batch sizes (vLLM seeds every sample with it)."""
    return zlib.crc32(f"{seed}\0{benchmark}\0{problem_id}\0{sample_index}".encode()) & 0x7FFFFFFF


def _generate_benchmark(config, backend, store, name, items, prompt_format: PromptFormat, *, total) -> None:
    from tqdm.auto import tqdm

    tokenizer = backend.tokenizer
    prompt_ids = {}
    for problem, _ in items:
        if problem.id not in prompt_ids:
            prompt_ids[problem.id] = encode_prompt(
                tokenizer,
                problem.problem,
                template=prompt_format.template,
                answer_format=config.answer_format,
                chat=prompt_format.chat,
            )
    # Longest prompts first: batches of similar length pad less, and an out-of-memory shows up at once.
    items = sorted(items, key=lambda item: -len(prompt_ids[item[0].id]))
    with tqdm(total=total, initial=total - len(items), desc=name, unit="sample", dynamic_ncols=True) as progress:
        for start in range(0, len(items), config.batch_size):
            batch = items[start : start + config.batch_size]
            generations = backend.generate(
                [prompt_ids[problem.id] for problem, _ in batch],
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
                seeds=[sample_seed(config.seed, name, problem.id, index) for problem, index in batch],
            )
            outcomes = verify_batch(
                [problem.answer for problem, _ in batch],
                [generation.text for generation in generations],
                answer_format=config.answer_format,
                timeout=config.verify_timeout,
            )
            confidences = answer_confidences(
                tokenizer,
                [g.token_ids for g in generations],
                [g.token_logprobs for g in generations],
                config.answer_format,
            )
            records = [
                _record(config, name, problem, index, generation, correct, confidence)
                for (problem, index), generation, correct, confidence in zip(
                    batch, generations, outcomes, confidences, strict=True
                )
            ]
            if config.flexible_extract:
                add_flexible(records, timeout=config.verify_timeout)
            store.append(records)
            progress.update(len(batch))


def _record(config, benchmark: str, problem: Problem, index: int, generation: Generation, correct, confidence) -> dict:
    logprobs = generation.token_logprobs
    return {
        "benchmark": benchmark,
        "problem_id": problem.id,
        "sample_index": index,
        "gold": problem.answer,
        "completion": generation.text,
        "extracted_answer": extract_answer(generation.text, config.answer_format),
        "correct": correct,
        "num_tokens": len(generation.token_ids),
        "finish_reason": generation.finish_reason,
        "mean_logprob": sum(logprobs) / len(logprobs) if logprobs else None,
        "answer_mean_logprob": confidence[0] if confidence else None,
        "answer_mean_prob": confidence[1] if confidence else None,
    }
