"""A capped collector of located problems, cheap enough for the per-row loop.

Every occurrence is counted; only the first `cap` of each kind keep their location and
values, so a problem repeated on a million lines costs a counter, not a million objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hit:
    line: int | None
    column: int | None
    values: dict[str, Any]
    end_line: int | None = None


@dataclass
class Hits:
    cap: int = 20
    counts: dict[str, int] = field(default_factory=dict)
    shown: dict[str, list[Hit]] = field(default_factory=dict)

    def add(self, entry_id: str, line: int | None, column: int | None = None,
            end_line: int | None = None, **values: Any) -> None:
        count = self.counts.get(entry_id, 0) + 1
        self.counts[entry_id] = count
        if count <= self.cap:
            self.shown.setdefault(entry_id, []).append(Hit(line, column, values, end_line))

    def merge_shifted(self, other: "Hits", line_shift: int) -> None:
        """Add another chunk's hits, whose lines count from the start of that chunk."""
        for entry_id, count in other.counts.items():
            before = self.counts.get(entry_id, 0)
            self.counts[entry_id] = before + count
            room = self.cap - len(self.shown.get(entry_id, ()))
            if room <= 0:
                continue
            moved = [Hit(None if h.line is None else h.line + line_shift, h.column, h.values,
                         None if h.end_line is None else h.end_line + line_shift)
                     for h in other.shown.get(entry_id, [])[:room]]
            if moved:
                self.shown.setdefault(entry_id, []).extend(moved)
