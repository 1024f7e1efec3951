"""Findings of one target grouped by entry: the console explains an entry once per file,
however many rows or lines it fired on, and lists the places on one line."""
from __future__ import annotations

import re
from dataclasses import dataclass

from doctor.findings import Finding, Location
from doctor.results.words import plural

SHOWN_PLACES = 3   # places named on a group's line; the rest are counted


@dataclass(frozen=True)
class Group:
    findings: tuple[Finding, ...]    # same entry id, same file; the first is the earliest

    @property
    def first(self) -> Finding:
        return self.findings[0]

    def places(self) -> str:
        """'lines 5, 9, 12 (+3 more)', 'rows 5, 9' in Parquet, or 'cell 7, line 3; cell 9, line 1'
        in a notebook."""
        locs = [f.location for f in self.findings if f.location is not None]
        named = [_place(loc) for loc in locs[:SHOWN_PLACES]]
        more = f" (+{len(locs) - SHOWN_PLACES} more)" if len(locs) > SHOWN_PLACES else ""
        if all(loc.cell is None for loc in locs[:SHOWN_PLACES]):
            unit = "row" if all(loc.row is not None for loc in locs[:SHOWN_PLACES]) else "line"
            word = unit if len(locs) == 1 else plural(unit)
            return f"{word} {', '.join(named)}{more}"
        return "; ".join(named) + more


    def messages_differ(self) -> bool:
        """Whether the places say more than their line: messages that differ beyond numbers."""
        return len({re.sub(r"\d+", "#", f.message) for f in self.findings}) > 1

    def detail(self) -> list[tuple[str, str | None]]:
        """Every place, with its own message when the messages differ beyond numbers."""
        differ = self.messages_differ()
        return [(str(f.location) if f.location else "", f.message if differ else None) for f in self.findings]


def group_findings(findings: list[Finding]) -> list[Group]:
    """Worst first, then by file and first place; a group per (entry id, file)."""
    ordered = sorted(findings, key=_order)
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in ordered:
        groups.setdefault((f.id, f.location.path if f.location else ""), []).append(f)
    return [Group(tuple(found)) for found in groups.values()]


def _place(loc: Location) -> str:
    if loc.cell is not None:
        return f"cell {loc.cell}" + (f", line {loc.cell_line}" if loc.cell_line is not None else "")
    return "?" if loc.line is None else str(loc.line)


def _order(f: Finding) -> tuple[int, str, int, int]:
    loc = f.location
    return (-f.severity.rank, loc.path if loc else "", (loc.line or 0) if loc else 0, (loc.column or 0) if loc else 0)
