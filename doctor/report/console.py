"""The console report, in the spirit of `flutter doctor`: one line per area, details below.

Colour only when writing to a terminal; NO_COLOR is honoured (rich reads it).
"""
from __future__ import annotations

import os
from typing import IO, Any

from doctor.findings import Finding, Severity
from doctor.report.model import Report

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
    if report.command in ("explain", "run") and "explain" in report.sections:
        from doctor.explain.render import render_console as render_explain

        render_explain(report.sections["explain"], console)
        return
    by_area: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_area.setdefault(finding.area, []).append(finding)
    shown_areas = set()
    for status in report.areas:
        found = by_area.get(status.area, [])
        shown_areas.add(status.area)
        worst = max((f.severity for f in found), key=lambda s: s.rank, default=None)
        mark, style = _MARK[worst] if worst else _OK
        if worst == Severity.INFO:
            mark, style = _OK
        if quiet and not found:
            continue
        detail = f" ({escape(status.detail)})" if status.detail else ""
        console.print(f"[{style}]\\[{mark}][/] [bold]{escape(status.label)}[/]{detail}")
        _render_findings(console, found, verbose)
    for area, found in by_area.items():
        if area in shown_areas:
            continue
        worst = max((f.severity for f in found), key=lambda s: s.rank)
        mark, style = _MARK[worst]
        console.print(f"[{style}]\\[{mark}][/] [bold]{escape(area)}[/]")
        _render_findings(console, found, verbose)
    if "smoke" in report.sections:
        from doctor.smoke.report import render_console as render_smoke

        render_smoke(report.sections["smoke"], console)
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/]")
    counts = report.counts()
    if not report.findings:
        console.print("\n[green]• No issues found![/]")
    else:
        parts = [f"{counts['error']} error(s)", f"{counts['warning']} warning(s)", f"{counts['info']} note(s)"]
        console.print(f"\n[bold]Doctor found {', '.join(parts)}.[/]")


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
        if verbose:
            for ev in f.evidence:
                console.print(f"      [dim]evidence: {escape(ev.name)} = {escape(str(ev.value))}[/]")
            for ref in f.refs:
                console.print(f"      [dim]see: {escape(ref)}[/]")
