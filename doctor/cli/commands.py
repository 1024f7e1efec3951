"""One function per sub-command: turn the arguments into an API call, hand the result to `emit`."""
from __future__ import annotations

import argparse
import io
import json
import re
import sys

from doctor import api
from doctor.cli.output import check_output, emit
from doctor.errors import EXIT_OK, EXIT_USAGE, UsageError
from doctor.results.explain import ExplainResult
from doctor.results.report import Report
from doctor.results.words import counted


# --- scan ------------------------------------------------------------------------------

def cmd_scan(args: argparse.Namespace) -> int:
    check_output(args)
    project = api.project_config(args.paths, False if args.no_config else args.project_config)
    kb = api.load_knowledge(extra_dirs=project_kb(project, args))
    distributed = None
    if args.gpus and not args.gpus_from and _launched():
        args.distributed = True   # one rank of a torchrun/accelerate/srun job: the cross-rank checks
    elif args.gpus:
        from doctor.distributed.gpus_scan import GpusOptions, run_gpus_scan

        targets = named_targets(args)
        distributed = run_gpus_scan(GpusOptions(timeout_s=args.timeout, scripts=list(targets.get("script", [])),
                                                models=list(targets.get("model", [])),
                                                configs=list(targets.get("config", [])),
                                                python=args.python or sys.executable, record_file=args.gpus_record,
                                                replay_file=args.gpus_from))
    if args.distributed:
        from doctor.distributed import DistributedOptions, run_distributed_scan
        from doctor.interrupts import sigterm_ends_at_once

        with sigterm_ends_at_once():   # the launcher's SIGTERM must not wait for a collective to end
            distributed = run_distributed_scan(DistributedOptions(timeout_s=args.timeout, kb=kb,
                                                                  scripts=list(named_targets(args).get("script", []))))
        if distributed is None:
            return EXIT_OK   # not rank 0: rank 0 reports for the whole job
    report = api.scan(args.paths, **scan_arguments(args, project, kb), baseline=args.baseline,
                      progress=shows_progress(args), distributed=distributed)
    note = escapes_note("--response-part", args.response_part)
    if note:
        report.notes.append(note)
    return emit(report, args)


def shows_progress(args: argparse.Namespace) -> bool:
    """Progress only for a person at a terminal: never into a pipe or a machine format."""
    from doctor import progress

    return progress.watched() and args.format == "console"


def _launched() -> bool:
    import os

    from doctor.distributed.launch_env import detect_launch

    return detect_launch(os.environ).world_size > 1


def named_targets(args: argparse.Namespace) -> dict[str, list[str]]:
    from doctor.probes import registry

    return {p.name: getattr(args, f"target_{p.name}", []) for p in registry.probes() if p.option}


def project_kb(project: object, args: argparse.Namespace) -> list[str]:
    from doctor.project import resolve

    return [*(resolve(project, k) for k in getattr(project, "kb", [])), *args.kb]   # type: ignore[arg-type]


def _ids(values: list[str]) -> list[str]:
    return [i.strip() for value in values for i in value.split(",") if i.strip()]


def scan_arguments(args: argparse.Namespace, project: object, kb: object) -> dict[str, object]:
    """The API arguments that `scan` and `baseline` share."""
    return dict(named=named_targets(args), env=args.env, python=args.python, deep=args.deep, smoke=args.smoke,
                timeout=args.timeout, tokenizer=args.tokenizer, max_seq_length=args.max_seq_length,
                response_part=typed_escapes(args.response_part), base=args.base, jobs=args.jobs,
                fix=getattr(args, "fix", False), unsafe_fixes=getattr(args, "unsafe_fixes", False),
                in_place=getattr(args, "in_place", False), kb=kb, config=project,
                select=_ids(args.select), ignore=_ids(args.ignore))


