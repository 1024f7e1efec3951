"""One function per sub-command: gather inputs, call the core, hand a report to `emit`."""
from __future__ import annotations

import argparse
import json
import sys

from doctor.cli import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, UsageError, emit, require_file
from doctor.kb import KnowledgeBase, KnowledgeError, load_knowledge


def _kb() -> KnowledgeBase:
    try:
        return load_knowledge()
    except KnowledgeError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems[:50])
        more = f"\n  ... and {len(exc.problems) - 50} more" if len(exc.problems) > 50 else ""
        raise _KnowledgeBroken(f"the knowledge base has {len(exc.problems)} problem(s):\n{lines}{more}") from None


class _KnowledgeBroken(Exception):
    pass


def _guard_kb(fn):  # a broken knowledge file is the doctor's own failure: exit 3, no traceback
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _KnowledgeBroken as exc:
            print(f"unsloth-doctor: {exc}", file=sys.stderr)
            return EXIT_INTERNAL
    return wrapper


# --- scan ------------------------------------------------------------------------------

@_guard_kb
def cmd_scan(args: argparse.Namespace) -> int:
    from doctor.scan import ScanOptions, run_scan
    from doctor.targets import Targets, discover_project

    targets = Targets(env=False)
    for raw in args.paths:
        path = require_file(raw, "path")
        if path.is_dir():
            found = discover_project(path)
            targets.projects += found.projects
            targets.data += found.data
            targets.scripts += found.scripts
            targets.configs += found.configs
            targets.models += found.models
            targets.env = True
        elif path.suffix in (".jsonl", ".json", ".parquet", ".csv"):
            targets.data.append(str(path))
        elif path.suffix in (".py", ".ipynb"):
            targets.scripts.append(str(path))
        elif path.suffix in (".yaml", ".yml"):
            targets.configs.append(str(path))
        else:
            raise UsageError(f"don't know how to scan {raw!r}: give a folder, a dataset or a .py/.ipynb script")
    for raw in args.data:
        targets.data.append(str(require_file(raw, "--data")))
    for raw in args.script:
        targets.scripts.append(str(require_file(raw, "--script")))
    for raw in args.config:
        targets.configs.append(str(require_file(raw, "--config")))
    for raw in args.model:
        if not require_file(raw, "--model").is_dir():
            raise UsageError(f"--model {raw!r} is not a folder (give the folder with config.json or adapter_config.json)")
        targets.models.append(raw)
    if args.tokenizer:
        require_file(args.tokenizer, "--tokenizer")
    if args.unsafe_fixes and not args.fix:
        raise UsageError("--unsafe-fixes goes with --fix")
    if args.in_place and not args.fix:
        raise UsageError("--in-place goes with --fix")
    nothing_else = not (targets.data or targets.scripts or targets.configs or targets.models or targets.projects)
    targets.env = args.env if args.env is not None else (targets.env or nothing_else)
    opts = ScanOptions(
        deep=args.deep, smoke=args.smoke, fix=args.fix, unsafe_fixes=args.unsafe_fixes, in_place=args.in_place,
        tokenizer=args.tokenizer, max_seq_length=args.max_seq_length, response_part=args.response_part,
        jobs=max(1, args.jobs), progress=sys.stderr.isatty() and args.format == "console", timeout=args.timeout,
        python=args.python,
    )
    if args.python:
        from doctor.probes.child_python import check_python
        from doctor.probes.system import NotAPython

        try:
            opts.python = check_python(args.python)
        except NotAPython as exc:
            raise UsageError(f"--python: {exc}") from None
    if args.distributed:
        from doctor.distributed import DistributedOptions, run_distributed_scan

        gathered = run_distributed_scan(DistributedOptions(timeout_s=args.timeout, scripts=list(targets.scripts)))
        if gathered is None:
            return EXIT_OK   # not rank 0: rank 0 reports for the whole job
        opts.extra["distributed"], targets.env = gathered, False   # it holds rank 0's environment
    report = run_scan(_kb(), targets, opts)
    return emit(report, args)


# --- explain and run -------------------------------------------------------------------

def _live_facts(no_env: bool) -> dict:
    if no_env:
        return {}
    try:
        from doctor.probes.env import collect_environment

        return dict(collect_environment(requirements=False).facts)
    except Exception:  # noqa: BLE001 - explain must work even where the env probe can't
        return {}


