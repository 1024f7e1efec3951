"""Ctrl-C and SIGTERM at any moment: the real CLI, stopped in the middle of its work.

Each case starts `python -m doctor ...` in a session of its own, waits until it provably is in
the middle of the work (reading a large dataset, in its --jobs workers, writing a repaired
copy, waiting for the --deep or smoke child), sends the signal, and checks that the doctor
ends within two seconds with exit code 128 + the signal and the one line
"unsloth-doctor: interrupted" (no traceback, ours or a worker's), that no process it started
is left (its session, and the sessions its children started), no temp file, and the input and
outputs as they were.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from doctor.atomic import TEMP_MARK
from tests.helpers import procs
from tests.helpers.cli import ROOT, run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

STOP_WITHIN_S = 2.0
MESSAGE = "unsloth-doctor: interrupted"
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


# --- datasets: every row in single quotes, so each one takes the slow, careful parser -----------

def _write_rows(path: Path, rows: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(rows):
            line = ("{'instruction': 'question %d %s', 'input': '', 'output': 'answer %s'}\n"
                    % (i, "x" * 200, "y" * 300)).encode()
            f.write(line)
            h.update(line)
    return h.hexdigest()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Dataset:
    source: Path
    digest: str


def _dataset(tmp_path_factory: pytest.TempPathFactory, rows: int) -> Iterator[Dataset]:
    folder = tmp_path_factory.mktemp("rows")
    path = folder / "rows.jsonl"
    digest = _write_rows(path, rows)
    yield Dataset(path, digest)
    path.unlink()   # not kept among pytest's last temp folders


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """~80 MB: over --jobs' 64 MiB threshold, several seconds to scan even with two processes."""
    yield from _dataset(tmp_path_factory, 140_000)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """~8 MB: a second or so to scan, and as long again to repair."""
    yield from _dataset(tmp_path_factory, 14_000)


def _placed(data: Dataset, tmp_path: Path) -> Path:
    """The dataset in a folder of its own (a hard link: no copy of its bytes)."""
    folder = tmp_path / "data"
    folder.mkdir()
    os.link(data.source, folder / "rows.jsonl")
    return folder / "rows.jsonl"


# --- the doctor, started, stopped and checked --------------------------------------------------

@dataclass
class Stopped:
    code: int
    stderr: str
    seconds: float              # from the signal to the doctor's exit
    left: list[procs.Proc]      # processes of its that were still running then


