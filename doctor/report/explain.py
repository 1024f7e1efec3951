"""Render an `ExplainResult`: rich console (colour only on a terminal, NO_COLOR honoured),
plain text and Markdown for bug reports (secrets and home folders redacted). JSON is
`doctor.report.jsonout`'s job. Everything shown is read from the typed result.

rich is imported only by the console/text path, so `--format json` never loads it.
"""
from __future__ import annotations

import io
import os
from typing import Any

from doctor.results.explain import Diagnosis, ExceptionInfo, ExplainResult, Frame

_LINK = {"cause": "was the direct cause of", "context": "happened while handling"}
_MESSAGE_CHARS = 600


def wants_color(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return bool(hasattr(stream, "isatty") and stream.isatty()) and "NO_COLOR" not in os.environ


def render_text(result: ExplainResult, color: bool = False, width: int | None = 100) -> str:
    """`width=None`: not wrapped at all (a pipe, a file), so a long path stays on one line."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, color_system="standard" if color else None,
                      width=width or 10_000, highlight=False, soft_wrap=width is None, emoji=False)
    render_console(result, console)
    return buf.getvalue()


def _line(console: Any, markup: str) -> None:
    """A line of the report wrapped to the terminal: continuation lines keep its indentation
    (a blank line before it stays one)."""
    from doctor.report.wrap import say

    while markup.startswith("\n"):
        console.print()
        markup = markup[1:]
    body = markup.lstrip(" ")
    say(console, body, len(markup) - len(body))


def render_console(result: ExplainResult, console: Any) -> None:
    from rich.markup import escape as e

    from doctor.report.wrap import say

    log = result.log
    final = log.final
    if final is None:
        _line(console, "[bold]No Python traceback found[/] in the text.")
    else:
        where = f" (line {final.log_line})" if final.log_line else ""
        rank = f" on rank {final.rank}" if final.rank is not None else ""
        _line(console, f"[bold red]{e(final.type or 'Error')}[/]{e(rank)}{e(where)}: {e(_short(final.message))}")
        if final.truncated:
            _line(console, "[yellow]The paste ends before the error line; this is the last traceback seen.[/]")
    if log.primary and len(log.primary.exceptions) > 1:
        _line(console, "\n[bold]Exception chain[/] (first to last)")
        for i, exc in enumerate(log.primary.exceptions, 1):
            if exc.link:
                _line(console, f"   [dim]the exception above {_LINK.get(exc.link, exc.link)}:[/]")
            _line(console, f"  {i}. {e(_exc_line(exc))}")
    if result.key_frames:
        _line(console, "\n[bold]Where[/]")
        for label, frame in _label_frames(result.key_frames):
            pkg = f"[{frame.package}] " if frame.package else ""
            say(console, f"[cyan]{label:<10}[/] {e(pkg + frame.where())}"
                + (f"  [dim](line {frame.log_line})[/]" if frame.log_line else ""), 2, hang=11)
            if frame.code:
                say(console, f"[dim]{e(frame.code)}[/]", 13)
    if result.raise_sites:
        _line(console, "\n[bold]Raised in the source[/] (the message, found in the library's code)")
        for r in result.raise_sites:
            kind = f"{r.kind} {r.exc_type}".strip()
            _line(console, f"  [cyan]{e(r.package)} {e(r.version)}[/] {e(r.where())}  [dim]\\[{e(r.category)} · {e(kind)}][/]")
            if r.condition:
                _line(console, f"    [dim]when:[/] {e(_short(r.condition, 200))}")
            if r.template:   # a "frame" site (a cut traceback) has no message
                _line(console, f"    [dim]message:[/] {e(_short(r.template, 200))}")
            if r.version_note:
                _line(console, f"    [yellow]{e(r.version_note)}[/]")
    run = result.run_summary
    if run:
        _line(console, f"\n[bold]Run[/] {e(run)}")
    if result.oom_summary:
        _line(console, f"{'' if run else chr(10)}[bold]Memory[/] {e(result.oom_summary)}")
    if log.death is not None:
        _line(console, f"[bold]Process died[/] ({e(log.death.kind)}, line {log.death.log_line}): {e(log.death.text)}")
    for b in log.build_errors[:5]:
        _line(console, f"[bold]Build error[/] ({e(b.tool)}, line {b.log_line}): {e(b.message)}")
    if log.rank_failures:
        parts = [f"rank {r.rank}{' (first to fail)' if r.root_cause else ''}: exit {r.exitcode}"
                 + (f" {r.signal}" if r.signal else "") for r in log.rank_failures]
        _line(console, f"[bold]Ranks[/] {e('; '.join(parts))}")
    if result.diagnoses and result.unmatched is None:
        _line(console, f"\n[bold]Diagnosis[/] ({len(result.diagnoses)} most likely)")
        for i, d in enumerate(result.diagnoses, 1):
            _render_diagnosis(console, i, d)
    if result.unmatched is not None:
        u = result.unmatched
        _line(console, f"\n[bold yellow]{_unmatched_heading(result)}[/] "
                      f"Closest general category: [bold]{e(u.category)}[/] (why: {e(u.reason)}).")
        _line(console, "To narrow it down, collect:")
        for item in u.collect:
            _line(console, f"  - {e(item)}")
        if result.diagnoses:
            _line(console, "\n[bold]Weak leads[/] (too little in the log to claim them)")
            for i, d in enumerate(result.diagnoses, 1):
                _render_diagnosis(console, i, d)
    for note in result.notes:
        _line(console, f"[dim]{e(note)}[/]")


def _render_diagnosis(console: Any, i: int, d: Diagnosis) -> None:
    from rich.markup import escape as e

    f = d.finding
    conf = f" · confidence {f.confidence:.2f}" if f.confidence is not None else ""
    _line(console, f"\n [bold]{i}. {e(f.title)}[/]  [dim]\\[{e(f.category)} · {e(f.id)}{conf}][/]")
    for ev in f.evidence:
        if ev.kind == "line":
            _line(console, f"    [dim]line {ev.line}:[/] {e(_short(str(ev.value), 160))}")
        elif ev.kind == "words":
            _line(console, f"    [dim]{e(wording_note(ev.value))}[/]")
        elif ev.kind == "reading":
            _line(console, f"    [cyan]{e(str(ev.value))}[/]")
    if d.env_note:
        style = "green" if d.env == "confirmed" else "yellow"
        _line(console, f"    [{style}]{e(d.env_note)}[/]")
    if cause_note(d):
        _line(console, f"    [cyan]{e(cause_note(d))}[/]")
    _line(console, f"    {e(f.message)}")
    if f.fixes:
        _line(console, "    [bold]Fix[/]")
        for fix in f.fixes:
            _line(console, f"      - {e(fix.text)}")
            if fix.command:
                _line(console, f"        [cyan]$ {e(fix.command)}[/]")
    if f.myth:
        _line(console, f"    [magenta]{e(myth_line(f))}[/]")
    if d.alternatives:
        _line(console, f"    [dim]also fits the same lines: {e(', '.join(d.alternatives))}[/]")


def wording_note(shared: str) -> str:
    """Why a lead by wording is shown: no symptom of the entry matched, only its words."""
    return f"closest by wording: no symptom of this entry matched; the report shares these words with it: {shared}"


def cause_note(d: Diagnosis) -> str:
    """How this diagnosis relates to another one found in the same log (`explains:`)."""
    if d.explains:
        return f"the cause of the later error {', '.join(d.explains)}: fix this first"
    if d.caused_by:
        return f"a consequence of {', '.join(d.caused_by)} (earlier in the log)"
    return ""


def myth_line(f: Any) -> str:
    """'Common advice says X: that is wrong because Y' for a one-line claim; an entry whose
    myth is already a paragraph with its own rebuttal is shown as written."""
    myth = " ".join((f.myth or "").split())
    if len(myth) < 200 and ". " not in myth.rstrip("."):
        because = f.message.split(". ")[0].rstrip(".")
        return f'Common advice says "{myth.rstrip(".")}": that is wrong because {because[:1].lower()}{because[1:]}.'
    return f"Common advice: {myth}"


def render_markdown(result: ExplainResult, diagnoses: bool = True) -> str:
    """Markdown for a bug report. `diagnoses=False` leaves the diagnosis list out, for a
    report that lists the findings itself and wants only the error, chain and frames."""
    from doctor.report.redact import redact

    log = result.log
    final = log.final
    out = ["## unsloth-doctor explain", ""]
    if final is None:
        out.append("No Python traceback found in the text.")
    else:
        out.append(f"**{final.type or 'Error'}**" + (f" (line {final.log_line})" if final.log_line else "")
                   + f": {_short(final.message)}")
    if log.primary and len(log.primary.exceptions) > 1:
        out += ["", "### Exception chain", ""]
        out += [f"{i}. `{_exc_line(x)}`" + (f" ({_LINK.get(x.link, x.link)} the one above)" if x.link else "")
                for i, x in enumerate(log.primary.exceptions, 1)]
    if result.key_frames:
        out += ["", "### Where", ""]
        out += [f"- {label}: `{f.where()}`" + (f" — `{f.code}`" if f.code else "")
                for label, f in _label_frames(result.key_frames)]
    if result.raise_sites:
        out += ["", "### Raised in the source", ""]
        for r in result.raise_sites:
            kind = f"{r.kind} {r.exc_type}".strip()
            out.append(f"- `{r.where()}` ({r.package} {r.version}; {r.category}; {kind})"
                       + (f" when `{_short(r.condition, 200)}`" if r.condition else ""))
            if r.version_note:
                out.append(f"  - _{r.version_note}_")
    if result.run_summary:
        out += ["", f"**Run:** {result.run_summary}"]
    if result.oom_summary:
        out += ["", f"**Memory:** {result.oom_summary}"]
    if log.death is not None:
        out += ["", f"**Process died** ({log.death.kind}, line {log.death.log_line}): `{log.death.text}`"]
    if result.diagnoses and diagnoses:
        out += ["", "### Diagnosis" if result.unmatched is None else "### Weak leads", ""]
        for i, d in enumerate(result.diagnoses, 1):
            f = d.finding
            conf = f", confidence {f.confidence:.2f}" if f.confidence is not None else ""
            out += [f"#### {i}. {f.title}", "", f"`{f.id}` ({f.category}{conf})", ""]
            lines = [ev for ev in f.evidence if ev.kind == "line"]
            if lines:
                out += ["```"] + [f"{ev.line}: {_short(str(ev.value), 200)}" for ev in lines] + ["```", ""]
            for ev in f.evidence:
                if ev.kind == "words":
                    out += [f"_{wording_note(ev.value)}_", ""]
                elif ev.kind == "reading":
                    out += [f"_{ev.value}_", ""]
            if d.env_note:
                out += [f"_{d.env_note}_", ""]
            if cause_note(d):
                out += [f"_{cause_note(d)}_", ""]
            out.append(f.message)
            if f.fixes:
                out += [""] + [f"- {x.text}" + (f"\n  `{x.command}`" if x.command else "") for x in f.fixes]
            if f.myth:
                out += ["", f"> {myth_line(f)}"]
            if f.refs:
                out += ["", "Refs: " + ", ".join(f.refs)]
            out.append("")
    if result.unmatched is not None:
        u = result.unmatched
        out += ["", f"{_unmatched_heading(result)} Closest general category: **{u.category}** (why: {u.reason}).",
                "", "Please collect:"] + [f"- {c}" for c in u.collect]
    if result.notes:
        out += [""] + [f"_{n}_" for n in result.notes]
    return redact("\n".join(out).rstrip() + "\n")


def _label_frames(frames: list[Frame]) -> list[tuple[str, Frame]]:
    out = []
    for i, f in enumerate(frames):
        if not f.in_library:
            label = "your code"
        elif i == len(frames) - 1 and i > 0:
            label = "raised in"
        else:
            label = "calls" if i > 0 else "raised in" if len(frames) == 1 else "entered"
        out.append((label, f))
    return out


def _exc_line(exc: ExceptionInfo) -> str:
    where = f" (line {exc.log_line})" if exc.log_line else ""
    rank = f" [rank {exc.rank}]" if exc.rank is not None else ""
    msg = _short(exc.message, 160)
    return f"{exc.type or 'Error'}{rank}{where}" + (f": {msg}" if msg else "")


def _short(text: str, limit: int = _MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unmatched_heading(result: ExplainResult) -> str:
    """No entry names a cause; when the message was found in a library's source, that is what
    the reader has (said so, not "nothing matches" under the place it was found)."""
    final = result.log.final
    cut = final is not None and not final.message   # its sites are the candidates of a frame, not the message
    if not cut and any(r.kind != "frame" for r in result.raise_sites):
        return "No knowledge entry explains it beyond where the source raises it (above)."
    return "No known cause matches this log."
