"""The command line's grammar: sub-commands, flags and their help. The flags that name one
target of a kind (--data, --script, --config, --model) come from the probe registry."""
from __future__ import annotations

import argparse

from doctor.errors import UsageError
from doctor.version import __version__

FORMATS = ("console", "concise", "json", "sarif", "markdown")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--format", choices=FORMATS, default="console", help="report format (default: console)")
    g.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    g.add_argument("--fail-on", choices=("error", "warning", "never"), default="error",
                   help="exit 1 when a finding is at or above this severity (default: error)")
    g.add_argument("--quiet", "-q", action="store_true", help="show only the findings: no clean lines, no explanations")
    g.add_argument("--verbose", "-v", action="store_true", help="show every finding in full, with evidence and references, and every file")


def _scan_options(p: argparse.ArgumentParser, fixes: bool = True) -> None:
    """What to scan and how: shared by `scan`, `baseline` and `report` (which fixes nothing)."""
    from doctor.probes import registry   # here: a command that scans nothing imports no probe

    p.add_argument("paths", nargs="*", metavar="PATH", help="project folders or files to scan")
    for probe in registry.probes():
        if probe.option:
            p.add_argument(probe.option, dest=f"target_{probe.name}", action="append", default=[],
                           metavar="DIR" if probe.folder else "PATH", help=probe.option_help)
    p.add_argument("--env", dest="env", action="store_true", default=None, help="also scan the environment")
    p.add_argument("--no-env", dest="env", action="store_false", help="skip the environment")
    p.add_argument("--python", metavar="PATH", help="examine the environment of this interpreter (the one you train with)")
    p.add_argument("--deep", action="store_true", help="import torch/unsloth in a child process and run real GPU ops")
    p.add_argument("--smoke", action="store_true", help="also run the tiny real training step (see 'smoke')")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="limit for --deep/--smoke child processes")
    p.add_argument("--distributed", action="store_true",
                   help="run on every rank under torchrun/accelerate/srun; rank 0 reports for the job")
    p.add_argument("--gpus", action="store_true",
                   help="multi-GPU pre-flight of this machine: starts one rank per GPU itself (no torchrun); "
                        "under a launcher, the same as --distributed")
    p.add_argument("--gpus-record", metavar="FILE", help="with --gpus: also write the machine record (JSON) here")
    p.add_argument("--gpus-from", metavar="FILE", help="with --gpus: judge a recorded machine record instead of this machine")
    d = p.add_argument_group("datasets")
    d.add_argument("--tokenizer", metavar="DIR", help="a local tokenizer or model folder, to measure tokens")
    d.add_argument("--max-seq-length", type=int, metavar="N", help="the max_seq_length you train with")
    d.add_argument("--response-part", metavar="TEXT", help="the response marker train_on_responses_only uses")
    d.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="processes for large files")
    m = p.add_argument_group("models")
    m.add_argument("--base", metavar="DIR", help="the base model folder to check a LoRA adapter against "
                                                 "(default: its base_model_name_or_path, when that is a local folder)")
    if fixes:
        _fix_options(p)
    _project_options(p)


def _fix_options(p: argparse.ArgumentParser) -> None:
    f = p.add_argument_group("fixes")
    f.add_argument("--fix", action="store_true", help="apply safe fixes (repaired copies; originals untouched)")
    f.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that change content (with --fix)")
    f.add_argument("--in-place", action="store_true", help="with --fix: replace the input, keeping a backup")


