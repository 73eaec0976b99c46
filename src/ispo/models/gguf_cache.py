"""A GGUF model file as a plain ``from_pretrained`` folder, converted once and cached.

transformers reads a ``.gguf`` file (with the ``gguf`` package) as an ordinary model, its weights
dequantised to float, with the tokenizer and chat template the file carries. Such a model still
carries its quantizer, so TRL refuses to train it ("cannot perform fine-tuning on purely quantized
models") and ``save_pretrained`` refuses to write it. The weights are already plain tensors: with the
quantizer dropped, the model saves as float32 safetensors and reloads with identical logits. That
copy (model, tokenizer, chat template) is what every command then loads: about 23 s to convert on 2
CPU cores, 0.1 s to load afterwards.

The converted folder lives under ``<cache>/models/<file stem>-<key>/`` (``<cache>``: the package's
cache folder, ``$ISPO_CACHE``, else ``$XDG_CACHE_HOME/ispo``, else ``~/.cache/ispo``), where ``key``
hashes the file's contents and the conversion's format version. It is written into a temporary
folder beside it and renamed into place at the end, so an interrupted conversion leaves no
half-written model. docs/eval.md ("SmolLM2-135M-Instruct") describes the model it was built for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when the conversion's output changes: older cached folders are then not reused.
FORMAT_VERSION = 1
DONE_FILE = "ispo_converted.json"  # written last into the temporary folder: its presence marks a whole copy


class GGUFSourceError(ValueError):
    """A GGUF file that cannot be read; the message names it and says how to fix it, on one line."""


GGUF_INSTALL = "pip install 'gguf>=0.10,<0.20'"


def gguf_available() -> bool:
    """Whether the ``gguf`` package (transformers' GGUF reader) is installed, without importing it."""
    return importlib.util.find_spec("gguf") is not None


def file_key(path: Path) -> str:
    """16 hex digits of the SHA-256 of the file's bytes and :data:`FORMAT_VERSION`."""
    digest = hashlib.sha256(f"ispo-gguf-v{FORMAT_VERSION}\0".encode())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``<cache>/models``: the package's cache folder (the one the demo's warm starts use)."""
    from ispo.demo.warmstart import cache_root

    return cache_root() / "models"


def converted_folder(gguf_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Where the converted copy of ``gguf_path`` lives (or will), without converting anything."""
    path = Path(gguf_path).expanduser().resolve()
    return Path(cache_dir or default_cache_dir()) / f"{path.stem}-{file_key(path)}"


def is_converted(folder: Path) -> bool:
    return (folder / DONE_FILE).is_file() and (folder / "config.json").is_file()


def convert_gguf(gguf_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Return the cached ``from_pretrained`` folder of ``gguf_path``, converting it on first use.

    Raises:
        GGUFSourceError: no such file, or the ``gguf`` package is missing (the message gives the
            ``pip install`` command).
    """
    path = Path(gguf_path).expanduser()
    if not path.is_file():
        raise GGUFSourceError(f"model {gguf_path}: no such .gguf file")
    if not gguf_available():
        raise GGUFSourceError(f"model {gguf_path}: reading a .gguf file needs the gguf package: {GGUF_INSTALL}")
    folder = converted_folder(path, cache_dir)
    if is_converted(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        _write_converted(path.resolve(), scratch)
        try:
            os.rename(scratch, folder)
        except OSError:  # another process finished the same conversion first: keep its copy
            if not is_converted(folder):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _write_converted(path: Path, target: Path) -> None:
    """Load ``path`` through transformers' GGUF reader, drop the quantizer, save model and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    strip_quantizer(model)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    record = {"source": str(path), "source_bytes": path.stat().st_size, "format_version": FORMAT_VERSION}
    (target / DONE_FILE).write_text(json.dumps(record, indent=2) + "\n")


def strip_quantizer(model) -> None:
    """Make a GGUF-loaded (already dequantised) model an ordinary one that trains and saves.

    transformers marks it quantized through ``model.hf_quantizer`` and ``config.quantization_config``;
    the weights themselves are plain float tensors, so both marks are removed and nothing else changes.
    """
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property derived from hf_quantizer
            pass
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is not None and hasattr(config, "quantization_config"):
            try:
                delattr(config, "quantization_config")
            except AttributeError:
                config.quantization_config = None