class Doctor:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.tmp = tmp_path / "tmp"   # TMPDIR: every temp folder it makes must be gone at the end
        self.tmp.mkdir()
        env = {**os.environ, "NO_COLOR": "1", "TMPDIR": str(self.tmp)}
        self.proc = subprocess.Popen([sys.executable, "-m", "doctor", *args], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                pytest.fail(f"the doctor ended (exit {self.proc.returncode}) before {what}:\n{err.decode()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"not {what} after {timeout} s")
            time.sleep(0.01)

    def workers(self) -> list[procs.Proc]:
        return [p for p in procs.tree(self.pid) if p.pid != self.pid]

    def stop(self, signum: int, group: bool = False) -> Stopped:
        """Send `signum` (to its whole process group, as a terminal's Ctrl-C does, or to it alone,
        as `kill PID` does) and wait for it to end."""
        watched = procs.tree(self.pid)
        sessions = {p.sid for p in watched}
        sent = time.monotonic()
        (os.killpg if group else os.kill)(self.pid, signum)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill(watched)
            pytest.fail(f"still running 15 s after {signal.Signals(signum).name}")
        seconds = time.monotonic() - sent
        left = procs.running(watched, sessions)
        procs.kill_all(left)
        return Stopped(self.proc.returncode, err.decode("utf-8", "replace"), seconds, left)

    def kill(self, watched: list[procs.Proc] | None = None) -> None:
        procs.kill_all(watched or procs.tree(self.pid))
        self.proc.communicate()


def printed_traceback(text: str) -> bool:
    return re.search(r"^Traceback \(most recent call last\):$", text, re.M) is not None


def temp_files(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if TEMP_MARK in p.name or p.suffix == ".tmp"]


def assert_stopped_cleanly(stopped: Stopped, signum: int, doctor: Doctor, *folders: Path) -> None:
    assert not printed_traceback(stopped.stderr), stopped.stderr
    assert stopped.stderr.strip().splitlines() == [MESSAGE], stopped.stderr
    assert stopped.code == 128 + signum, stopped.stderr
    assert stopped.seconds < STOP_WITHIN_S, f"took {stopped.seconds:.2f} s to stop"
    assert stopped.left == [], f"left running: {stopped.left}"
    assert temp_files(*folders) == []
    assert list(doctor.tmp.iterdir()) == []   # its temp folders (deep's, smoke's, the code link)


# --- scan: one process, and --jobs 2 ------------------------------------------------------------

@pytest.mark.parametrize("signum", SIGNALS)
def test_scan_stops_while_reading_a_dataset(signum: int, medium: Dataset, tmp_path: Path) -> None:
    data = _placed(medium, tmp_path)
    doctor = Doctor(tmp_path, "scan", "--no-env", "--data", str(data))
    doctor.wait_until("reading the dataset", lambda: procs.reads(doctor.pid, data))
    stopped = doctor.stop(signum)
    assert_stopped_cleanly(stopped, signum, doctor, data.parent)
    assert sorted(p.name for p in data.parent.iterdir()) == ["rows.jsonl"]
    assert _digest(data) == medium.digest


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("moment, group", [
    pytest.param("worker-started", True, id="as-the-worker-starts-ctrl-c-to-the-group"),
    pytest.param("both-reading", True, id="both-reading-signal-to-the-group"),
    pytest.param("both-reading", False, id="both-reading-signal-to-the-doctor-alone"),
])
def test_scan_with_two_jobs_stops_its_workers(signum: int, moment: str, group: bool, big: Dataset,
                                               tmp_path: Path) -> None:
    data = _placed(big, tmp_path)
    doctor = Doctor(tmp_path, "scan", "--no-env", "--data", str(data), "--jobs", "2")
    if moment == "worker-started":
        doctor.wait_until("a worker exists", lambda: bool(doctor.workers()))
    else:
        doctor.wait_until("both processes read the file", lambda: procs.reads(doctor.pid, data) and any(
            procs.reads(w.pid, data) for w in doctor.workers()))
    stopped = doctor.stop(signum, group=group)
    assert_stopped_cleanly(stopped, signum, doctor, data.parent)
    assert _digest(data) == big.digest


def test_a_worker_that_dies_is_a_finding_not_a_hang(big: Dataset, tmp_path: Path) -> None:
    # multiprocessing.Pool waits forever for the task of a worker killed under it
    data = _placed(big, tmp_path)
    doctor = Doctor(tmp_path, "scan", "--no-env", "--data", str(data), "--jobs", "2", "--fail-on", "warning")
    doctor.wait_until("the worker reads the file", lambda: any(procs.reads(w.pid, data) for w in doctor.workers()))
    for worker in doctor.workers():
        os.kill(worker.pid, signal.SIGKILL)
    try:
        out, err = doctor.proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        doctor.kill()
        pytest.fail("the doctor still waits for its killed worker after 60 s")
    assert not printed_traceback(err.decode())
    assert doctor.proc.returncode == 1
    assert "worker process ended (exit code -9)" in out.decode()


# --- scan --fix: interrupted while writing the repaired copy ------------------------------------

def _writing(folder: Path, least: int) -> Callable[[], bool]:
    """Ready once a temp file of an atomic write (the repaired copy) holds `least` bytes."""
    def ready() -> bool:
        try:
            return any(p.stat().st_size >= least for p in folder.iterdir() if TEMP_MARK in p.name)
        except OSError:   # renamed or removed under us
            return False
    return ready


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("least", [pytest.param(0, id="as-writing-starts"), pytest.param(1 << 20, id="mid-write")])
def test_scan_fix_stops_without_a_partial_repair(signum: int, least: int, medium: Dataset, tmp_path: Path) -> None:
    data = _placed(medium, tmp_path)
    doctor = Doctor(tmp_path, "scan", "--no-env", "--data", str(data), "--fix")
    doctor.wait_until("writing the repaired copy", _writing(data.parent, least))
    stopped = doctor.stop(signum)
    assert_stopped_cleanly(stopped, signum, doctor, data.parent)
    # neither rows.fixed.jsonl nor rows.rejects.jsonl, whole or in part
    assert sorted(p.name for p in data.parent.iterdir()) == ["rows.jsonl"]
    assert _digest(data) == medium.digest


def test_an_interrupted_fix_leaves_no_open_transaction(medium: Dataset, tmp_path: Path) -> None:
    data = _placed(medium, tmp_path)
    doctor = Doctor(tmp_path, "scan", "--no-env", "--data", str(data), "--fix")
    doctor.wait_until("writing the repaired copy", _writing(data.parent, 1 << 20))
    assert doctor.stop(signal.SIGTERM).code == 143
    listed = run_cli("undo", "--list")      # rolled back, or never recorded: never left open
    assert listed.returncode == 0 and " open " not in listed.stdout, listed.stdout
    assert not list(data.parent.glob("*.fixed.*")) and not list(data.parent.glob("*.rejects.*"))


# --- scan --deep and smoke: the child in its own session ----------------------------------------

def fake_python(tmp_path: Path, sleep_on: str) -> tuple[Path, Path]:
    """An interpreter that is the real one, except for the call whose arguments contain
    `sleep_on`: that one says it started, and sleeps with a child of its own (as a real child's
    subprocess would), until killed. Returns it and the file that says it started."""
    started = tmp_path / "child-started"
    script = tmp_path / "fake-python"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *'{sleep_on}'*)
            sleep 300 &
            : > '{started}'
            wait
            exit 0;;
        esac
        exec '{sys.executable}' "$@"
        """))
    script.chmod(0o755)
    return script, started


# what each child's arguments hold: the interpreter check (`--python`), scan --deep's child
# (its source is passed with -c), the smoke test's child (`-m doctor.smoketest.child`)
CHECK, DEEP_CHILD, SMOKE_CHILD = "site_dirs", "@@unsloth-doctor@@", "doctor.smoketest.child"


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("command, sleep_on", [
    pytest.param(("scan", "--deep"), DEEP_CHILD, id="scan-deep-child"),
    pytest.param(("scan", "--deep"), CHECK, id="scan-deep-interpreter-check"),
    pytest.param(("smoke",), SMOKE_CHILD, id="smoke-child"),
])
def test_children_in_their_own_session_are_killed(signum: int, command: tuple[str, ...], sleep_on: str,
                                                   tmp_path: Path) -> None:
    python, started = fake_python(tmp_path, sleep_on)
    doctor = Doctor(tmp_path, *command, "--python", str(python))
    doctor.wait_until("the child runs", started.exists)
    doctor.wait_until("the child's own child runs", lambda: len(procs.tree(doctor.pid)) >= 3)
    stopped = doctor.stop(signum)
    assert_stopped_cleanly(stopped, signum, doctor)


# --- run -- CMD: the command decides, as before --------------------------------------------------

_CHILD = """\
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(7))
print("ready", flush=True)
time.sleep(60)
"""


def test_run_passes_sigterm_to_its_command_and_keeps_its_status(tmp_path: Path) -> None:
    doctor = Doctor(tmp_path, "run", "--no-env", "--", sys.executable, "-c", _CHILD)
    doctor.wait_until("the command runs", lambda: bool(doctor.workers()))
    time.sleep(0.5)   # its SIGINT handler in place
    stopped = doctor.stop(signal.SIGTERM)
    assert stopped.code == 143 and stopped.left == []
    assert "killed by SIGTERM" in stopped.stderr and not printed_traceback(stopped.stderr)


def test_run_leaves_ctrl_c_to_its_command(tmp_path: Path) -> None:
    doctor = Doctor(tmp_path, "run", "--no-env", "--", sys.executable, "-c", _CHILD)
    doctor.wait_until("the command runs", lambda: bool(doctor.workers()))
    time.sleep(0.5)
    stopped = doctor.stop(signal.SIGINT, group=True)
    assert stopped.code == 7 and stopped.left == []    # the command's own answer to Ctrl-C
    assert MESSAGE not in stopped.stderr


# --- the pieces ------------------------------------------------------------------------------------

def test_a_signal_inside_deferred_is_raised_at_its_end_and_repeats_are_ignored() -> None:
    code = textwrap.dedent("""\
        import os, signal
        from doctor.interrupts import deferred, handling_signals
        try:
            with handling_signals():
                with deferred():
                    os.kill(os.getpid(), signal.SIGTERM)
                    for _ in range(1000):
                        pass
                    print("held")
                print("not reached")
        except KeyboardInterrupt as exc:
            os.kill(os.getpid(), signal.SIGINT)   # a repeat, while cleaning up
            for _ in range(1000):
                pass
            print("raised", exc.exit_code)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.split("\n")[:2] == ["held", "raised 143"], done.stderr


def test_output_file_is_kept_whole_when_rendering_is_interrupted(tmp_path: Path, monkeypatch) -> None:
    import argparse

    from doctor.cli import output
    from doctor.results.report import Report

    target = tmp_path / "report.json"
    target.write_text("the previous report\n")

    def interrupted(report, fmt, stream, args) -> None:
        stream.write("half of a new rep")
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "render", interrupted)
    args = argparse.Namespace(output=str(target), format="json", fail_on="error", quiet=False)
    with pytest.raises(KeyboardInterrupt):
        output.emit(Report(command="scan"), args)
    assert target.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