@_guard_kb
def cmd_explain(args: argparse.Namespace) -> int:
    if args.file == "-":
        if sys.stdin.isatty():
            print("Paste the error or log, then press Ctrl-D (Ctrl-Z Enter on Windows):", file=sys.stderr)
    else:
        path = require_file(args.file, "file")
        if path.is_dir():
            raise UsageError(f"{args.file!r} is a folder; give a log file or - for standard input")
    from doctor.explain import diagnose_stream

    kb = _kb()
    facts = _live_facts(args.no_env)
    # streamed: a 50 MB log is read once, in bounded memory
    if args.file == "-":
        result = diagnose_stream(sys.stdin.buffer, kb, facts=facts, top=args.top)
    else:
        with open(args.file, "rb") as handle:
            result = diagnose_stream(handle, kb, facts=facts, top=args.top)
    return emit(_explain_report(result, [args.file]), args)


def _explain_report(result, targets: list[str], command: str = "explain"):
    from doctor.report.model import Report

    # weak leads are shown, but they are no diagnosis: they don't fail the exit code
    findings = list(result.findings) if result.matched else []
    return Report(command=command, findings=findings, targets=targets, sections={"explain": result})


@_guard_kb
def cmd_run(args: argparse.Namespace) -> int:
    from doctor.explain.runner import run_and_explain

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("give the command to run after --, e.g. unsloth-doctor run -- python train.py")
    kb = _kb()
    report = None
    if args.format != "console" or args.output:
        # machine formats go through the reporters; the console default prints to stderr
        report = lambda result: emit(_explain_report(result, [" ".join(argv)], "run"), args)  # noqa: E731
    return run_and_explain(argv, kb, facts_provider=lambda: _live_facts(args.no_env), report=report)


# --- smoke -----------------------------------------------------------------------------

@_guard_kb
def cmd_smoke(args: argparse.Namespace) -> int:
    from doctor.engine import findings_from_observations
    from doctor.report.model import Report
    from doctor.smoke.runner import SmokeOptionError, SmokeOptions, run_smoke

    if args.model:
        require_file(args.model, "--model")
    if args.python:
        from doctor.probes.child_python import check_python
        from doctor.probes.system import NotAPython

        try:
            args.python = check_python(args.python)
        except NotAPython as exc:
            raise UsageError(f"--python: {exc}") from None
    import dataclasses

    names = {f.name for f in dataclasses.fields(SmokeOptions)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    try:
        options = SmokeOptions(**values)
    except SmokeOptionError as exc:
        raise UsageError(str(exc)) from None
    smoke = run_smoke(options)
    kb = _kb()
    report = Report(command="smoke", findings=findings_from_observations(kb, getattr(smoke, "observations", [])),
                    sections={"smoke": smoke}, facts=dict(getattr(smoke, "facts", {}) or {}))
    code = emit(report, args)
    return code if smoke.ok else max(code, 1)


# --- kb --------------------------------------------------------------------------------

@_guard_kb
def cmd_kb(args: argparse.Namespace) -> int:
    action = args.kb_command
    if action == "schema":
        if args.report:
            from doctor.report.jsonout import report_schema

            print(json.dumps(report_schema(), indent=2))
        else:
            from doctor.kb.schema import json_schema

            print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    if action is None:
        raise UsageError("kb needs an action: list, show, test or schema")
    kb = _kb()
    if action == "list":
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


def _kb_test(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    from doctor.kb.selftest import run_examples

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
    print(f"{passed} passed, {len(failed)} failed{extra} ({entries} entries, {len(kb)} in the knowledge base)")
    return 1 if failed else EXIT_OK


# --- undo ------------------------------------------------------------------------------

def cmd_undo(args: argparse.Namespace) -> int:
    from doctor.fixes.journal import Journal, UndoError

    journal = Journal()
    if args.list:
        for tx in journal.transactions():
            files = len(tx["replaced"]) + len(tx["created"])
            print(f"{tx['id']}  {tx['status']:<9}  {tx['label']}  ({files} file(s))")
        return EXIT_OK
    try:
        lines = journal.undo_last(force=args.force)
    except UndoError as exc:
        print(f"unsloth-doctor: undo: {exc}", file=sys.stderr)
        return EXIT_USAGE if "nothing to undo" in str(exc) else 1
    for line in lines:
        print(line)
    return EXIT_OK
