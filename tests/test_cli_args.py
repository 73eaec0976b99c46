"""``ispo.cli_args``: dataclass fields -> ``--flags`` with type conversion, one place for every command."""

from __future__ import annotations

import argparse
import enum
from dataclasses import dataclass, field
from typing import Literal

import pytest

from ispo.cli_args import add_flags, flag_fields, parse_value, values_from_args


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Settings:
    name: str = field(metadata={"help": "a name"})  # required: no default
    steps: int = field(default=3, metadata={"help": "how many"})
    rate: float = field(default=0.5, metadata={"help": "how fast (100% = 1)"})
    verbose: bool = field(default=False, metadata={"help": "talk"})
    chat: bool | None = field(default=None, metadata={"help": "chat template (default: automatic)"})
    mode: Literal["fast", "slow"] = field(default="fast", metadata={"help": "speed"})
    limit: int | None = field(default=None, metadata={"help": "cap"})
    ks: list[int] | None = field(default=None, metadata={"help": "k values"})
    weights: tuple[float, float] = field(default=(0.5, 0.5), metadata={"help": "two weights"})
    tags: tuple[str, ...] = field(default=("a",), metadata={"help": "tags"})
    _private: int = 0


def parser_for(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_flags(parser, flag_fields(Settings), **kwargs)
    return parser


def parse(argv, **kwargs) -> Settings:
    return Settings(**values_from_args(parser_for(**kwargs).parse_args(argv), flag_fields(Settings)))


def test_absent_flags_keep_the_dataclass_defaults():
    assert parse(["--name", "x"]) == Settings(name="x")


def test_typed_flags_convert_every_kind():
    settings = parse(
        [
            "--name",
            "x",
            "--steps",
            "7",
            "--rate",
            "1e-3",
            "--verbose",
            "--no-chat",
            "--mode",
            "slow",
            "--limit",
            "4",
            "--ks",
            "4,16",
            "--weights",
            "0.25, 0.75",
            "--tags",
            "b,c",
        ]
    )
    assert settings == Settings(
        name="x",
        steps=7,
        rate=1e-3,
        verbose=True,
        chat=False,
        mode="slow",
        limit=4,
        ks=[4, 16],
        weights=(0.25, 0.75),
        tags=("b", "c"),
    )
    assert parse(["--name", "x", "--limit", "null", "--chat"]).limit is None
    assert parse(["--name", "x", "--chat"]).chat is True


@pytest.mark.parametrize(
    "argv",
    [["--steps", "3.5"], ["--mode", "medium"], ["--weights", "1,2,3"], ["--rate", "fast"], ["--ks", "a,b"]],
)
def test_bad_values_are_usage_errors(argv, capsys):
    parser = argparse.ArgumentParser(prog="p")
    add_flags(parser, flag_fields(Settings))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--name", "x", *argv])
    assert exit_info.value.code == 2
    assert f"argument {argv[0]}: expected" in capsys.readouterr().err


def test_required_fields_are_required_flags_and_private_fields_are_not_flags(capsys):
    parser = argparse.ArgumentParser(prog="p")
    add_flags(parser, flag_fields(Settings))
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert "--name" in capsys.readouterr().err
    options = {option for action in parser._actions for option in action.option_strings}
    assert "--private" not in options and "--_private" not in options


def test_help_shows_defaults_and_names_follow_the_style():
    text = parser_for().format_help()
    assert "how many (default: 3)" in text and "how fast (100% = 1) (default: 0.5)" in text
    assert "chat template (default: automatic)" in text  # a help that states its default is left alone
    assert "{fast,slow}" in text and "--no-verbose" in text
    underscored = parser_for(hyphens=False, typed=False, show_defaults=False)
    args = underscored.parse_args(["--name", "x", "--steps", "9", "--verbose", "yes"])
    assert values_from_args(args, flag_fields(Settings)) == {"name": "x", "steps": "9", "verbose": "yes"}  # raw text


def test_include_and_exclude_select_fields():
    assert [f.name for f in flag_fields(Settings, include=["mode", "steps"])] == ["steps", "mode"]
    assert "name" not in [f.name for f in flag_fields(Settings, exclude=["name"])]


@pytest.mark.parametrize(
    ("text", "annotation", "expected"),
    [
        ("TRUE", bool, True),
        ("off", bool, False),
        ("0", bool, False),
        ("123", str, "123"),  # string fields keep the text as written
        ("null", str | None, None),
        ("none", str | None, "none"),  # transformers' report_to takes the word "none"
        ("[]", None | str | list[str], []),
        ("[wandb, tensorboard]", None | str | list[str], ["wandb", "tensorboard"]),
        ("wandb", None | str | list[str], "wandb"),
        ("true", str | bool, True),
        ("latest", str | bool, "latest"),
        ("false", str | None | Literal[False], False),
        ('{"a": 1}', dict | str | None, {"a": 1}),
        ("plain", dict | str | None, "plain"),
        ("5", int | str | None, 5),
        ("blue", Color, Color.BLUE),
        ("blue", Color | str, "blue"),
        ("1,2.5", list[float], [1.0, 2.5]),
        ("[1, 2]", tuple[int, ...], (1, 2)),
        ("a: 1", object, {"a": 1}),  # anything else is read as YAML
    ],
)
def test_parse_value(text, annotation, expected):
    value = parse_value(text, annotation)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "annotation", "message"),
    [
        ("maybe", bool, "--x: expected true or false, got 'maybe'"),
        ("x", int, "--x: expected an integer"),
        ("green", Color, "--x: expected one of red, blue"),
        ("1,2", tuple[int, int, int], "--x: expected 3 comma-separated values"),
        ("[1", dict, "--x: expected a YAML value"),
        ("x", int | float, "--x: expected int or float"),
    ],
)
def test_parse_value_errors_name_the_flag(text, annotation, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_value(text, annotation, flag="--x")
