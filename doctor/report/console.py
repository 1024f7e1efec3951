"""The console report, in the spirit of `flutter doctor`: one line per area, details below.

Colour only when writing to a terminal; NO_COLOR is honoured (rich reads it).
"""
from __future__ import annotations

import os
from typing import IO, Any

from doctor.findings import AreaStatus, Finding, Severity
from doctor.results.report import Report

_MARK = {Severity.ERROR: ("✗", "bold red"), Severity.WARNING: ("!", "yellow"), Severity.INFO: ("•", "cyan")}
_OK = ("✓", "green")


def make_console(stream: IO[str], force_plain: bool = False) -> Any:
    from rich.console import Console

    plain = force_plain or "NO_COLOR" in os.environ or not (hasattr(stream, "isatty") and stream.isatty())
    return Console(file=stream, no_color=plain, highlight=False, soft_wrap=True,
                   force_terminal=False if plain else None, emoji=False,
                   width=None if not plain else 100)


def render_console(report: Report, stream: IO[str], quiet: bool = False, verbose: bool = False) -> None:
    from rich.markup import escape

    console = make_console(stream)
    if report.command in ("explain", "run") and report.explain is not None:
        from doctor.report.explain import render_console as render_explain

        render_explain(report.explain, console)
        return
    per_line, by_area = assign_findings(report.areas, report.findings)
    for status, found in zip(report.areas, per_line):
        if quiet and not found and status.ran:
            continue
        mark, style = _mark_for(found) if status.ran else _MARK[Severity.ERROR]
        detail = f" ({escape(status.detail)})" if status.detail else ""
        console.print(f"[{style}]\\[{mark}][/] [bold]{escape(status.label)}[/]{detail}")
        _render_findings(console, found, verbose)
    for area, found in by_area.items():
        mark, style = _mark_for(found)
        console.print(f"[{style}]\\[{mark}][/] [bold]{escape(report.headings.get(area, area))}[/]")
        _render_findings(console, found, verbose)
    if report.smoke is not None:
        from doctor.report.smoke import render_console as render_smoke

        render_smoke(report.smoke, console)
    for outcome in report.fixes:
        for line in outcome.lines():
            console.print(f"[dim]{escape(line)}[/]")
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/]")
    if report.skipped:
        parts = [f"{n} {'file' if n == 1 else 'files'} ({why})" for why, n in sorted(report.skipped.items())]
        console.print(f"[dim]Skipped: {escape('; '.join(parts))}.[/]")
    counts = report.counts()
    unchecked = len(report.unchecked)
    if not report.findings and not unchecked:
        console.print("\n[green]• No issues found![/]")
    else:
        parts = [f"{counts['error']} error(s)", f"{counts['warning']} warning(s)", f"{counts['info']} note(s)"]
        if unchecked:
            parts.append(f"{unchecked} {'target' if unchecked == 1 else 'targets'} not checked")
        console.print(f"\n[bold]Doctor found {', '.join(parts)}.[/]")


def assign_findings(areas: list[AreaStatus], findings: list[Finding]
                    ) -> tuple[list[list[Finding]], dict[str, list[Finding]]]:
    """Each finding under one status line: the line that owns its file (the most specific
    one, whatever its area), else the line of its area that owns its entry id, else the last
    line of its area that claims nothing in particular, else the area's last line. Findings
    of an area without a line are returned by area."""
    per_line: list[list[Finding]] = [[] for _ in areas]
    by_area: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path = [i for i, s in enumerate(areas) if s.holds_file(finding)]
        if by_path:
            per_line[max(by_path, key=lambda i: len(areas[i].path or ""))].append(finding)
            continue
        lines = [i for i, s in enumerate(areas) if s.area == finding.area]
        if not lines:
            by_area.setdefault(finding.area, []).append(finding)
            continue
        owner = next((i for i in lines if areas[i].owns(finding)), None)
        if owner is None:
            open_lines = [i for i in lines if areas[i].path is None and not areas[i].ids]
            owner = (open_lines or lines)[-1]
        per_line[owner].append(finding)
    return per_line, by_area


def _mark_for(found: list[Finding]) -> tuple[str, str]:
    """✓ when nothing was found, • when only notes (nothing to fix), else the worst mark."""
    worst = max((f.severity for f in found), key=lambda s: s.rank, default=None)
    return _OK if worst is None else _MARK[worst]


def _render_findings(console: Any, findings: list[Finding], verbose: bool) -> None:
    from rich.markup import escape

    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.location.path if f.location else "",
                                               f.location.line or 0 if f.location else 0))
    for f in ordered:
        mark, style = _MARK[f.severity]
        where = f" [dim]{escape(str(f.location))}[/]" if f.location else ""
        console.print(f"    [{style}]{mark}[/] {escape(f.title)}{where} [dim]({f.id})[/]")
        console.print(f"      {escape(f.message)}")
        if f.myth:
            console.print(f"      [magenta]Myth:[/] {escape(f.myth)}")
        for fix in f.fixes:
            label = {"safe": "fix (safe, --fix)", "unsafe": "fix (--unsafe-fixes)", "manual": "fix"}[fix.safety.value]
            console.print(f"      [green]{label}:[/] {escape(fix.text)}")
            if fix.command:
                console.print(f"        [bold]$ {escape(fix.command)}[/]")
            for edit in fix.edits:
                for line in edit.diff.splitlines():
                    style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                    console.print(f"        [{style}]{escape(line)}[/]")
        if verbose:
            for ev in f.evidence:
                console.print(f"      [dim]evidence: {escape(ev.name)} = {escape(str(ev.value))}[/]")
            for ref in f.refs:
                console.print(f"      [dim]see: {escape(ref)}[/]")