def cmd_baseline(args: argparse.Namespace) -> int:
    project = api.project_config(args.paths, False if args.no_config else args.project_config)
    kb = api.load_knowledge(extra_dirs=project_kb(project, args))
    report, count = api.write_baseline(args.output, args.paths, **scan_arguments(args, project, kb))
    unchecked = len(report.unchecked)
    print(f"Wrote {counted(count, 'finding')} to {args.output}; 'unsloth-doctor scan --baseline {args.output}' "
          "reports only findings not in it.")
    if unchecked:   # a baseline can't hold what was never examined: say so, and fail
        print(f"unsloth-doctor: {counted(unchecked, 'target')} could not be examined; they are not in the baseline",
              file=sys.stderr)
        return 1
    return EXIT_OK


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
_ESCAPE_NAMES = {"n": "line break", "t": "tab", "r": "carriage return", "\\": "backslash"}


def cmd_report(args: argparse.Namespace) -> int:
    """A scan (with the environment unless --no-env), written as one redacted file for an issue."""
    from pathlib import Path

    from doctor.atomic import atomic_write_bytes
    from doctor.bugreport import prepare

    html = args.format == "html"
    args.output = args.output or f"unsloth-doctor-report.{'html' if html else 'md'}"
    check_output(args)
    project = api.project_config(args.paths, False if args.no_config else args.project_config)
    kb = api.load_knowledge(extra_dirs=project_kb(project, args))
    arguments = scan_arguments(args, project, kb)
    arguments["env"] = True if args.env is None else args.env   # a bug report says what the machine is
    report = api.scan(args.paths, **arguments, progress=sys.stderr.isatty())
    report.command = "report"
    prepare(report, args.max_seq_length or getattr(project, "max_seq_length", None))
    if html:
        from doctor.report.html import render_html as render
    else:
        from doctor.report.issue import render_issue as render
    atomic_write_bytes(Path(args.output), render(report).encode("utf-8"))
    counts = report.counts()
    found = ", ".join(counted(counts[k], w) for k, w in (("error", "error"), ("warning", "warning"), ("info", "note")))
    where = "open it in a browser, or attach it to" if html else "read it, then paste it into"
    print(f"Wrote {args.output} ({found}); {where} a new issue: https://github.com/unslothai/unsloth/issues/new")
    return EXIT_OK


def typed_escapes(text: str | None) -> str | None:
    """`--response-part '<|im_start|>assistant\\n'`, typed as Unsloth's notebooks write the
    marker: the shell passes a backslash and an n, and the marker really ends in a newline.
    \\n, \\t, \\r and \\\\ (a backslash) are read so; any other backslash stays as typed."""
    if text is None or "\\" not in text:
        return text
    return re.sub(r"\\([ntr\\])", lambda m: _ESCAPES[m.group(1)], text)


def escapes_note(option: str, text: str | None) -> str | None:
    """Which escapes of a typed marker were read, so nobody wonders which form was matched."""
    if text is None or typed_escapes(text) == text:
        return None
    found = dict.fromkeys(re.findall(r"\\([ntr\\])", text))   # in order, once each
    read = ", ".join(f"\\{m} as a {_ESCAPE_NAMES[m]}" for m in found)
    return (f"{option} {text}: read {read}, as Unsloth's notebooks write markers "
            "(type \\\\n to match a backslash followed by n).")


# --- explain and run -------------------------------------------------------------------

def cmd_explain(args: argparse.Namespace) -> int:
    check_output(args)
    given = " ".join(args.file) if args.file else "-"
    if given == "-":
        if sys.stdin.isatty():
            print("Paste the error or log, then press Ctrl-D (Ctrl-Z Enter on Windows):", file=sys.stderr)
        result = api.explain(sys.stdin.buffer, env=not args.no_env, top=args.top)
        return emit(explain_report(result, ["-"]), args)
    path = _existing_path(given)
    if path is None and not _names_a_file(args.file):
        # `explain "RuntimeError: ..."` (quoted or not): the words are the paste
        result = api.explain(io.BytesIO(given.encode("utf-8", "surrogateescape")), env=not args.no_env, top=args.top)
        return emit(explain_report(result, ["(the message given)"]), args)
    if path is None:
        raise UsageError(f"file {given!r} does not exist (to explain a message, give its text, or - and paste it)")
    if path.is_dir():
        raise UsageError(f"{given!r} is a folder; give a log file or - for standard input")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {given!r}: {exc.strerror or exc}") from None
    with handle:   # streamed: a 50 MB log is read once, in bounded memory
        result = api.explain(handle, env=not args.no_env, top=args.top)
    return emit(explain_report(result, [given]), args)


