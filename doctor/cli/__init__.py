"""The command line: parse, call the API, hand the result to a reporter, pick the exit code.

Exit codes (doctor.errors): 0 nothing at or above --fail-on; 1 findings at or above it;
2 a usage error; 3 the doctor itself failed (said plainly, with a crash log); 130 interrupted
by SIGINT (Ctrl-C), 143 by SIGTERM: either one ends the run within moments, after the cleanup
in every `finally:` (doctor.interrupts), with one line on stderr and no traceback.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Sequence

from doctor.errors import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, KnowledgeBroken, PartialReport,
                           UsageError)
from doctor.interrupts import MESSAGE, handling_signals

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with handling_signals():
            return _main(argv)
    except KeyboardInterrupt as exc:   # doctor.errors.Interrupted too: SIGINT or SIGTERM
        with contextlib.suppress(OSError, ValueError):   # stderr may be gone as well
            print(MESSAGE, file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        from doctor.cli.parser import build_parser

        named = args_list[0] if args_list and not args_list[0].startswith("-") else None
        parser = build_parser(named)
        args = parser.parse_args(args_list)
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        from doctor.cli import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except UsageError as exc:
        print(f"unsloth-doctor: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KnowledgeBroken as exc:   # the doctor's own failure: exit 3, no traceback
        print(f"unsloth-doctor: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:
        return EXIT_OK
    except PartialReport as exc:   # a bug after findings: show them, then say it was a bug
        from doctor.cli.crash import report_crash
        from doctor.cli.output import emit

        try:
            emit(exc.report, args)
        except Exception:  # noqa: BLE001 - the crash report below matters more
            pass
        return report_crash(exc.__cause__ or exc, args_list)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        from doctor.cli.crash import report_crash

        return report_crash(exc, args_list)
