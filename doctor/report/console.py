"""The console report, in the spirit of `flutter doctor`: one line per area, details below.

Colour only when writing to a terminal; NO_COLOR is honoured (rich reads it).
"""
from __future__ import annotations

import os
from typing import IO, Any

from doctor.findings import AreaStatus, Finding, Fix, Severity
from doctor.report.groups import Group, group_findings
from doctor.report.wrap import say
from doctor.results.report import Report
from doctor.results.words import counted

_MARK = {Severity.ERROR: ("✗", "bold red"), Severity.WARNING: ("!", "yellow"), Severity.INFO: ("•", "cyan")}
_OK = ("✓", "green")
_PIPE_WIDTH = 10_000
# the first word of a file target's label, as a noun to count clean files by
_NOUNS = {"Script": "script", "Config": "config", "Dataset": "dataset", "Model": "model folder", "GGUF": "GGUF file"}


def make_console(stream: IO[str], force_plain: bool = False) -> Any:
    """On a terminal, text wraps at its width (indentation kept, see `say`); anywhere else
    (a pipe, a file) nothing is wrapped, so a long command or path stays on one line."""
    from rich.console import Console

    terminal = hasattr(stream, "isatty") and stream.isatty()
    plain = force_plain or "NO_COLOR" in os.environ or not terminal
    # not a terminal: wide enough that a table (the smoke test's) is never cut either
    return Console(file=stream, no_color=plain, highlight=False, soft_wrap=not terminal,
                   force_terminal=None if terminal else False, emoji=False,
                   width=None if terminal else _PIPE_WIDTH)


def render_console(report: Report, stream: IO[str], quiet: bool = False, verbose: bool = False) -> None:
    console = make_console(stream)
    if report.command in ("explain", "run") and report.explain is not None:
        from doctor.report.explain import render_console as render_explain

        render_explain(report.explain, console)
        return
    write_report(report, console, quiet=quiet, verbose=verbose)


def write_report(report: Report, console: Any, quiet: bool = False, verbose: bool = False) -> None:
    """Default: a line per area or target, files with nothing found counted on one line, then
    a line per entry and file with its explanation once. --verbose: every finding in full
    and every file named. --quiet: only the lines with findings, without explanations."""
    from rich.markup import escape

    for line in report.lead:
        say(console, f"[bold cyan]→ {escape(line)}[/]")
    per_line, by_area = assign_findings(report.areas, report.findings)
    clean = [i for i, (s, found) in enumerate(zip(report.areas, per_line))
             if s.ran and s.path is not None and not found]
    for i, (status, found) in enumerate(zip(report.areas, per_line)):
        if quiet and not found and status.ran:
            continue
        if i in clean and not verbose:
            if i == clean[0]:
                console.print(f"[{_OK[1]}]\\[{_OK[0]}][/] [bold]{escape(clean_summary([report.areas[j] for j in clean]))}[/]")
            continue
        mark, style = _mark_for(found) if status.ran else _MARK[Severity.ERROR]
        say(console, f"[{style}]\\[{mark}][/] [bold]{escape(status.label)}[/]{_detail(status, found)}")
        _render_findings(console, found, verbose, quiet)
    for area, found in by_area.items():
        mark, style = _mark_for(found)
        say(console, f"[{style}]\\[{mark}][/] [bold]{escape(report.headings.get(area, area))}[/]")
        _render_findings(console, found, verbose, quiet)
    if report.smoke is not None:
        from doctor.report.smoke import render_console as render_smoke

        render_smoke(report.smoke, console)
    for outcome in report.fixes:
        for line in outcome.lines():
            say(console, f"[dim]{escape(line)}[/]")
    for note in report.notes:
        say(console, f"[dim]{escape(note)}[/]")
    if report.skipped:
        parts = [f"{counted(n, 'file')} ({why})" for why, n in sorted(report.skipped.items())]
        say(console, f"[dim]Skipped: {escape('; '.join(parts))}.[/]")
    counts = report.counts()
    unchecked = len(report.unchecked)
    if not report.findings and not unchecked:
        console.print("\n[green]• No issues found![/]")
    else:
        parts = [counted(counts["error"], "error"), counted(counts["warning"], "warning"), counted(counts["info"], "note")]
        if unchecked:
            parts.append(f"{counted(unchecked, 'target')} not checked")
        console.print(f"\n[bold]Doctor found {', '.join(parts)}.[/]")


