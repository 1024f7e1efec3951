"""Atomic writes survive kill -9 midway; the journal undoes what a fix did."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from doctor.atomic import TEMP_MARK, atomic_write_bytes
from doctor.fixes.journal import Journal, UndoError

ROOT = Path(__file__).resolve().parent.parent


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_sigkill_while_writing_a_large_file_leaves_the_original_intact(tmp_path: Path) -> None:
    target = tmp_path / "train.jsonl"
    target.write_bytes(b'{"text": "original"}\n' * 50_000)
    before = digest(target)
    started = tmp_path / "started"
    # A real child process replaces the file through the journal, writing slowly, and is
    # killed with SIGKILL in the middle of the write.
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from doctor.fixes.journal import Journal
        from doctor.atomic import atomic_writer
        tx = Journal({str(tmp_path / 'journal')!r}).begin("test")
        tx.backup({str(target)!r})
        with atomic_writer({str(target)!r}) as out:
            for i in range(100000):
                out.write(b'{{"text": "repaired row"}}\\n' * 100)
                if i == 5:
                    out.flush()
                    open({str(started)!r}, "w").close()
                time.sleep(0.001)
        tx.commit()
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 30
    while not started.exists():
        assert child.poll() is None, "the writer ended before it was killed"
        assert time.time() < deadline
        time.sleep(0.01)
    partial = [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]
    assert partial and partial[0].stat().st_size > 0, "the kill must land while the temp file is being written"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert digest(target) == before


def test_atomic_write_keeps_permissions(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    atomic_write_bytes(p, b"new")
    assert p.read_text() == "new" and (p.stat().st_mode & 0o777) == 0o640
    assert not [x for x in tmp_path.iterdir() if TEMP_MARK in x.name]


def test_failed_write_removes_temp_and_keeps_original(tmp_path: Path) -> None:
    from doctor.atomic import atomic_writer

    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(p) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def repaired(tmp_path: Path):
    """A journal, and a transaction that has replaced d.jsonl ("original" -> "repaired")."""
    journal = Journal(tmp_path / "journal")
    data = tmp_path / "d.jsonl"
    data.write_text("original\n")
    tx = journal.begin("fix d.jsonl")
    tx.write(data, b"repaired\n")
    return journal, data, tx


def test_undo_restores_replaced_and_removes_created(tmp_path: Path) -> None:
    journal, data, tx = repaired(tmp_path)
    new = tmp_path / "d.rejects.jsonl"
    tx.write(new, b"rejected\n")
    tx.commit()
    assert data.read_text() == "repaired\n" and new.exists()
    done = journal.undo_last()
    assert data.read_text() == "original\n" and not new.exists()
    assert any("restored" in line for line in done) and any("removed" in line for line in done)
    assert not (tmp_path / ".unsloth-doctor-backup").exists()
    with pytest.raises(UndoError, match="nothing to undo"):
        journal.undo_last()


def test_undo_refuses_a_file_edited_after_the_fix(tmp_path: Path) -> None:
    journal, data, tx = repaired(tmp_path)
    tx.commit()
    data.write_text("the user's own later edit\n")
    with pytest.raises(UndoError, match="changed after the fix"):
        journal.undo_last()
    journal.undo_last(force=True)
    assert data.read_text() == "original\n"


def test_undo_cli_round_trip(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    state = tmp_path / "state"
    data = tmp_path / "x.txt"
    data.write_text("v1")
    tx = Journal(state / "journal").begin("cli test")
    tx.write(data, b"v2")
    tx.commit()
    listed = run_cli("undo", "--list", env={"UNSLOTH_DOCTOR_STATE": str(state)})
    assert "cli test" in listed.stdout and "committed" in listed.stdout
    result = run_cli("undo", env={"UNSLOTH_DOCTOR_STATE": str(state)})
    assert result.returncode == 0, result.stderr
    assert data.read_text() == "v1"
    again = run_cli("undo", env={"UNSLOTH_DOCTOR_STATE": str(state)})
    assert again.returncode == 2 and "nothing to undo" in again.stderr
