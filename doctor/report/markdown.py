"""Markdown for pasting into a bug report, with tokens, e-mails and home folders redacted."""
from __future__ import annotations

from doctor.findings import Finding
from doctor.version import __version__
from doctor.results.words import counted
from doctor.results.report import Report
from doctor.report.environment import fact_lines
from doctor.report.redact import redact

_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def render_markdown(report: Report) -> str:
    lines = [f"## unsloth-doctor {report.command} report", "", f"*unsloth-doctor {__version__}*", ""]
    if report.areas:
        lines += ["| Area | Status |", "|---|---|"]
        for a in report.areas:
            lines.append(f"| {a.label} | {a.detail or ''} |")
        lines.append("")
    counts = report.counts()
    unchecked = f", {len(report.unchecked)} not checked" if report.unchecked else ""
    totals = ", ".join(counted(counts[k], w) for k, w in (("error", "error"), ("warning", "warning"), ("info", "note")))
    lines.append(f"**{totals}{unchecked}**")
    if report.skipped:
        lines.append("Skipped: " + "; ".join(f"{n} ({why})" for why, n in sorted(report.skipped.items())))
    lines.append("")
    for f in sorted(report.findings, key=lambda f: -f.severity.rank):
        lines += finding_lines(f)
    if report.explain is not None:
        from doctor.report.explain import render_markdown as explain_md

        lines.append(explain_md(report.explain, diagnoses=False))
    if report.smoke is not None:
        from doctor.report.smoke import render_markdown as smoke_md

        lines.append(smoke_md(report.smoke))
    if report.facts:
        lines += ["<details><summary>Environment facts</summary>", "", "```"]
        lines += fact_lines(report.facts)
        lines += ["```", "</details>", ""]
    return redact("\n".join(lines)) + "\n"


def finding_lines(f: Finding, place: str | None = None) -> list[str]:
    """One finding as a Markdown section: heading with its place (or `place`), message,
    evidence, fixes."""
    lines: list[str] = []
    where = f" — `{place}`" if place else f" — `{f.location}`" if f.location else ""
    conf = f" (confidence {f.confidence:.0%})" if f.confidence is not None else ""
    lines.append(f"### {_ICON[f.severity.value]} {f.title}{where}")
    lines.append(f"`{f.id}` · {f.category}{conf}")
    lines.append("")
    lines.append(f.message)
    if f.myth:
        lines += ["", f"> **Myth:** {f.myth}"]
    if f.evidence:
        lines += ["", "<details><summary>Evidence</summary>", "", "```"]
        lines += [f"{e.name} = {e.value}" for e in f.evidence]
        lines += ["```", "</details>"]
    for fix in f.fixes:
        lines.append(f"- **Fix ({fix.safety.value}):** {fix.text}")
        if fix.command:
            lines.append(f"  ```\n  {fix.command}\n  ```")
    if f.refs:
        lines.append("- Refs: " + ", ".join(f.refs))
    lines.append("")
    return lines
