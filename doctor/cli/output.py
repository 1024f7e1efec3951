"""Render a report in the asked format to stdout or --output, and pick the exit code."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

from doctor.errors import EXIT_USAGE, UsageError
from doctor.results.report import Report, exit_code


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
            handle = open(Path(args.output), "w", encoding="utf-8")
        except OSError as exc:
            # found out only now: the report goes to the screen, so nothing is lost
            print(f"unsloth-doctor: --output: cannot write {args.output}: {exc.strerror}; "
                  "the report follows here", file=sys.stderr)
            render(report, args.format, sys.stdout, args)
            return max(exit_code(report, args.fail_on), EXIT_USAGE)
        with handle:
            render(report, args.format, handle, args)
    else:
        render(report, args.format, sys.stdout, args)
    return exit_code(report, args.fail_on)


def render(report: Report, fmt: str, stream: IO[str], args: argparse.Namespace) -> None:
    if fmt == "json":
        from doctor.report.jsonout import render_json

        stream.write(render_json(report))
    elif fmt == "sarif":
        from doctor.report.sarif import render_sarif

        stream.write(render_sarif(report))
    elif fmt == "markdown":
        from doctor.report.markdown import render_markdown

        stream.write(render_markdown(report))
    else:
        from doctor.report.console import render_console

        render_console(report, stream, quiet=args.quiet, verbose=getattr(args, "verbose", False))
