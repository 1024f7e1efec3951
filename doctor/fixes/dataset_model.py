"""What a dataset repair is asked and what it reports, shared by the JSON and table writers.

A module of its own so that `dataset` (which picks a writer) and `dataset_table` (a writer)
both import it instead of each other.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from doctor.results.report import FixOutcome


class RepairError(Exception):
    """The file cannot be repaired at all (wrong type, unreadable); the message says why."""


@dataclass
class RepairOptions:
    unsafe_fixes: bool = False      # the names match the scan options (--unsafe-fixes, --in-place)
    in_place: bool = False
    output: str | None = None
    rejects: str | None = None
    journal_root: str | None = None


@dataclass
class RepairSummary:
    input_path: str
    output_path: str
    rejects_path: str
    backup_path: str | None = None
    input_rows: int = 0
    repaired_rows: int = 0      # rows written to the output
    changed_rows: int = 0       # of those, rows whose text differs from the input
    rejected_rows: int = 0
    blank_lines: int = 0
    wrote: bool = False
    actions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)         # entry id -> rows rejected
    first_reason: dict[str, str] = field(default_factory=dict)     # entry id -> an example

    @property
    def balanced(self) -> bool:
        """The invariant: every input row is either repaired or rejected."""
        return self.repaired_rows + self.rejected_rows == self.input_rows

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def outcome(self) -> FixOutcome:
        """What the repair did, as the report carries it."""
        lines = self.lines()
        outputs = (self.output_path, *((self.rejects_path,) if self.rejected_rows else ())) if self.wrote else ()
        return FixOutcome(self.input_path, lines[0], applied=self.wrote, details=tuple(lines[1:]), outputs=outputs)

    def lines(self) -> list[str]:
        rows = "row" if self.input_rows == 1 else "rows"
        out = [f"{self.input_rows} {rows} read from {self.input_path}: {self.repaired_rows} written "
               f"({self.changed_rows} changed), {self.rejected_rows} rejected"]
        out += [f"  {count} × {name}" for name, count in self.actions.most_common()]
        if self.blank_lines:
            out.append(f"  {self.blank_lines} blank line{'s' if self.blank_lines != 1 else ''} dropped "
                       "(they hold no row)")
        out += [f"  rejected {count} × {kind}, e.g. {self.first_reason[kind]}"
                for kind, count in self.reasons.most_common()]
        if self.wrote:
            out.append(f"repaired rows: {self.output_path}")
            if self.rejected_rows:
                out.append(f"rejected rows with reasons: {self.rejects_path}")
            if self.backup_path:
                out.append(f"original kept at {self.backup_path} (unsloth-doctor undo restores it)")
        else:
            out.append("nothing to change")
        return out


# A writer repairs one input into two sinks: the repaired rows and the rejects; None sinks
# are a dry run that only counts.
Writer = Callable[[str, "BinaryIO | None", "BinaryIO | None", RepairOptions, RepairSummary], None]


class Discard:
    """A sink for the dry pass."""

    def write(self, data: bytes) -> int:
        return len(data)
