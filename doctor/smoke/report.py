"""The smoke test's result: stages with times, what actually ran, warnings mapped to entries.

Pure data plus a rich renderer; the runner fills it, the CLI's reporters read it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from doctor.findings import Observation

SCHEMA = "unsloth-doctor.smoke/1"


@dataclass
class Stage:
    name: str
    seconds: float
    ok: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class LoggedWarning:
    """A warning line the child printed, and the knowledge entries it maps to."""

    line: int
    text: str
    entries: list[str] = field(default_factory=list)


@dataclass
class SmokeReport:
    stages: list[Stage] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    warnings: list[LoggedWarning] = field(default_factory=list)
    diagnoses: list[dict[str, Any]] = field(default_factory=list)  # explain's view of a failure
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    refused: bool = False           # the VRAM estimate said no and --force was not given
    timed_out: bool = False
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return (not self.refused and not self.timed_out and bool(self.stages)
                and all(s.ok for s in self.stages) and self.facts.get("smoke.completed") is True)

    @property
    def failed_stage(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "refused": self.refused,
            "timed_out": self.timed_out,
            "stages": [asdict(s) for s in self.stages],
            "facts": dict(self.facts),
            "warnings": [asdict(w) for w in self.warnings],
            "diagnoses": list(self.diagnoses),
            "observations": [{"id": o.entry_id, "values": dict(o.values)} for o in self.observations],
            "notes": list(self.notes),
        }


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
        lines.append(f"- **Diagnosis** `{d.get('id', '')}`: {d.get('title', '')}")
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
        console.print(f"  [red]Diagnosis[/] {escape(d.get('id', ''))}: {escape(d.get('title', ''))}")
    for note in report.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    console.print(f"  [dim]total {report.seconds:.1f} s[/]")
