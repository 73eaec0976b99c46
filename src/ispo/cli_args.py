"""Command-line flags from dataclass fields, for ``ispo train``, ``ispo eval`` and ``ispo demo``.

A settings dataclass is written once: each field's ``metadata["help"]`` is its ``--flag``'s help, and
its annotation says how the flag's text becomes a value (:func:`parse_value`):

- ``bool``: ``true/false``, ``yes/no``, ``on/off``, ``1/0``; typed flags are ``--flag`` / ``--no-flag``;
- ``int``, ``float``, ``str``; an ``Enum`` by its value;
- ``Literal[...]``: one of the choices;
- ``X | None``: ``null`` (or ``~``) is None, anything else is read as ``X``;
- ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``: comma-separated (``4,16``) or ``[4, 16]``;
- ``dict``: a YAML/JSON mapping; other unions try each member; any other type is read as YAML.

Two ways to use it: *typed* flags are converted while parsing (a bad value is argparse's usage
error) and an absent flag leaves the dataclass default; *raw* flags (``typed=False``) keep the text,
for commands that merge flags into a file of settings first (``ispo train``'s recipes) and convert
with :func:`parse_value` afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NULL_WORDS = ("null", "~")  # YAML's nulls; "none" stays text (transformers' report_to takes "none")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


@dataclass(frozen=True)
class FlagField:
    """One dataclass field exposed as a flag."""

    name: str
    owner: type
    field: dataclasses.Field
    annotation: Any  # the resolved type hint

    def flag(self, hyphens: bool) -> str:
        return "--" + (self.name.replace("_", "-") if hyphens else self.name)

    @property
    def required(self) -> bool:
        return self.field.default is dataclasses.MISSING and self.field.default_factory is dataclasses.MISSING

    @property
    def default(self) -> Any:
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return None

    @property
    def help(self) -> str:
        return str(self.field.metadata.get("help", ""))


def flag_fields(cls: type, *, include: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[FlagField]:
    """The ``init`` fields of dataclass ``cls`` that become flags (names starting with ``_`` never do).

    ``include`` keeps only those names (in the class's order); ``exclude`` drops names.
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: fall back to the raw ones
        hints = {}
    wanted = None if include is None else set(include)
    skipped = set(exclude)
    result = []
    for spec in dataclasses.fields(cls):
        if not spec.init or spec.name.startswith("_") or spec.name in skipped:
            continue
        if wanted is not None and spec.name not in wanted:
            continue
        result.append(FlagField(spec.name, cls, spec, hints.get(spec.name, spec.type)))
    return result


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    fields: Iterable[FlagField],
    *,
    hyphens: bool = True,
    typed: bool = True,
    show_defaults: bool = True,
) -> None:
    """Add one ``--flag`` per field.

    Args:
        hyphens: ``--n-samples`` for ``n_samples`` (else ``--n_samples``).
        typed: convert while parsing (else the namespace holds the text; see :func:`parse_value`).
            Absent flags are absent from the namespace either way, except typed booleans.
        show_defaults: append ``(default: ...)`` to the help when it does not mention one.
    """
    for item in fields:
        help_text = item.help
        if show_defaults and not item.required and "default" not in help_text:
            help_text += f" (default: {_show(item.default)})"
        kwargs: dict[str, Any] = {"dest": item.name, "help": help_text.replace("%", "%%")}
        if item.required:
            kwargs["required"] = True
        else:
            kwargs["default"] = argparse.SUPPRESS  # an absent flag keeps the dataclass default
        kind = _unwrap_optional(item.annotation)
        if not typed:
            kwargs["metavar"] = "VALUE"
        elif kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _converter(item.annotation, item.flag(hyphens))
            if typing.get_origin(kind) is typing.Literal:  # the converter checks the choice
                kwargs["metavar"] = "{" + ",".join(map(str, typing.get_args(kind))) + "}"
            elif typing.get_origin(kind) in (list, tuple):
                kwargs["metavar"] = "A,B,..."
        parser.add_argument(item.flag(hyphens), **kwargs)


def values_from_args(args: argparse.Namespace, fields: Iterable[FlagField]) -> dict[str, Any]:
    """``{field name: value}`` for the fields whose flag was given (or that argparse always sets)."""
    present = vars(args)
    return {item.name: present[item.name] for item in fields if item.name in present}


def parse_value(text: str, annotation: Any, *, flag: str = "value") -> Any:
    """Convert one flag's text to a value of type ``annotation`` (rules in the module docstring).

    Raises:
        ValueError: the text is not a valid value; the message names ``flag`` and the expected type.
    """
    try:
        return _parse(text.strip(), annotation)
    except _Mismatch as error:
        raise ValueError(f"{flag}: expected {error}, got {text!r}") from None


class _Mismatch(ValueError):
    """Internal: the message is what was expected."""


def _parse(text: str, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return _yaml(text)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        if len(members) < len(args) and text.lower() in NULL_WORDS:
            return None
        if len(members) == 1:
            return _parse(text, members[0])
        return _parse_union(text, members)
    if origin is typing.Literal:
        for choice in args:
            words = (TRUE_WORDS if choice else FALSE_WORDS) if isinstance(choice, bool) else ()
            if text == str(choice) or text.lower() in words:
                return choice
        raise _Mismatch("one of " + ", ".join(map(str, args)))
    if annotation is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise _Mismatch("true or false")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise _Mismatch("an integer" if annotation is int else "a number") from None
    if annotation is str:
        return text
    if origin in (list, tuple) or annotation in (list, tuple):
        return _parse_sequence(text, annotation)
    if origin is dict or annotation is dict:
        value = _yaml(text)
        if not isinstance(value, dict):
            raise _Mismatch("a mapping such as {key: value}")
        return value
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(text)
        except ValueError:
            raise _Mismatch("one of " + ", ".join(str(m.value) for m in annotation)) from None
    return _yaml(text)


def _parse_union(text: str, members: list) -> Any:
    """Try the members from the most to the least specific; a list or mapping only in bracket syntax."""

    def rank(member) -> int:
        origin = typing.get_origin(member) or member
        order = [typing.Literal, bool, int, float, list, tuple, dict]
        return order.index(origin) if origin in order else len(order)

    for member in sorted(members, key=rank):
        origin = typing.get_origin(member) or member
        if origin in (list, tuple) and not text.startswith("["):
            continue
        if origin is dict and not text.startswith("{"):
            continue
        if member is str or (isinstance(member, type) and issubclass(member, enum.Enum) and str in members):
            continue  # text is the last resort, below
        try:
            return _parse(text, member)
        except _Mismatch:
            continue
    if str in members:
        return text
    raise _Mismatch(" or ".join(_describe(m) for m in members))


def _parse_sequence(text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if text.startswith("["):
        raw = _yaml(text)
        if not isinstance(raw, list):
            raise _Mismatch("a list such as [a, b]")
        items = ["null" if item is None else str(item) for item in raw]
    else:
        items = [item.strip() for item in text.split(",") if item.strip()]
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise _Mismatch(f"{len(args)} comma-separated values")
        return tuple(_parse(item, kind) for item, kind in zip(items, args, strict=True))
    item_type = args[0] if args else Any
    values = [_parse(item, item_type) for item in items]
    return tuple(values) if origin is tuple else values


def _describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise _Mismatch("a YAML value") from None


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` for ``X | None``; ``annotation`` otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _converter(annotation: Any, flag: str):
    def convert(text: str) -> Any:
        try:
            return parse_value(text, annotation, flag=flag)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{flag}: ")) from None

    convert.__name__ = _describe(annotation)
    return convert


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)