def clean_summary(lines: list[AreaStatus]) -> str:
    """'41 scripts, 3 configs: nothing found': files named by the first word of their label."""
    kinds: dict[str, int] = {}
    for status in lines:
        word = status.label.split(" ", 1)[0]
        noun = _NOUNS.get(word, word.lower())
        kinds[noun] = kinds.get(noun, 0) + 1
    return ", ".join(counted(n, noun) for noun, n in kinds.items()) + ": nothing found"


def _detail(status: AreaStatus, found: list[Finding]) -> str:
    """The probe's detail, and for a file target the number of findings listed below it."""
    from rich.markup import escape

    parts = [status.detail] if status.detail else []
    if status.path is not None and found:
        parts.append(counted(len(found), "finding"))
    return f" ({escape(', '.join(parts))})" if parts else ""


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


def _render_findings(console: Any, findings: list[Finding], verbose: bool, quiet: bool = False) -> None:
    if verbose:
        for f in sorted(findings, key=lambda f: (-f.severity.rank, f.location.path if f.location else "",
                                                  f.location.line or 0 if f.location else 0)):
            _render_full(console, f)
        return
    for group in group_findings(findings):
        _render_group(console, group, explain=not quiet)


def _render_group(console: Any, group: Group, explain: bool) -> None:
    """`✗ path:line:col  ID  title`, or for several places of one entry in one file
    `✗ path  ID  title — lines 5, 9, 12 (+3 more)`; then the explanation and fixes once."""
    from rich.markup import escape

    f = group.first
    mark, style = _MARK[f.severity]
    if len(group.findings) == 1:
        where = f"{escape(str(f.location))}  " if f.location else ""
        tail = ""
    else:
        where = f"{escape(f.location.path)}  " if f.location else ""
        tail = f" — {escape(group.places())}"
    say(console, f"[{style}]{mark}[/] {where}[dim]{f.id}[/]  {escape(f.title)}{tail}", 4, hang=2)
    if not explain:
        return
    say(console, escape(f.message), 6)
    if f.myth:
        say(console, f"[magenta]Myth:[/] {escape(f.myth)}", 6)
    seen: set[tuple[str, str | None]] = set()
    for finding in group.findings:
        for fix in finding.fixes:
            if (fix.text, fix.command) not in seen:
                seen.add((fix.text, fix.command))
                _render_fix(console, fix)


def _render_full(console: Any, f: Finding) -> None:
    """A finding with its own message, evidence and references (--verbose)."""
    from rich.markup import escape

    mark, style = _MARK[f.severity]
    where = f" [dim]{escape(str(f.location))}[/]" if f.location else ""
    say(console, f"[{style}]{mark}[/] {escape(f.title)}{where} [dim]({f.id})[/]", 4, hang=2)
    say(console, escape(f.message), 6)
    if f.myth:
        say(console, f"[magenta]Myth:[/] {escape(f.myth)}", 6)
    for fix in f.fixes:
        _render_fix(console, fix)
    for ev in f.evidence:
        say(console, f"[dim]evidence: {escape(ev.name)} = {escape(str(ev.value))}[/]", 6)
    for ref in f.refs:
        say(console, f"[dim]see: {escape(ref)}[/]", 6)


def _render_fix(console: Any, fix: Fix) -> None:
    from rich.markup import escape

    label = {"safe": "fix (safe, --fix)", "unsafe": "fix (--unsafe-fixes)", "manual": "fix"}[fix.safety.value]
    say(console, f"[green]{label}:[/] {escape(fix.text)}", 6)
    if fix.command:
        say(console, f"[bold]$ {escape(fix.command)}[/]", 8)
    for edit in fix.edits:
        for line in edit.diff.splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            say(console, f"[{style}]{escape(line)}[/]", 8)
