"""Processes as Linux's /proc shows them: a process's descendants, their sessions, and which of
them are still running, to prove that nothing a command started outlives it."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str      # "Z": a zombie, dead but not yet reaped
    start: int      # clock ticks after boot: with the pid, names one process even if pids wrap


def _read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces or parentheses itself
    fields = stat[stat.rindex(")") + 2:].split()
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], int(fields[19]))


def table() -> dict[int, Proc]:
    procs = (_read(int(name)) for name in os.listdir("/proc") if name.isdigit())
    return {p.pid: p for p in procs if p is not None}


def tree(root: int) -> list[Proc]:
    """`root` and every process below it, now."""
    procs = table()
    found = [procs[root]] if root in procs else []
    for p in found:   # grows as it goes: breadth first
        found += [c for c in procs.values() if c.ppid == p.pid and c not in found]
    return found


def running(watched: Iterable[Proc], sessions: Iterable[int]) -> list[Proc]:
    """Processes still running (not zombies) that were watched, or that are in one of `sessions`
    (a child that started a session of its own, and what it started, are in it)."""
    keys = {(p.pid, p.start) for p in watched}
    sids = set(sessions)
    return [p for p in table().values()
            if p.state != "Z" and ((p.pid, p.start) in keys or p.sid in sids) and p.pid != os.getpid()]


def kill_all(procs: Iterable[Proc]) -> None:
    """So that a failing test leaves nothing behind either."""
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except OSError:
            pass


def reads(pid: int, path: Path) -> bool:
    """Whether `pid` has `path` open and has read past its start."""
    target = str(path.resolve())
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != target:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        pos = next((int(line.split()[1]) for line in info.splitlines() if line.startswith("pos:")), 0)
        if pos > 0:
            return True
    return False
