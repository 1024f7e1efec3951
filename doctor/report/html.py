"""One self-contained HTML page: the environment, every finding, and plots where a plot says
more than a table (`Report.plots`, computed before). Inline CSS and SVG only, no script and
nothing fetched, so it opens offline and can be attached to a bug report as one file;
redacted like the Markdown report."""
from __future__ import annotations

from html import escape

from doctor.findings import AreaStatus
from doctor.report import svg
from doctor.report.environment import fact_lines, summary_rows
from doctor.report.groups import Group, group_findings
from doctor.report.redact import redact
from doctor.report.smoke import summary_lines
from doctor.results.report import Report
from doctor.results.words import counted
from doctor.version import __version__

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666}.totals span{display:inline-block;margin:8px 8px 0 0;padding:4px 10px;border-radius:12px;font-weight:600}
.t-error{background:#fde2e1;color:#a4161a}.t-warning{background:#fff1cc;color:#7a5200}.t-info{background:#e0efff;color:#0b4f8a}
.t-ok{background:#dff5e1;color:#1d6b2a}
table{border-collapse:collapse;background:#fff;width:100%}td,th{border:1px solid #e3e3e3;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600;width:28%}
figure{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:0 0 16px;padding:12px}
figcaption{font-weight:600;margin-bottom:6px}figure p{margin:6px 0 0;color:#555;font-size:14px}
.finding{background:#fff;border:1px solid #e3e3e3;border-left:6px solid #999;border-radius:6px;padding:10px 14px;margin:0 0 12px}
.finding.error{border-left-color:#d62728}.finding.warning{border-left-color:#e8a33d}.finding.info{border-left-color:#4e79a7}
.finding h3{font-size:16px;margin:0 0 4px}.finding .where{font-family:ui-monospace,Menlo,monospace;font-size:13px;color:#444}
.sev{font-size:12px;text-transform:uppercase;font-weight:700;margin-right:6px}.error .sev{color:#d62728}
.warning .sev{color:#b7791f}.info .sev{color:#4e79a7}code,pre{font-family:ui-monospace,Menlo,monospace;font-size:13px}
pre{background:#f3f3f3;padding:8px;overflow-x:auto;white-space:pre-wrap}.fix{margin:6px 0}
.myth{border-left:3px solid #b07aa1;padding-left:8px;color:#5a3d5c}.notran{color:#a4161a;font-weight:600}
"""
_SEVERITY = {"error": "error", "warning": "warning", "info": "note"}


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)


def _totals(report: Report) -> str:
    counts = report.counts()
    parts = [f'<span class="t-{k}">{counted(counts[k], w)}</span>'
             for k, w in (("error", "error"), ("warning", "warning"), ("info", "note"))]
    if report.unchecked:
        parts.append(f'<span class="t-error">{counted(len(report.unchecked), "target")} not checked</span>')
    if not report.findings and not report.unchecked:
        parts = ['<span class="t-ok">No issues found</span>']
    return f'<p class="totals">{"".join(parts)}</p>'


def _finding(group: Group, index: int) -> str:
    """One entry in one file, explained once; every place listed (a bug report leaves none out)."""
    f, count = group.first, len(group.findings)
    if count == 1:
        where = f'<div class="where">{escape(str(f.location))}</div>' if f.location else ""
    else:
        where = f'<div class="where">{escape(f.location.path if f.location else "")} — {escape(group.places())}</div>'
    out = [f'<article class="finding {f.severity.value}" id="finding-{index}" data-count="{count}">',
           f'<h3><span class="sev">{_SEVERITY[f.severity.value]}</span>{escape(f.title)}</h3>', where,
           f'<div class="muted"><code>{escape(f.id)}</code> · {escape(f.category)}</div>',
           f"<p>{escape(f.message)}</p>"]
    if f.myth:
        out.append(f'<p class="myth"><b>Myth:</b> {escape(f.myth)}</p>')
    for fix in f.fixes:
        out.append(f'<div class="fix"><b>Fix ({escape(fix.safety.value)}):</b> {escape(fix.text)}</div>')
        if fix.command:
            out.append(f"<pre>{escape(fix.command)}</pre>")
    if f.evidence:
        out.append("<details><summary>Evidence</summary><pre>"
                   + escape("\n".join(f"{e.name} = {e.value}" for e in f.evidence)) + "</pre></details>")
    if f.refs:
        out.append('<div class="muted">Refs: ' + ", ".join(escape(r) for r in f.refs) + "</div>")
    if count > 1:
        out.append(f"<details><summary>All {count} places</summary><ul>"
                   + "".join(f"<li><code>{escape(where)}</code> {escape(message or '')}</li>" for where, message in group.detail())
                   + "</ul></details>")
    out.append("</article>")
    return "".join(out)


def _area(a: AreaStatus) -> str:
    state = "" if a.ran else ' <span class="notran">not checked</span>'
    return f"<tr><th>{escape(a.label)}{state}</th><td>{escape(a.detail or '')}</td></tr>"


def render_html(report: Report) -> str:
    title = "unsloth-doctor report" if report.command == "report" else f"unsloth-doctor {report.command} report"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{escape(title)}</h1>",
             f'<div class="muted">unsloth-doctor {escape(__version__)}'
             + (f" · {escape(', '.join(report.targets))}" if report.targets else "") + "</div>",
             _totals(report)]
    parts += ['<h2 id="environment">Environment</h2>', f"<table>{_rows(summary_rows(report.facts))}</table>"]
    if report.plots:
        parts.append('<h2 id="plots">Plots</h2>')
        for i, plot in enumerate(report.plots):
            parts.append(f'<figure id="plot-{i}"><figcaption>{escape(plot.title)}</figcaption>{svg.render(plot)}'
                         + (f"<p>{escape(plot.caption)}</p>" if plot.caption else "") + "</figure>")
    parts.append(f'<h2 id="findings">Findings ({len(report.findings)})</h2>')
    parts += [_finding(g, i) for i, g in enumerate(group_findings(report.findings))] or ['<p class="muted">None.</p>']
    if report.areas:
        parts += ['<h2 id="checked">What was checked</h2>', "<table>", *map(_area, report.areas), "</table>"]
    if report.smoke is not None:
        smoke = report.smoke
        rows = [(s.name, f"{'skipped' if s.skipped else 'ok' if s.ok else 'FAILED'}, {s.seconds:.1f} s"
                 + (f": {s.detail}" if s.detail else "")) for s in smoke.stages]
        parts += [f'<h2 id="smoke">Smoke test: {"passed" if smoke.ok else "FAILED"}</h2>', f"<table>{_rows(rows)}</table>",
                  "<ul>", *(f"<li>{escape(line)}</li>" for line in [*summary_lines(smoke), *smoke.notes]), "</ul>"]
    notes = [*report.notes, *(f"Skipped: {n} ({why})" for why, n in sorted(report.skipped.items()))]
    if notes:
        parts += ["<ul class=\"muted\">", *(f"<li>{escape(n)}</li>" for n in notes), "</ul>"]
    if report.facts:
        parts.append("<details><summary>Every fact the doctor gathered</summary><pre>"
                     + escape("\n".join(fact_lines(report.facts))) + "</pre></details>")
    parts.append('<p class="muted">Home folders, user and host names, tokens and e-mail addresses are redacted.</p>')
    parts.append("</main></body></html>")
    return redact("\n".join(parts)) + "\n"
