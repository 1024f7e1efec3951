"""The smoke test's result: stages with times, what actually ran, warnings mapped to entries.

Pure data: the runner fills it, the reporters read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.findings import Finding, Observation


@dataclass
class Stage:
    name: str
    seconds: float
    ok: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class LoggedWarning:
    """A warning line the child printed, and the knowledge entries it maps to."""

    line: int
    text: str
    entries: list[str] = field(default_factory=list)


@dataclass
class SmokeReport:
    stages: list[Stage] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    warnings: list[LoggedWarning] = field(default_factory=list)
    diagnoses: list[Finding] = field(default_factory=list)   # explain's view of a failure
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    refused: bool = False           # the VRAM estimate said no and --force was not given
    timed_out: bool = False
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return (not self.refused and not self.timed_out and bool(self.stages)
                and all(s.ok for s in self.stages) and self.facts.get("smoke.completed") is True)

    @property
    def failed_stage(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)
