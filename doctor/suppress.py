"""Which findings a project wants: `select`/`ignore` rule-id prefixes (as ruff reads them),
severity overrides, and `# unsloth-doctor: ignore[ID, ...]` comments on a finding's line."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from doctor.findings import Finding, Severity

_COMMENT = re.compile(r"#\s*unsloth-doctor:\s*ignore\b(?:\[([^\]]*)\])?")
# only files where a comment can sit on a finding's line are read (never a large dataset)
_COMMENTED = (".py", ".ipynb", ".yaml", ".yml", ".toml", ".cfg", ".txt")


@dataclass
class Policy:
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, Severity] = field(default_factory=dict)

    def wants(self, rule: str) -> bool:
        if self.select and not matches(rule, self.select):
            return False
        return not matches(rule, self.ignore)

    def level(self, finding: Finding) -> Severity:
        """The override with the longest matching prefix, else the entry's own severity."""
        hits = [p for p in self.severity if finding.id.startswith(p)]
        return self.severity[max(hits, key=len)] if hits else finding.severity


def matches(rule: str, prefixes: Iterable[str]) -> bool:
    return any(rule.startswith(p) for p in prefixes)


def apply_policy(findings: list[Finding], policy: Policy) -> list[Finding]:
    kept = [f for f in findings if policy.wants(f.id)]
    return [f if policy.level(f) == f.severity else dataclasses.replace(f, severity=policy.level(f))
            for f in kept]


class LineReader:
    """Lines of the scanned files, each file read once (a finding's location names the file)."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def line(self, path: str, number: int) -> str | None:
        if path not in self._files:
            try:
                self._files[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self._files[path] = None
        lines = self._files[path]
        return lines[number - 1] if lines and 0 < number <= len(lines) else None


def ignored_by_comment(finding: Finding, reader: LineReader) -> bool:
    """`# unsloth-doctor: ignore` on the finding's line silences it; `ignore[ID, ID2]` only
    those ids (or id prefixes). In a notebook the raw .ipynb line holds the cell's line."""
    where = finding.location
    if where is None or not where.line or not where.path.endswith(_COMMENTED):
        return False
    text = reader.line(where.path, where.line)
    if not text:
        return False
    for hit in _COMMENT.finditer(text):
        if hit.group(1) is None:
            return True
        ids = [i.strip().strip('"\'') for i in hit.group(1).split(",")]
        if matches(finding.id, [i for i in ids if i]):
            return True
    return False


def drop_commented(findings: list[Finding], reader: LineReader | None = None) -> tuple[list[Finding], int]:
    """The findings no comment silences, and how many were silenced."""
    reader = reader or LineReader()
    kept = [f for f in findings if not ignored_by_comment(f, reader)]
    return kept, len(findings) - len(kept)
