"""Reading JSON Lines files (``metrics.jsonl``, ``samples.jsonl``, benchmark files) with one error policy.

Every JSONL file of the project is read here, so a damaged file means the same thing everywhere:

- blank lines are skipped;
- an **unterminated last line** (no final newline) that is not valid JSON is what a crash in the
  middle of a write leaves behind: it is skipped and counted (:attr:`JsonlContents.truncated_line`),
  and the caller says so in one line (:meth:`JsonlContents.notice`). An unterminated last line that
  *is* valid JSON is a complete record (a file written by hand may lack the final newline);
- any other line that is not valid JSON (or not a JSON object, when objects are asked for) is a
  :class:`JsonlError` naming the file and the line number, unless the caller explicitly tolerates
  malformed lines (``skip_malformed=True``), in which case they are skipped and counted too.

A leaf module: standard library only, so the light commands (``ispo report``) stay light.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


class JsonlError(ValueError):
    """A JSONL line that cannot be read; the message starts with ``<file>:<line>:``."""


@dataclass
class JsonlContents:
    """What :func:`read_jsonl` read from ``path``."""

    path: Path
    records: list = field(default_factory=list)  # the parsed values, in file order
    line_numbers: list[int] = field(default_factory=list)  # 1-based line of each record
    truncated_line: int | None = None  # line number of a skipped unterminated last line
    malformed_lines: list[int] = field(default_factory=list)  # skipped because the caller tolerates them
    complete_bytes: int = 0  # size of the file up to the end of its last complete line

    @property
    def skipped(self) -> int:
        """How many non-blank lines were not read."""
        return len(self.malformed_lines) + (self.truncated_line is not None)

    def notice(self) -> str | None:
        """One line telling what was skipped, or None when every line was read."""
        if not self.skipped:
            return None
        parts = []
        if self.truncated_line is not None:
            parts.append(f"line {self.truncated_line} incomplete (cut short mid-write)")
        if self.malformed_lines:
            shown = ", ".join(map(str, self.malformed_lines[:5])) + (", ..." if len(self.malformed_lines) > 5 else "")
            parts.append(f"line(s) {shown} not valid JSON")
        lines = "line" if self.skipped == 1 else "lines"
        return f"{self.path}: skipped {self.skipped} {lines}: {'; '.join(parts)}; read {len(self.records)} records"


def read_jsonl(
    path: str | os.PathLike,
    *,
    objects: bool = True,
    skip_malformed: bool = False,
    limit: int | None = None,
) -> JsonlContents:
    """Read a JSON Lines file with the policy of this module.

    Args:
        objects: every record must be a JSON object (a ``dict``).
        skip_malformed: tolerate malformed lines anywhere (skipped and counted) instead of raising.
        limit: stop after this many records (lines after them are not read, nor checked).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        JsonlError: a malformed complete line, when ``skip_malformed`` is false.
    """
    path = Path(path)
    contents = JsonlContents(path=path)
    pieces = path.read_bytes().split(b"\n")  # the last piece is the unterminated tail (b"" after a final newline)
    offset = 0
    for index, raw in enumerate(pieces):
        if limit is not None and len(contents.records) >= limit:
            break
        number, terminated = index + 1, index < len(pieces) - 1
        offset += len(raw) + terminated
        if not raw.strip():
            contents.complete_bytes = offset
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if not terminated:  # cut short by a crash: that record was never complete
                contents.truncated_line = number
                break
            reason = error.msg if isinstance(error, json.JSONDecodeError) else f"not UTF-8: {error.reason}"
            _malformed(contents, number, f"not valid JSON ({reason})", skip_malformed)
        else:
            if objects and not isinstance(value, dict):
                _malformed(contents, number, f"expected a JSON object, got {type(value).__name__}", skip_malformed)
            else:
                contents.records.append(value)
                contents.line_numbers.append(number)
        contents.complete_bytes = offset
    return contents


def _malformed(contents: JsonlContents, number: int, reason: str, skip: bool) -> None:
    if not skip:
        raise JsonlError(f"{contents.path}:{number}: {reason}")
    contents.malformed_lines.append(number)