def _project_options(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("project")
    c.add_argument("--project-config", metavar="FILE",
                   help="read this configuration (default: the nearest .unsloth-doctor.toml or pyproject.toml "
                        "with [tool.unsloth-doctor])")
    c.add_argument("--no-config", action="store_true", help="read no project configuration")
    c.add_argument("--kb", metavar="DIR", action="append", default=[],
                   help="also load knowledge entries from DIR (validated like the bundled ones)")
    c.add_argument("--select", metavar="IDS", action="append", default=[],
                   help="report only rules whose id starts with one of these (comma-separated)")
    c.add_argument("--ignore", metavar="IDS", action="append", default=[],
                   help="don't report rules whose id starts with one of these (comma-separated)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole grammar; with `command` (the sub-command the line names) the probe-sized
    flags of the scan-like commands are left out unless it is one of them: they import every
    probe, a fifth of a one-line `explain`'s run time."""
    parser = _Parser(prog="unsloth-doctor", description="Diagnose and repair Unsloth fine-tuning setups.")
    parser.add_argument("--version", action="version", version=f"unsloth-doctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = sub.add_parser("scan", help="check the environment, datasets and scripts before training")
    if command in (None, "scan"):
        _scan_options(scan)
    scan.add_argument("--baseline", metavar="FILE",
                      help="don't report findings recorded in FILE (written by 'unsloth-doctor baseline')")
    _common(scan)

    baseline = sub.add_parser("baseline", help="record today's findings, so that scan --baseline reports only new ones")
    if command in (None, "baseline"):
        _scan_options(baseline)
    baseline.add_argument("--output", "-o", metavar="FILE", default=".unsloth-doctor-baseline.json",
                          help="where to write it (default: .unsloth-doctor-baseline.json)")

    report = sub.add_parser("report", help="one redacted Markdown or HTML file for a bug report: "
                                           "environment, every finding, the doctor's version")
    if command in (None, "report"):
        _scan_options(report, fixes=False)
    report.add_argument("--format", choices=("markdown", "html"), default="markdown",
                        help="markdown: to paste into an issue (default); html: one self-contained page with plots")
    report.add_argument("--output", "-o", metavar="FILE",
                        help="where to write it (default: unsloth-doctor-report.md, or .html)")

    explain = sub.add_parser("explain", help="explain a traceback or log: root cause and fix")
    explain.add_argument("file", nargs="*", metavar="FILE_OR_TEXT",
                         help="a log file, - for standard input (the default), or the error message itself")
    explain.add_argument("--no-env", action="store_true", help="don't correlate with this machine's environment")
    explain.add_argument("--top", type=int, default=3, metavar="N", help="how many diagnoses to show")
    _common(explain)

    run = sub.add_parser("run", help="run a command; explain its failure if it fails")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    run.add_argument("--no-env", action="store_true", help="don't correlate with this machine's environment")
    _common(run)

    smoke = sub.add_parser("smoke", help="prove the kernels work: a tiny real Unsloth training step")
    smoke.add_argument("--model", metavar="PATH", help="one or two steps on your own local model folder")
    smoke.add_argument("--max-seq-length", type=int, metavar="N")
    smoke.add_argument("--batch-size", type=int, metavar="N")
    smoke.add_argument("--steps", type=int, metavar="N", help="training steps (default: a few)")
    smoke.add_argument("--force", action="store_true", help="run even when the VRAM estimate says it won't fit")
    smoke.add_argument("--python", metavar="PATH", help="run the smoke test with this interpreter (the one you train with)")
    smoke.add_argument("--keep", metavar="DIR", help="keep the built model, export and logs in DIR")
    smoke.add_argument("--timeout", type=float, default=600.0, metavar="S")
    _common(smoke)

    kb = sub.add_parser("kb", help="the knowledge base: list, show, test, docs, index, schema")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", parser_class=_Parser)
    kb_list = kb_sub.add_parser("list", help="every entry, one per line")
    kb_list.add_argument("--area", help="only this area")
    kb_list.add_argument("--category", help="only this category")
    kb_show = kb_sub.add_parser("show", help="one entry in full")
    kb_show.add_argument("id")
    kb_test = kb_sub.add_parser("test", help="check every entry against its own examples")
    kb_test.add_argument("id", nargs="?")
    kb_test.add_argument("--quiet", "-q", action="store_true")
    kb_index = kb_sub.add_parser("index", help="rebuild the raise-site index from the installed unsloth, unsloth_zoo, trl, peft, transformers and bitsandbytes source")
    kb_index.add_argument("--package", action="append", metavar="NAME",
                          help="only this package (repeatable; default: all that are installed)")
    kb_index.add_argument("--output", metavar="DIR",
                          help="folder to write into (default: the index shipped inside the package)")
    kb_docs = kb_sub.add_parser("docs", help="write the rules reference: one Markdown page per entry and an index")
    kb_docs.add_argument("folder", metavar="DIR", help="folder to write into (created if missing; the repository's is docs/rules)")
    kb_schema = kb_sub.add_parser("schema", help="print the JSON Schema of knowledge entries")
    kb_schema.add_argument("--report", action="store_true", help="the schema of --format json reports instead")

    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))

    undo = sub.add_parser("undo", help="restore the files changed by the last --fix")
    undo.add_argument("--force", action="store_true", help="restore even files edited since the fix")
    undo.add_argument("--list", action="store_true", help="list the journal instead")
    return parser
