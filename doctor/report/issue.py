"""`unsloth-doctor report`'s Markdown: one file to paste into an Unsloth issue. The versions
the issue template asks for in a table, every finding, the smoke test if it ran, and every
fact folded away; tokens, e-mails, home folders, user and host names redacted."""
from __future__ import annotations

from doctor.report.environment import fact_lines, summary_rows
from doctor.report.groups import group_findings
from doctor.report.markdown import finding_lines
from doctor.report.redact import redact
from doctor.results.report import Report
from doctor.results.words import counted
from doctor.version import __version__


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def template_answers(report: Report) -> list[str]:
    """The six questions of Unsloth's bug template (.github/ISSUE_TEMPLATE/bug---issue.md),
    answered from the scan where it can; the rest left for the reporter."""
    f = report.facts
    def version(name: str) -> str:
        return str(f.get(f"pkg.{name}.version") or "not installed")
    gpus = int(f.get("gpu.count") or 0)
    names = sorted({str(f.get(f"gpu.{i}.name", "?")) for i in range(gpus)})
    visible = f.get("gpu.visible_count")
    shown = f" ({visible} visible to CUDA_VISIBLE_DEVICES)" if f.get("cuda.visible_devices_set") and visible is not None else ""
    scripts = [t for t in report.targets if t.endswith((".py", ".ipynb"))]
    return [
        f"1. Did you update? unsloth {version('unsloth')}, unsloth_zoo {version('unsloth_zoo')} "
        "(`pip install --upgrade unsloth unsloth_zoo` updates them)",
        f"2. Colab or Kaggle or local / cloud: {f.get('platform.hosted', 'local / cloud')}",
        f"3. Number of GPUs: {gpus}" + (f" × {', '.join(names)}" if names else "") + shown,
        "4. Which notebook? " + (", ".join(f"`{s}`" for s in scripts) + " (checked below); please link it too"
                                 if scripts else "<!-- please link it -->"),
        f"5. Unsloth {version('unsloth')}, TRL {version('trl')}, transformers {version('transformers')}, "
        f"PyTorch {f.get('torch.version') or version('torch')}",
        "6. Which trainer? <!-- SFTTrainer, GRPOTrainer, ... -->",
    ]


def render_issue(report: Report) -> str:
    lines = ["<!-- What did you run, what happened, what did you expect? Minimal code to reproduce it "
             "(remove your Hugging Face token): -->", "", "```python", "", "```", "", *template_answers(report), "",
             f"### Environment (collected by unsloth-doctor {__version__})", "", "| | |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in summary_rows(report.facts)]
    counts = report.counts()
    totals = ", ".join(counted(counts[k], w) for k, w in (("error", "error"), ("warning", "warning"), ("info", "note")))
    unchecked = f", {counted(len(report.unchecked), 'target')} not checked" if report.unchecked else ""
    lines += ["", f"### What unsloth-doctor found: {totals}{unchecked}", ""]
    if report.targets:
        lines += ["Checked: " + ", ".join(f"`{t}`" for t in report.targets), ""]
    for a in report.unchecked:
        lines.append(f"- not checked: {a.label} ({a.detail})")
    for group in group_findings(report.findings):   # an entry explained once per file, every place listed
        if len(group.findings) == 1:
            lines += finding_lines(group.first)
            continue
        first = group.first
        lines += finding_lines(first, f"{first.location.path if first.location else ''}, {group.places()}")[:-1]
        lines += [f"<details><summary>All {len(group.findings)} places</summary>", ""]
        lines += [f"- `{where}`" + (f": {message}" if message else "") for where, message in group.detail()]
        lines += ["</details>", ""]
    if report.smoke is not None:
        from doctor.report.smoke import render_markdown as smoke_md

        lines.append(smoke_md(report.smoke))
    lines += [f"- {note}" for note in report.notes]
    if report.facts:
        lines += ["", "<details><summary>Every fact unsloth-doctor gathered</summary>", "", "```"]
        lines += fact_lines(report.facts)
        lines += ["```", "</details>"]
    lines += ["", "<sub>Made with `unsloth-doctor report`; tokens, e-mails, home folders, user and host names "
              "are redacted. Read it before you paste.</sub>"]
    return redact("\n".join(lines)) + "\n"
