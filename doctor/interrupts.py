"""SIGINT and SIGTERM: the doctor stops cleanly at any moment.

The command line runs inside `handling_signals()`: both signals raise `Interrupted`, so every
`finally:` block and context manager runs on the way out (an atomic write removes its temp
file, a child's process group is killed, `--jobs` workers are ended) and the exit code is
128 + the signal. A repeat of either signal while that cleanup runs is ignored, so it cannot
cut the cleanup short; one that comes later than FORCE_AFTER_S after the first ends the
process at once, should a cleanup ever hang.

`deferred()` holds a signal back over the few statements that must not be split (a temp file
created but not yet tracked, a child started but not yet recorded); `signals_blocked()` and
`as_worker()` let a forked worker start without ever running the parent's handler;
`sigterm_ends_at_once()` gives SIGTERM its default action back around native waits that never
return to Python (torch.distributed collectives).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Iterator

from doctor.errors import Interrupted

if TYPE_CHECKING:
    import subprocess

__all__ = ["MESSAGE", "Interrupted", "as_worker", "deferred", "end_process_group", "handling_signals",
           "signals_blocked", "sigterm_ends_at_once"]

MESSAGE = "unsloth-doctor: interrupted"
SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)
FORCE_AFTER_S = 5.0


class _State:
    fired: int | None = None      # the signal being handled; the process is on its way out
    fired_at = 0.0
    depth = 0                     # nesting of deferred()
    pending: int | None = None    # a signal that came inside deferred()


_state = _State()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _state.fired is not None:
        if time.monotonic() - _state.fired_at > FORCE_AFTER_S:
            _force_exit(_state.fired)
        return
    if _state.depth:
        _state.pending = _state.pending or signum
        return
    _fire(signum)


def _fire(signum: int) -> None:
    _state.fired, _state.fired_at = signum, time.monotonic()
    raise Interrupted(signum)


def _force_exit(signum: int) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(MESSAGE + "\n")
        sys.stderr.flush()
    os._exit(128 + signum)


def _main_thread() -> bool:
    # Python runs signal handlers in the main thread only, and only it may install them.
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` inside this block. The previous handlers come back
    at its end, unless a signal arrived: then the process is ending and repeats stay ignored."""
    if not _main_thread():
        yield
        return
    _state.fired, _state.depth, _state.pending = None, 0, None
    previous = {}
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN:
            continue   # ignored by whoever started us (nohup, a background job): keep it so
        previous[signum] = current
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        if _state.fired is None:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives inside the block is raised at its end, not in the middle."""
    if not _main_thread():
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending is not None and _state.fired is None:
            signum, _state.pending = _state.pending, None
            _fire(signum)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held by the OS for this thread; a process forked meanwhile starts with
    them held, and `as_worker()` releases them once its own handlers are in place."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def sigterm_ends_at_once() -> Iterator[None]:
    """SIGTERM with its default action inside the block: the process ends at once, without
    cleanup. For native code that waits without coming back to Python (a torch.distributed
    collective), where a Python handler would only run when the wait ends; a launcher such as
    torchrun sends SIGTERM to every rank when one fails, and expects them gone."""
    if not (_main_thread() and hasattr(signal, "SIGTERM")) or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def as_worker() -> None:
    """In a worker process: Ctrl-C (sent to the whole foreground process group) is the parent's
    to handle, and SIGTERM (the parent ending it) ends it at once, without a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def end_process_group(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Kill a child started with start_new_session=True and all it started, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):   # AttributeError: no killpg
        with contextlib.suppress(OSError):
            proc.kill()
    proc.wait()
