"""Signs of life on a terminal: one rich progress display on stderr for a whole command.

A command opens a `session` when a person watches (stderr and stdout are terminals, the
format is the console); steps that may take more than about a second add a `stage` (a
spinner with the time spent) or a `bar` (bytes read, rows, MB/s) to it. Outside a session
both are no-ops, so piped and machine-readable output never holds a progress line.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

_active: Any = None   # the rich Progress of the running session, if any
_stages: list[Any] = []   # its stage tasks, innermost last


def watched() -> bool:
    """A person is looking: both streams are terminals (nothing is redirected to a file or pipe)."""
    return _isatty(sys.stderr) and _isatty(sys.stdout)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):   # closed or replaced by something that is no file
        return False


@contextmanager
def session(enabled: bool) -> Iterator[None]:
    """The display for one command; nested sessions share the outer one."""
    global _active
    if not enabled or _active is not None or not _isatty(sys.stderr):
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    display = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                       TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
    with display:
        _active = display
        try:
            yield
        finally:
            _active = None


def active() -> bool:
    return _active is not None


@contextmanager
def stage(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner with `label` while the block runs; yields a function that renames the step."""
    if _active is None:
        yield lambda _text: None
        return
    display = _active
    task = display.add_task(label, total=None, detail="")
    _stages.append(task)
    try:
        yield lambda text: display.update(task, description=text)
    finally:
        _stages.remove(task)
        display.remove_task(task)


@dataclass
class _Bytes:
    total: int
    started: float = field(default_factory=time.perf_counter)

    def detail(self, done: int, rows: int | None) -> str:
        seconds = max(time.perf_counter() - self.started, 1e-6)
        parts = [f"{done / 1e6:.1f}/{self.total / 1e6:.1f} MB"]
        if rows is not None:
            parts.append(f"{rows:,} rows")
        parts.append(f"{done / 1e6 / seconds:.0f} MB/s")
        return " · ".join(parts)


@contextmanager
def bar(label: str, total: int, wanted: bool = False) -> Iterator[Callable[..., None] | None]:
    """A bar over `total` bytes; yields update(done_bytes, rows=None), or None when nobody
    watches. Inside a session it joins the session's display; `wanted` (an API caller who
    asked for progress) opens one of its own on a terminal's stderr."""
    if _active is None:
        if not wanted:
            yield None
            return
        with session(True):
            if _active is None:   # stderr is no terminal
                yield None
                return
            with bar(label, total) as update:
                yield update
        return
    display = _active
    meter = _Bytes(total)
    # the bar says more than the step around it ("checking dataset x"): one line, not two
    hidden = _stages[-1] if _stages else None
    if hidden is not None:
        display.update(hidden, visible=False)
    task = display.add_task(label, total=total, detail=meter.detail(0, None))

    def update(done: int, rows: int | None = None) -> None:
        display.update(task, completed=done, detail=meter.detail(done, rows))
    try:
        yield update
    finally:
        display.refresh()   # the last figures are seen even when the work beat the refresh
        display.remove_task(task)
        if hidden is not None and hidden in _stages:
            display.update(hidden, visible=True)