def _existing_path(text: str) -> "Path | None":
    from pathlib import Path

    try:   # a pasted message may be longer than any file name (ENAMETOOLONG) or hold a NUL
        path = Path(text)
        return path if path.exists() else None
    except (OSError, ValueError):
        return None


# what a log file's name ends with: a single word like this that does not exist is a typo, not a message
_LOG_SUFFIXES = (".log", ".txt", ".out", ".err", ".json", ".jsonl", ".ipynb", ".md")


def _names_a_file(words: list[str]) -> bool:
    """One word that reads as a path (a separator or a log's suffix), not as an error message."""
    if len(words) != 1 or any(ch.isspace() for ch in words[0]) or len(words[0]) > 255:
        return False
    word = words[0]
    return "/" in word or "\\" in word or word.lower().endswith(_LOG_SUFFIXES)


def explain_report(result: ExplainResult, targets: list[str], command: str = "explain") -> Report:
    # weak leads are shown, but they are no diagnosis: they don't fail the exit code
    findings = list(result.findings) if result.matched else []
    return Report(command=command, findings=findings, targets=targets, explain=result)


def cmd_run(args: argparse.Namespace) -> int:
    check_output(args)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    def to_reporter(result: ExplainResult) -> None:
        emit(explain_report(result, [" ".join(argv)], "run"), args)

    # machine formats go through the reporters; the console default prints to stderr
    machine = args.format != "console" or bool(args.output)
    return api.run(argv, env=not args.no_env, report=to_reporter if machine else None)


# --- smoke -----------------------------------------------------------------------------

def cmd_smoke(args: argparse.Namespace) -> int:
    from doctor.engine import findings_from_observations

    check_output(args)
    from doctor import progress

    kb = api.load_knowledge()
    with progress.session(shows_progress(args)):
        smoke = api.smoke(model=args.model, max_seq_length=args.max_seq_length, batch_size=args.batch_size,
                          steps=args.steps, force=args.force, timeout=args.timeout, python=args.python,
                          keep=args.keep, kb=kb)
    from doctor.probes.registry import headings

    report = Report(command="smoke", findings=findings_from_observations(kb, smoke.observations),
                    smoke=smoke, facts=dict(smoke.facts), headings=headings())
    code = emit(report, args)
    return code if smoke.ok else max(code, 1)


# --- kb --------------------------------------------------------------------------------

def cmd_kb(args: argparse.Namespace) -> int:
    from doctor.probes.registry import area_names

    action = args.kb_command
    if action == "schema":
        if args.report:
            from doctor.report.jsonout import report_schema

            print(json.dumps(report_schema(), indent=2))
        else:
            from doctor.kb.schema import json_schema

            print(json.dumps(json_schema(area_names()), indent=2))
        return EXIT_OK
    if action is None:
        raise UsageError("kb needs an action: list, show, test, docs, index or schema")
    if action == "index":
        return _kb_index(args)
    kb = api.load_knowledge()
    if action == "docs":
        return _kb_docs(kb, args)
    if action == "list":
        from doctor.kb.schema import CATEGORIES

        if args.area and args.area not in area_names():
            raise UsageError(f"--area {args.area!r} is not one of: {', '.join(sorted(area_names()))}")
        if args.category and args.category not in CATEGORIES:
            raise UsageError(f"--category {args.category!r} is not one of: {', '.join(CATEGORIES)}")
        for e in kb.entries:
            if (args.area and e.area != args.area) or (args.category and e.category != args.category):
                continue
            print(f"{e.id:<44} {e.severity.value:<8} {e.category:<22} {e.title}")
        return EXIT_OK
    if action == "show":
        entry = kb.get(args.id)
        if entry is None:
            raise UsageError(f"no entry {args.id!r} (see 'unsloth-doctor kb list')")
        import yaml

        print(f"# {entry.file}:{entry.line}")
        print(yaml.safe_dump([dict(entry.raw)], sort_keys=False, allow_unicode=True, width=100), end="")
        return EXIT_OK
    return _kb_test(kb, args)


