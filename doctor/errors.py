"""Mistakes in how the doctor was called, and the exit codes every door shares.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 a usage error
(an unknown flag, a missing file, a bad value); 3 the doctor itself failed; 130/143 the
run was interrupted by SIGINT/SIGTERM.
"""
from __future__ import annotations

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as a shell reports a Ctrl-C


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (`doctor.interrupts`). A KeyboardInterrupt, so that every
    `finally:` and context manager runs and every `except KeyboardInterrupt` sees it too;
    `exit_code` is 128 + the signal's number (130, 143), as a shell reports it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class UsageError(ValueError):
    """A bad argument to the API or the CLI: one line that says what to change. Exit 2."""


class KnowledgeBroken(Exception):
    """The knowledge base itself does not load: the doctor's own failure (exit 3)."""


class PartialReport(Exception):
    """A bug of ours stopped a command after it had findings. They travel with the error so
    the CLI prints them before the crash message (the cause is `__cause__`)."""

    def __init__(self, report: object):
        super().__init__("stopped by an internal error after these findings")
        self.report = report
