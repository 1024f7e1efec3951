"""GitHub Actions workflow commands: one `::error file=...,line=...::` line per located
finding, so a pull request shows each finding at its line. Printed with the console report
when GITHUB_ACTIONS=true (the SARIF upload does the same for code scanning)."""
from __future__ import annotations

from doctor.findings import Severity
from doctor.results.report import Report

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_annotations(report: Report) -> str:
    lines = []
    for finding in report.findings:
        where = finding.location
        if where is None or not where.path:
            continue   # GitHub places an annotation at a file; the report above holds the rest
        props = [f"file={_property(where.path)}"]
        if where.line:
            props.append(f"line={where.line}")
            if where.column:
                props.append(f"col={where.column}")
        props.append(f"title={_property(finding.id)}")
        lines.append(f"::{_COMMAND[finding.severity]} {','.join(props)}::{_data(f'{finding.id} {finding.title}')}")
    return "".join(line + "\n" for line in lines)