def _kb_index(args: argparse.Namespace) -> int:
    """Read unsloth's, unsloth_zoo's, trl's, peft's, transformers' and bitsandbytes' source (never
    import them) into the raise-site index."""
    import time
    from pathlib import Path

    from doctor.explainer import raiseindex

    folder = Path(args.output) if args.output else raiseindex.SHIPPED
    built = 0
    wanted = getattr(args, "package", None) or raiseindex.ALL_PACKAGES
    unknown = [p for p in wanted if p not in raiseindex.ALL_PACKAGES]
    if unknown:
        raise UsageError(f"--package {unknown[0]}: not one of {', '.join(raiseindex.ALL_PACKAGES)}")
    for package in wanted:
        root = raiseindex.installed_root(package)
        if root is None:
            print(f"{package}: not installed here, skipped")
            continue
        start = time.perf_counter()
        index = raiseindex.build_index(root, package)
        path = raiseindex.write(index, folder)
        built += 1
        print(f"{package} {index.version}: {len(index.sites)} sites in {time.perf_counter() - start:.1f} s "
              f"-> {path} ({path.stat().st_size // 1024} KiB)")
    if not built:
        raise UsageError(f"none of {', '.join(raiseindex.ALL_PACKAGES)} is installed in this Python")
    return EXIT_OK


def _kb_docs(kb, args: argparse.Namespace) -> int:
    """The rules reference, written whole; pages of entries no longer there are removed
    (only pages this command wrote: they start with its marker)."""
    from pathlib import Path

    from doctor.atomic import atomic_write_bytes
    from doctor.kb.docs import is_generated, pages

    folder = Path(args.folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{args.folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = pages(kb.entries)
    for name, text in written.items():
        atomic_write_bytes(folder / name, text.encode("utf-8"))
    stale = [p for p in sorted(folder.glob("*.md")) if p.name not in written
             and is_generated(p.read_text(encoding="utf-8", errors="replace"))]
    for path in stale:
        path.unlink()
    removed = f"; removed {counted(len(stale), 'page')} of entries no longer there" if stale else ""
    print(f"Wrote {counted(len(written) - 1, 'rule page')} and the index {folder / 'README.md'}{removed}")
    return EXIT_OK


def _kb_test(kb, args: argparse.Namespace) -> int:
    from doctor.selftest import run_examples

    if args.id and kb.get(args.id) is None:
        raise UsageError(f"no entry {args.id!r}")
    results = run_examples(kb, args.id)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"FAIL {r.entry.id} examples.{r.kind}[{r.index}] ({r.entry.file}:{r.entry.line}): {r.detail}")
    outranked = [r for r in results if r.ok and r.rank and r.rank > 1]
    if not args.quiet:
        for r in outranked:
            print(f"note {r.entry.id} examples.match[{r.index}] ranks #{r.rank} among all entries")
    entries = len({r.entry.id for r in results})
    skipped = [r for r in results if r.skipped]
    passed = len(results) - len(failed) - len(skipped)
    extra = ""
    if skipped:
        missing = ", ".join(sorted({r.skipped for r in skipped if r.skipped}))
        extra = f", {len(skipped)} skipped (not installed: {missing})"
    print(f"{passed} passed, {len(failed)} failed{extra} ({counted(entries, 'entry')}, {len(kb)} in the knowledge base)")
    return 1 if failed else EXIT_OK


# --- completion --------------------------------------------------------------------------

def cmd_completion(args: argparse.Namespace) -> int:
    from doctor.cli.completion import script
    from doctor.cli.parser import build_parser

    sys.stdout.write(script(build_parser(), args.shell))
    return EXIT_OK


# --- undo ------------------------------------------------------------------------------

def cmd_undo(args: argparse.Namespace) -> int:
    from doctor.fixes.journal import Journal, UndoError

    journal = Journal()
    if args.list:
        for tx in journal.transactions():
            files = len(tx["replaced"]) + len(tx["created"])
            print(f"{tx['id']}  {tx['status']:<11}  {tx['label']}  ({counted(files, 'file')})")
        return EXIT_OK
    try:
        lines = journal.undo_last(force=args.force)
    except UndoError as exc:
        print(f"unsloth-doctor: undo: {exc}", file=sys.stderr)
        return EXIT_USAGE if "nothing to undo" in str(exc) else 1
    for line in lines:
        print(line)
    return EXIT_OK
