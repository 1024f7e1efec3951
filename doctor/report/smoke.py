"""Render the smoke test's result: console (rich) and Markdown; JSON is in jsonout."""
from __future__ import annotations

from typing import Any

from doctor.results.smoke import SmokeReport

def summary_lines(report: SmokeReport) -> list[str]:
    """What actually ran, in plain words (shared by console and Markdown)."""
    f = report.facts
    out = []
    device = f.get("smoke.device")
    if device == "cuda":
        out.append(f"Device: CUDA GPU {f.get('smoke.gpu_name', '?')} (capability {f.get('smoke.gpu_capability', '?')}, "
                   f"torch CUDA {f.get('smoke.torch_cuda', '?')})")
    elif device == "cpu":
        out.append("Device: CPU (Unsloth's CPU fallback). GPU kernels were NOT verified by this run.")
    if "smoke.attention" in f:
        out.append(f"Attention: {f['smoke.attention']}")
    if device == "cuda":
        tk = f.get("smoke.triton_kernels_compiled")
        names = ", ".join(f.get("smoke.triton_kernels") or [])
        out.append("Triton kernels compiled: " + ("unknown (Triton not imported)" if tk is None else
                   f"{tk} of Unsloth's kernels hold a compiled binary ({names})" if tk else "none found"))
        out.append("4-bit path: " + str(f.get("smoke.load_4bit", "not run")))
        if "smoke.peak_gpu_mib" in f:
            out.append(f"Peak GPU memory: {f['smoke.peak_gpu_mib']:.0f} MiB allocated, "
                       f"{f.get('smoke.peak_gpu_reserved_mib', 0):.0f} MiB reserved")
    if "smoke.logit_max_abs_diff" in f:
        out.append(f"Merged 16-bit export reloads in plain transformers (no trust_remote_code): "
                   f"max |Δlogit| {f['smoke.logit_max_abs_diff']:.1e} ≤ {f['smoke.logit_bound']:.1e}")
    return out


def warning_items(report: SmokeReport, limit: int = 20) -> list[tuple[str, str]]:
    """(the warning's text, the entries it maps to) for the first warnings, for display."""
    return [(w.text[:160], ", ".join(w.entries) if w.entries else "no knowledge entry")
            for w in report.warnings[:limit]]


def render_markdown(report: SmokeReport) -> str:
    """The smoke section of a Markdown report: stages, what ran, warnings, diagnoses."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"### Smoke test: {'passed' if report.ok else 'FAILED'}", "",
             "| Stage | | Seconds | What happened |", "|---|---|---:|---|"]
    for s in report.stages:
        mark = "–" if s.skipped else ("✅" if s.ok else "❌")
        lines.append(f"| {cell(s.name)} | {mark} | {s.seconds:.1f} | {cell(s.detail)} |")
    lines.append("")
    lines += [f"- {line}" for line in summary_lines(report)]
    if report.warnings:
        lines.append(f"- Warnings printed during the run: {len(report.warnings)}")
        lines += [f"  - `{text}` → {ids}" for text, ids in warning_items(report)]
    for d in report.diagnoses[:3]:
        lines.append(f"- **Diagnosis** `{d.id}`: {d.title}")
    lines += [f"- {note}" for note in report.notes]
    lines += [f"- Total {report.seconds:.1f} s", ""]
    return "\n".join(lines)


def render_console(report: SmokeReport, console: Any) -> None:
    """Rich output; the console decides about colour (only on a TTY)."""
    from rich.markup import escape
    from rich.table import Table

    title = "Smoke test: " + ("passed" if report.ok else "FAILED")
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("stage")
    table.add_column("", justify="center")
    table.add_column("seconds", justify="right")
    table.add_column("what happened", overflow="fold")
    for s in report.stages:
        mark = "[dim]-[/]" if s.skipped else ("[green]✓[/]" if s.ok else "[red]✗[/]")
        table.add_row(s.name, mark, f"{s.seconds:.1f}", escape(s.detail))
    console.print(table)
    for line in summary_lines(report):
        console.print("  " + escape(line))
    if report.warnings:
        console.print(f"  Warnings printed during the run: {len(report.warnings)}")
        for text, ids in warning_items(report):
            console.print(f"    [yellow]![/] {escape(text)} [dim]→ {escape(ids)}[/]")
    for d in report.diagnoses[:3]:
        console.print(f"  [red]Diagnosis[/] {escape(d.id)}: {escape(d.title)}")
    for note in report.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    console.print(f"  [dim]total {report.seconds:.1f} s[/]")
