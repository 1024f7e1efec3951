"""Render a report in the asked format to stdout or --output, and pick the exit code."""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path
from typing import IO, Callable, TypeVar

from doctor.atomic import atomic_write_bytes
from doctor.errors import EXIT_USAGE, UsageError
from doctor.results.report import Report, exit_code

T = TypeVar("T")


def check_output(args: argparse.Namespace) -> None:
    """Refuse an --output that cannot be written before the work starts, not after it."""
    if not getattr(args, "output", None):
        return
    target = Path(args.output)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"--output: {args.output} is a folder; give a file name")
    if not folder.is_dir():
        raise UsageError(f"--output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"--output: cannot write {args.output}: permission denied")


def emit(report: Report, args: argparse.Namespace) -> int:
    if args.output:
        try:
            write_output(report, args)
        except UsageError as exc:
            # found out only after the work: the report goes to the screen, so nothing is lost
            print(f"unsloth-doctor: {exc}; the report follows here", file=sys.stderr)
            render(report, args.format, sys.stdout, args)
            return max(exit_code(report, args.fail_on), EXIT_USAGE)
    else:
        render(report, args.format, sys.stdout, args)
    if args.format == "console" and os.environ.get("GITHUB_ACTIONS") == "true":
        from doctor.report.annotations import render_annotations

        # on standard output even with --output: the runner reads its workflow commands there
        sys.stdout.write(render_annotations(report))
        sys.stdout.flush()
    return exit_code(report, args.fail_on)


def write_output(report: Report, args: argparse.Namespace) -> None:
    """--output FILE, written whole or not at all: an error or an interruption (Ctrl-C,
    SIGTERM) midway leaves the previous report there, and no temp file."""
    target = Path(args.output)
    if not target.parent.exists():
        raise UsageError(f"--output: folder {target.parent} does not exist")
    if target.exists() and not target.is_file():
        # a device or a pipe (/dev/stdout): nothing to replace, so written as it goes
        with _writable(args.output, lambda: open(target, "w", encoding="utf-8")) as handle:
            render(report, args.format, handle, args)
        return
    text = io.StringIO()
    render(report, args.format, text, args)
    target = target.resolve() if target.is_symlink() else target   # the file it names is replaced
    new = not target.exists()
    _writable(args.output, lambda: atomic_write_bytes(target, text.getvalue().encode("utf-8")))
    if new:   # as open() would have made it, not private like a temp file
        os.chmod(target, 0o666 & ~_umask())


def _writable(name: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except OSError as exc:
        raise UsageError(f"--output: cannot write {name}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def render(report: Report, fmt: str, stream: IO[str], args: argparse.Namespace) -> None:
    if fmt == "json":
        from doctor.report.jsonout import render_json

        stream.write(render_json(report))
    elif fmt == "sarif":
        from doctor.report.sarif import render_sarif

        stream.write(render_sarif(report))
    elif fmt == "concise":
        from doctor.report.concise import render_concise

        stream.write(render_concise(report))
    elif fmt == "markdown":
        from doctor.report.markdown import render_markdown

        stream.write(render_markdown(report))
    else:
        from doctor.report.console import render_console

        render_console(report, stream, quiet=args.quiet, verbose=getattr(args, "verbose", False))
