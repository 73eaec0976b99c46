"""``ispo.models.loading``: which names are folders, and one-line errors for models that cannot load."""

from __future__ import annotations

import pytest

from ispo.models.loading import ModelSourceError, check_model_source, first_line, looks_local


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("Qwen/Qwen2.5-Math-7B", False),
        ("gpt2", False),
        ("./ckpt", True),
        ("/abs/ckpt", True),
        ("~/ckpt", True),
        ("runs/ispo/checkpoint-500", True),
    ],
)
def test_looks_local(name, local):
    assert looks_local(name) is local


def test_folders_are_checked_without_the_hub(tmp_path):
    with pytest.raises(ModelSourceError, match="no such folder"):
        check_model_source(str(tmp_path / "missing"))
    with pytest.raises(ModelSourceError, match="has no config.json"):
        check_model_source(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    check_model_source(str(tmp_path))  # a checkpoint folder passes


def test_first_line():
    assert first_line(OSError("We couldn't connect.\nCheck your internet connection.")) == "We couldn't connect."
    assert first_line(OSError()) == "OSError"
