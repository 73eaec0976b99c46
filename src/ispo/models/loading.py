"""Telling, early and in one line, that a model cannot be loaded (``ispo train`` and ``ispo eval``).

A model is named by a local folder (``save_pretrained``, an ``ispo train`` checkpoint) or a hub id
(``org/name``). A missing folder, a folder that is no checkpoint, or a hub id that is unknown (or not
cached while ``HF_HUB_OFFLINE`` is set) should stop a command before any data or weights are read,
with a message that names the model, not a traceback from deep inside ``transformers``.
"""

from __future__ import annotations

from pathlib import Path


class ModelSourceError(ValueError):
    """A model path or hub id that cannot be loaded; the message names it, on one line."""


def looks_local(name: str) -> bool:
    """Whether ``name`` is meant as a folder: an explicit path, more than one ``/``, or an existing path."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def check_model_source(name: str, *, trust_remote_code: bool = False) -> None:
    """Raise :class:`ModelSourceError` unless ``name`` is a checkpoint folder or a loadable hub id.

    For a hub id, reading its config (one small file, cached for the real load) is what tells.
    """
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


def first_line(error: BaseException) -> str:
    """The first line of an error's message (``transformers`` explains over several), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
