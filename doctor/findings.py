"""The typed results every part of the doctor produces and every reporter reads.

Findings are frozen: probes and the engine build them, reporters only render them.
"""
from __future__ import annotations

import os

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Safety(str, Enum):
    """How a fix may be applied: ruff's applicability, as data."""

    SAFE = "safe"        # applied by --fix
    UNSAFE = "unsafe"    # applied only with --unsafe-fixes
    MANUAL = "manual"    # shown, never applied by us (install commands, driver updates)


@dataclass(frozen=True)
class Location:
    """A place in a file; line and column are 1-based, as editors and SARIF count."""

    path: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    # In a notebook, line and column are the raw .ipynb file's (for editors, JSON, SARIF);
    # people find the line by its cell (1-based, every cell counted) and its line there.
    cell: int | None = None
    cell_line: int | None = None
    # In a Parquet file there are no lines: `line` holds the row (1-based) for tools that
    # need a number, and people read "row N".
    row: int | None = None

    def __str__(self) -> str:
        out = self.path
        if self.row is not None:
            return out + f" row {self.row}"
        if self.cell is not None:
            return out + f" cell {self.cell}" + (f", line {self.cell_line}" if self.cell_line is not None else "")
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out


@dataclass(frozen=True)
class Evidence:
    """Why a finding fired: a fact with its value, or a line of text that matched."""

    kind: str                 # "fact" | "line" | "observation" | "words" (shared with an entry's text)
                              # | "reading" (what where the error happened says)
    name: str                 # fact name, or "log:LINE", or the probe's label
    value: Any = None
    source: str | None = None  # where the fact or line came from
    line: int | None = None


@dataclass(frozen=True)
class FileEdit:
    """A whole-file rewrite proposed by a fixer; applied atomically with a backup.

    `diff` is computed when the edit is proposed (`FileEdit.rewrite`), so that reporters
    show it without reading any file."""

    path: str
    new_text: str | None = None      # text content to write, or
    new_bytes: bytes | None = None   # binary content
    description: str = ""
    diff: str = ""                   # unified diff against the text the probe read

    @classmethod
    def rewrite(cls, path: str, old_text: str, new_text: str, description: str = "") -> "FileEdit":
        return cls(path, new_text, description=description, diff=unified_diff(path, old_text, new_text))

    def content(self) -> bytes:
        if self.new_bytes is not None:
            return self.new_bytes
        return (self.new_text or "").encode("utf-8")


def unified_diff(path: str, old: str, new: str, context: int = 2, limit: int = 40) -> str:
    """The change as a unified diff (what `scan` shows without --fix), cut after `limit` lines."""
    import difflib

    name = path.lstrip("/")
    diff = list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=f"a/{name}", tofile=f"b/{name}", n=context))
    if len(diff) > limit:
        diff = diff[:limit] + [f"... ({len(diff) - limit} more diff lines)\n"]
    return "".join(diff)


@dataclass(frozen=True)
class Fix:
    text: str
    safety: Safety = Safety.MANUAL
    kind: str = "manual"              # command | edit | config | dataset | model | manual
    command: str | None = None        # shown apart from prose, never run by us
    edits: tuple[FileEdit, ...] = ()  # present when the fix can be applied


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    severity: Severity
    category: str
    area: str
    message: str
    location: Location | None = None
    evidence: tuple[Evidence, ...] = ()
    fixes: tuple[Fix, ...] = ()
    refs: tuple[str, ...] = ()
    confidence: float | None = None   # explain's ranking, 0..1
    myth: str | None = None           # the folklore this finding corrects, if any

    def at_or_above(self, level: Severity) -> bool:
        return self.severity.rank >= level.rank


@dataclass(frozen=True)
class Observation:
    """A located fact a probe saw, to be turned into a finding by the entry of the same id.

    Probes never decide wording or severity; `values` fill the entry's templates.
    """

    entry_id: str
    location: Location | None = None
    values: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    fixes: tuple[Fix, ...] = ()


@dataclass(frozen=True)
class AreaStatus:
    """One line of the flutter-doctor style summary: an area and what ran in it.

    `ran=False`: the target could not be examined (unreadable, a probe that failed, a missing
    module). Such a line is never ✓, and it fails the run like an error (`--fail-on`)."""

    area: str
    label: str
    detail: str = ""
    ran: bool = True
    # Which of the area's findings this line stands for, when an area has several lines:
    # those located in `path` (a file, or a folder and what is in it), or whose entry id
    # starts with one of `ids`. A line with neither takes the area's remaining findings.
    path: str | None = None
    ids: tuple[str, ...] = ()

    def holds_file(self, finding: "Finding") -> bool:
        """The finding is located in this line's file, or in its folder."""
        if self.path is None or finding.location is None or not finding.location.path:
            return False
        where, mine = os.path.normpath(finding.location.path), os.path.normpath(self.path)
        return where == mine or where.startswith(mine + os.sep)

    def owns(self, finding: "Finding") -> bool:
        return self.holds_file(finding) or any(finding.id.startswith(prefix) for prefix in self.ids)
