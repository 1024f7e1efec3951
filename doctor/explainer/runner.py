"""`unsloth-doctor run -- CMD ...`: run a command, pass its output through untouched and
live, keep the last few MB, and when it fails explain the failure from what it printed.

The command's exit status is ours: a normal exit keeps its code, a death by signal N
becomes 128 + N (as a shell reports it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import IO, Any, Callable, Mapping, Optional, Sequence

from doctor.results.explain import ExplainResult

RING_BYTES = 4 * 1024 * 1024
_READ = 64 * 1024
_MAX_PARTIAL = 64 * 1024   # a progress bar that never prints a newline is cut here
EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE, EXIT_USAGE = 127, 126, 2
DRAIN_SECONDS = 3.0        # after the command exits, how long its pipes may keep talking

FactsProvider = Callable[[], Optional[Mapping[str, Any]]]   # Optional: this line runs on 3.9 too


class LineRing:
    """The last `limit` bytes of output, whole lines only, in arrival order, thread-safe."""

    def __init__(self, limit: int = RING_BYTES) -> None:
        self.limit = limit
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self.dropped_lines = 0

    def add(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            while self._size > self.limit and len(self._lines) > 1:
                self._size -= len(self._lines.popleft())
                self.dropped_lines += 1

    def text(self) -> str:
        with self._lock:
            return b"".join(self._lines).decode("utf-8", "replace")


def _pump(src: IO[bytes], sink: IO[bytes] | None, ring: LineRing) -> None:
    """Copy a pipe to `sink` as it arrives; hand complete lines to the ring."""
    partial = b""
    fd = src.fileno()
    while True:
        try:
            data = os.read(fd, _READ)
        except OSError:
            break
        if not data:
            break
        if sink is not None:
            try:
                sink.write(data)
                sink.flush()
            except (OSError, ValueError):
                sink = None     # our own output went away (closed pipe): keep capturing
        partial += data
        start = 0
        while (cut := partial.find(b"\n", start)) >= 0:   # "\r" is not a line end: tqdm
            ring.add(partial[start:cut + 1])
            start = cut + 1
        partial = partial[start:]
        if len(partial) > _MAX_PARTIAL:
            partial = partial[-_MAX_PARTIAL:]
    if partial:
        ring.add(partial + b"\n")


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_and_explain(
    argv: Sequence[str],
    kb: Any,
    facts_provider: FactsProvider | None = None,
    *,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    report: Callable[[ExplainResult], None],
    top: int = 3,
    ring_bytes: int = RING_BYTES,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run argv; on failure explain it. Returns the command's exit status.

    `stdout`/`stderr` are where the command's output goes (our own by default); the
    explanation goes to `report(result)` (`doctor.api.run` renders it on stderr).
    """
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    argv = list(argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        _say(err, "unsloth-doctor run: no command given (usage: unsloth-doctor run -- python train.py)")
        return EXIT_USAGE
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")   # so a Python child's output is live
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env)
    except FileNotFoundError:
        _say(err, f"unsloth-doctor run: command not found: {argv[0]}")
        return EXIT_NOT_FOUND
    except PermissionError:
        _say(err, f"unsloth-doctor run: permission denied: {argv[0]}")
        return EXIT_NOT_EXECUTABLE
    except (OSError, ValueError) as exc:   # ValueError: a NUL byte in an argument
        _say(err, f"unsloth-doctor run: cannot start {argv[0]!r}: {getattr(exc, 'strerror', None) or exc}")
        return EXIT_NOT_EXECUTABLE
    ring = LineRing(ring_bytes)
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, ring), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, err, ring), daemon=True)]
    for t in pumps:
        t.start()
    returncode = _wait(proc)
    for t in pumps:   # a grandchild that inherited the pipes may hold them open for good
        t.join(timeout=DRAIN_SECONDS)
    status = exit_status(returncode)
    if status == 0:
        return 0
    report(_explain(ring, kb, facts_provider, top, returncode))
    return status


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the child; Ctrl-C reaches it through the terminal, SIGTERM we pass on."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def forward(signum: int, _frame: Any) -> None:
            proc.send_signal(signum)

        def let_child_decide(_signum: int, _frame: Any) -> None:
            pass   # the child got the same SIGINT; its exit status tells the story

        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            # not the CLI's handler either: SIGINT here is no reason for us to stop
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, let_child_decide)
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue   # the child got the same SIGINT; its exit status tells the story
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _explain(ring: LineRing, kb: Any, facts_provider: FactsProvider | None, top: int,
             returncode: int) -> ExplainResult:
    from doctor.explainer.diagnosis import diagnose

    facts = None
    notes = []
    if facts_provider is not None:
        try:
            facts = facts_provider()
        except Exception as exc:  # the environment probe must never hide the explanation
            notes.append(f"Could not read this machine's environment ({type(exc).__name__}: {exc}); "
                         "diagnosed from the output alone.")
    result = diagnose(ring.text(), kb, facts, top)
    if ring.dropped_lines:
        notes.append(f"Only the last {ring.limit // (1024 * 1024)} MiB of output was kept; "
                     f"line numbers count from there ({ring.dropped_lines} earlier lines left out).")
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = (" A SIGKILL with no Python traceback is often the kernel's out-of-memory killer "
                "(host RAM): check `dmesg` or `journalctl -k`.") if -returncode == signal.SIGKILL else ""
        notes.append(f"The command was killed by {name} (exit status {128 - returncode}).{hint}")
    else:
        notes.append(f"The command exited with status {returncode}.")
    result.notes = notes + result.notes
    return result


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _say(err: IO[bytes], text: str) -> None:
    try:
        err.write(text.encode("utf-8", "replace") + (b"" if text.endswith("\n") else b"\n"))
        err.flush()
    except (OSError, ValueError):
        pass
