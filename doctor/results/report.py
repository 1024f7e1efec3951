"""One report object for every command; the reporters only read it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctor.findings import AreaStatus, Finding, Severity

if TYPE_CHECKING:   # only annotations here: a scan needs neither module loaded (nor explain the plots)
    from doctor.results.plots import Plot
    from doctor.results.explain import ExplainResult
    from doctor.results.smoke import SmokeReport


@dataclass(frozen=True)
class FixOutcome:
    """What one applied fix did to one input: a script edit, or a dataset's repair."""

    path: str
    summary: str                      # one line, as shown
    applied: bool = True              # False: refused or nothing to change
    entry_id: str | None = None       # the finding an edit fixed
    details: tuple[str, ...] = ()     # further lines (counts, where the outputs are)
    outputs: tuple[str, ...] = ()     # files written: repaired copy, rejects, the edited file

    def lines(self) -> list[str]:
        return [self.summary, *self.details]


@dataclass
class Report:
    command: str                                   # scan | explain | run | smoke
    findings: list[Finding] = field(default_factory=list)
    areas: list[AreaStatus] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    explain: ExplainResult | None = None           # explain / run
    smoke: SmokeReport | None = None               # smoke, scan --smoke
    fixes: list[FixOutcome] = field(default_factory=list)   # scan --fix
    anchor_file: str | None = None                 # where SARIF attaches findings that have no file
    headings: dict[str, str] = field(default_factory=dict)  # area -> heading (the probe registry's)
    skipped: dict[str, int] = field(default_factory=dict)   # why -> files a folder scan left out
    notes: list[str] = field(default_factory=list)
    lead: list[str] = field(default_factory=list)  # printed before everything else (console)
    fixed: int | None = None                       # scan --fix: findings gone from the re-checked files
    plots: list[Plot] = field(default_factory=list)          # the HTML report's (doctor.results.plots)

    @property
    def unchecked(self) -> list[AreaStatus]:
        """Targets that could not be examined: never reported as fine."""
        return [a for a in self.areas if not a.ran]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out


def exit_code(report: Report, fail_on: str) -> int:
    """0: nothing at or above --fail-on; 1: something is."""
    if fail_on == "never":
        return 0
    level = Severity(fail_on)
    return 1 if report.unchecked or any(f.at_or_above(level) for f in report.findings) else 0
