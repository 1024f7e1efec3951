"""What a Python traceback doesn't show: C++ exceptions that abort the process, and the
lines a shell or launcher prints when a process dies by a signal."""
from __future__ import annotations

from doctor.explainer.lazyre import LazyRE
from doctor.results.explain import Chain, Death, ExceptionInfo, LogLine

_TERMINATE = LazyRE(r"terminate called after throwing an instance of '([^']+)'")
_WHAT = LazyRE(r"^\s*what\(\):\s*(.*)$")
# (kind, pattern) in the order they are tried on a line
_DEATHS: tuple[tuple[str, LazyRE], ...] = tuple((kind, LazyRE(p)) for kind, p in (
    ("killed", r"^\s*Killed\s*$|\s\d+\s+Killed\s+\S"),   # a lone `Killed`; bash: `4121 Killed  python x.py`
    ("killed", r"(?i)signal 9 \(SIGKILL\)|<Signals\.SIGKILL: 9>|exitcode\s*:\s*-9\b|exit code 137\b"),
    ("segfault", r"(?i)segmentation fault|signal 11 \(SIGSEGV\)|<Signals\.SIGSEGV: 11>|exit code 139\b"),
    ("abort", r"(?i)aborted \(core dumped\)|signal 6 \(SIGABRT\)|<Signals\.SIGABRT: 6>|exit code 134\b"),
    ("bus error", r"(?i)\bbus error\b"),
))


def native_chains(lines: list[LogLine]) -> list[tuple[int, Chain]]:
    """`terminate called after throwing an instance of 'c10::Error'` + `what():  message`."""
    out: list[tuple[int, Chain]] = []
    for i, line in enumerate(lines):
        if "terminate called" not in line.text:
            continue
        m = _TERMINATE.search(line.text)
        if not m:
            continue
        message, msg_lines = "", [line.no]
        for nxt in lines[i + 1:i + 4]:
            w = _WHAT.search(nxt.text)
            if w:
                message, msg_lines = w.group(1).strip(), [line.no, nxt.no]
                break
        exc = ExceptionInfo(m.group(1), message, (), line.no, tuple(msg_lines), line.rank)
        out.append((line.no, Chain((exc,))))
    return out


def find_death(lines: list[LogLine]) -> Death | None:
    """The last sign of a process killed by a signal."""
    for line in reversed(lines):
        text = line.text
        if not any(k in text for k in ("Killed", "SIG", "ignal", "-9", "exit code 1", "ault", "bort", "us error")):
            continue
        for kind, pattern in _DEATHS:
            if pattern.search(text):
                return Death(kind, line.no, text.strip())
    return None
