"""`--format concise`: one line per finding, as ruff prints them, for editors and grep.

`path:line:col: ID [severity] title`, nothing else and never colour: editors parse the
place, and a line stays whole in a pipe. Notebook places are the raw .ipynb line and
column, which is what an editor opens."""
from __future__ import annotations

from doctor.findings import Finding
from doctor.results.report import Report


def render_concise(report: Report) -> str:
    return "".join(concise_line(f) + "\n" for f in sorted(report.findings, key=_order))


def concise_line(finding: Finding) -> str:
    return f"{_place(finding)}{finding.id} [{finding.severity.value}] {finding.title}"


def _place(finding: Finding) -> str:
    loc = finding.location
    if loc is None or not loc.path:
        return ""    # an environment finding has no file: the line starts with its id
    parts = [loc.path] + [str(n) for n in (loc.line, loc.column if loc.line is not None else None) if n is not None]
    return ":".join(parts) + ": "


def _order(finding: Finding) -> tuple[str, int, int]:
    loc = finding.location
    if loc is None:
        return ("", 0, 0)
    return (loc.path or "", loc.line or 0, loc.column or 0)
