"""run_and_explain with real child processes: pass-through, exit codes, signals, the ring."""
from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from doctor.explainer.runner import LineRing, exit_status, run_and_explain
from doctor.facts import Facts
from doctor.kb import KnowledgeBase, load_knowledge

ROOT = Path(__file__).resolve().parent.parent
OOM_LOG = (ROOT / "fixtures" / "logs" / "plain_oom.log").read_text()


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge([ROOT / "knowledge" / "runtime"])


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def as_text(err):
    """What `unsloth-doctor run` does with the explanation on a console: text on stderr."""
    from doctor.report.explain import render_text

    return lambda result: err.write(render_text(result).encode())


def run(argv, kb, **kw):
    out, err = io.BytesIO(), io.BytesIO()
    kw.setdefault("report", as_text(err))
    code = run_and_explain(argv, kb, stdout=out, stderr=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_failing_command_is_explained_and_its_output_passes_through(tmp_path, kb):
    argv = script(tmp_path, f"""
        import sys
        print("step 1/400 loss 1.23")
        sys.stderr.write({OOM_LOG!r})
        sys.exit(1)
    """)
    code, out, err = run(argv, kb)
    assert code == 1
    assert out == b"step 1/400 loss 1.23\n"
    assert err.startswith(OOM_LOG.encode())          # the child's bytes, unchanged, first
    explanation = err[len(OOM_LOG):].decode()
    assert "cuda-oom" in explanation and "expandable_segments:True" in explanation
    assert "The command exited with status 1." in explanation


def test_success_adds_nothing(tmp_path, kb):
    argv = script(tmp_path, """
        import sys
        sys.stdout.write("done\\n"); sys.stderr.write("a warning\\n")
    """)
    assert run(argv, kb) == (0, b"done\n", b"a warning\n")


def test_exit_code_is_preserved(tmp_path, kb):
    argv = script(tmp_path, "import sys; sys.exit(3)")
    code, _, err = run(argv, kb)
    assert code == 3 and b"exited with status 3" in err


def test_signal_death_maps_to_128_plus_signum(tmp_path, kb):
    argv = script(tmp_path, """
        import os, signal
        print("loading model", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    code, out, err = run(argv, kb)
    assert code == 128 + signal.SIGKILL == 137
    assert out == b"loading model\n"
    assert b"killed by SIGKILL (exit status 137)" in err and b"out-of-memory killer" in err
    assert exit_status(-signal.SIGTERM) == 143 and exit_status(0) == 0


def test_output_is_live_not_buffered_until_exit(tmp_path, kb):
    """The child waits for a file that the test creates only once it has seen the child's
    first line; if output were held back until exit, the child would give up with 5."""
    flag = tmp_path / "seen"
    argv = script(tmp_path, f"""
        import os, sys, time
        print("ready")                      # no flush: PYTHONUNBUFFERED makes it live
        for _ in range(200):
            if os.path.exists({str(flag)!r}):
                sys.exit(0)
            time.sleep(0.05)
        sys.exit(5)
    """)

    class Watch(io.BytesIO):
        def write(self, data: bytes) -> int:
            if b"ready" in data:
                flag.touch()
            return super().write(data)

    code = run_and_explain(argv, kb, stdout=Watch(), stderr=io.BytesIO(), report=lambda r: None)
    assert code == 0


def test_ring_keeps_the_tail_and_finds_the_error(tmp_path, kb):
    argv = script(tmp_path, f"""
        import sys
        for i in range(60000):
            print(f"{{{{'loss': {{i}}, 'epoch': 0.1}}}}")
        sys.stderr.write({OOM_LOG!r})
        sys.exit(1)
    """)
    reports = []
    code, out, _ = run(argv, kb, ring_bytes=256 * 1024, report=reports.append)
    assert code == 1 and out.count(b"\n") == 60000
    result = reports[0]
    assert result.log.final.type == "torch.OutOfMemoryError"
    assert result.findings[0].category == "cuda-oom"
    assert any("earlier lines left out" in n for n in result.notes)


def test_line_ring_is_bounded_and_whole_lines():
    ring = LineRing(limit=100)
    for i in range(1000):
        ring.add(f"line {i}\n".encode())
    text = ring.text()
    assert len(text) <= 100 and text.endswith("line 999\n") and text.startswith("line ")
    assert ring.dropped_lines == 1000 - text.count("\n")


def test_facts_are_used_and_a_broken_provider_does_not_hide_the_explanation(tmp_path, kb):
    argv = script(tmp_path, f"import sys; sys.stderr.write({OOM_LOG!r}); sys.exit(1)")
    seen = []
    run(argv, kb, facts_provider=lambda: Facts({"gpu.count": 1}), report=seen.append)
    assert seen[0].env_checked

    def broken():
        raise OSError("NVML went away")

    seen.clear()
    code, _, _ = run(argv, kb, facts_provider=broken, report=seen.append)
    assert code == 1 and seen[0].findings[0].category == "cuda-oom"
    assert any("Could not read this machine's environment (OSError: NVML went away)" in n
               for n in seen[0].notes)


def test_bad_commands_get_a_clear_message(tmp_path, kb):
    code, _, err = run(["definitely-not-a-command-4711"], kb)
    assert code == 127 and err == b"unsloth-doctor run: command not found: definitely-not-a-command-4711\n"
    code, _, err = run([], kb)
    assert code == 2 and b"no command given" in err
    not_exec = tmp_path / "plain.txt"
    not_exec.write_text("x")
    code, _, err = run([str(not_exec)], kb)
    assert code == 126 and b"permission denied" in err
    code, _, err = run(["python\x00x"], kb)
    assert code == 126 and err.startswith(b"unsloth-doctor run: cannot start") and b"Traceback" not in err


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_to_us_is_passed_to_the_child(tmp_path, kb):
    argv = script(tmp_path, """
        import signal, sys, time
        print("up", flush=True)
        time.sleep(30)
        sys.exit(9)
    """)

    class Up(io.BytesIO):
        def write(self, data: bytes) -> int:
            if b"up" in data:   # the child is running: terminate *us*
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
            return super().write(data)

    code = run_and_explain(argv, kb, stdout=Up(), stderr=io.BytesIO(), report=lambda r: None)
    assert code == 128 + signal.SIGTERM


def test_cli_run_passes_output_and_exit_code_through(tmp_path):
    import subprocess

    argv = script(tmp_path, f"""
        import sys
        print("training...")
        sys.stderr.write({OOM_LOG!r})
        sys.exit(7)
    """)
    out = subprocess.run([sys.executable, "-m", "doctor", "run", "--no-env", "--", *argv],
                         cwd=ROOT, capture_output=True, timeout=120)
    assert out.returncode == 7
    assert out.stdout == b"training...\n"
    assert out.stderr.startswith(OOM_LOG.encode())
    assert b"cuda-oom" in out.stderr and b"\x1b[" not in out.stderr   # not a terminal: no colour


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    import pty

    from doctor.report.explain import wants_color

    leader, follower = pty.openpty()
    try:
        with open(follower, "wb", buffering=0, closefd=False) as tty:
            monkeypatch.delenv("NO_COLOR", raising=False)
            assert wants_color(tty)
            monkeypatch.setenv("NO_COLOR", "1")
            assert not wants_color(tty)
        assert not wants_color(io.BytesIO())
    finally:
        os.close(leader)
        os.close(follower)


def test_a_grandchild_holding_the_pipes_does_not_hang_us(tmp_path, kb):
    pid_file = tmp_path / "grandchild.pid"
    argv = script(tmp_path, f"""
        import subprocess, sys
        g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # inherits our pipes
        open({str(pid_file)!r}, "w").write(str(g.pid))
        print("parent done", flush=True)
        sys.exit(4)
    """)
    code, out, _ = run(argv, kb, report=lambda r: None)
    grandchild = int(pid_file.read_text())
    try:
        os.kill(grandchild, 0)          # still running: we returned without waiting for it
        alive = True
    except ProcessLookupError:
        alive = False
    finally:
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert code == 4 and out == b"parent done\n" and alive
