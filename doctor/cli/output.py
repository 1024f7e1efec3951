"""Render a report in the asked format to stdout or --output, and pick the exit code."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

from doctor.errors import UsageError
from doctor.results.report import Report, exit_code


def emit(report: Report, args: argparse.Namespace) -> int:
    if args.output:
        target = Path(args.output)
        if not target.parent.exists():
            raise UsageError(f"--output: folder {target.parent} does not exist")
        try:
            handle = open(target, "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output: cannot write {args.output}: {exc.strerror}") from None
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
