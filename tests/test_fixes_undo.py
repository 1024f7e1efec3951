"""One `scan --fix` run is one transaction: one `undo` puts the whole folder back, byte for byte,
runs are undone newest first, and an interrupted run leaves nothing behind and no open entry."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doctor.fixes.apply import apply_fixes
from doctor.atomic import TEMP_MARK
from doctor.fixes.dataset import RepairOptions, repair_dataset
from doctor.fixes.journal import Journal, UndoError
from doctor.probes.script import read_source, scan_source
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.folders import project, tree


def journal_entries() -> list[dict]:
    return Journal().transactions()


# -- one run, one undo -------------------------------------------------------------------

def test_one_undo_reverts_the_whole_demo_fix_run(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "fixtures/demo", demo)
    before = tree(demo)
    fixed = run_cli("scan", str(demo), "--no-env", "--fix")
    assert fixed.returncode in (0, 1), fixed.stderr
    assert (demo / "train.py").read_text() != (ROOT / "fixtures/demo/train.py").read_text()
    assert (demo / "data/train.fixed.jsonl").exists()
    undone = run_cli("undo")
    assert undone.returncode == 0, undone.stderr
    assert tree(demo) == before      # train.py restored, outputs and backup folders gone
    assert [t["status"] for t in journal_entries()] == ["undone"]   # the run was one entry
    again = run_cli("undo")
    assert again.returncode == 2 and "nothing to undo" in again.stderr


def test_one_undo_reverts_several_datasets_and_scripts_and_a_second_run(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = tree(root)
    first = run_cli("scan", str(root), "--no-env", "--fix")
    assert "not repaired" not in first.stdout, first.stdout
    assert (root / "train.py").read_text().startswith("import unsloth")
    assert (root / "data/extra/finetune.py").read_text().startswith("import unsloth")
    outputs = [name for name in set(tree(root)) - set(before) if ".fixed." in name or ".rejects." in name]
    assert len(outputs) == 6, outputs    # a repaired copy and a rejects file for each dataset
    # A second run over its own outputs, a dataset edited in between: it replaces them.
    with open(root / "data/train.jsonl", "a") as f:
        f.write('{"text": "new",}\n')
    edited = tree(root)
    second = run_cli("scan", str(root), "--no-env", "--fix")
    assert "not repaired" not in second.stdout, second.stdout
    assert b"new" in (root / "data/train.fixed.jsonl").read_bytes()
    assert run_cli("undo").returncode == 0
    assert tree(root) == edited       # the second run's outputs are the first run's again
    assert [t["status"] for t in journal_entries()] == ["committed", "undone"]   # a run is one entry
    undone = run_cli("undo")          # no --force: nobody touched what the first run wrote
    assert undone.returncode == 0, undone.stderr
    assert tree(root) == {**before, "data/train.jsonl": edited["data/train.jsonl"]}
    assert run_cli("undo").returncode == 2


def test_runs_started_in_the_same_second_are_undone_newest_first(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    target = tmp_path / "f.txt"
    target.write_text("v0")
    for n in range(1, 13):           # well within a second: the order cannot come from the clock
        with journal.transaction(f"run {n}") as tx:
            tx.write(target, f"v{n}".encode())
    listed = journal.transactions()
    assert [t["label"] for t in listed] == [f"run {n}" for n in range(1, 13)]
    assert [t["seq"] for t in listed] == list(range(1, 13))
    for n in range(11, -1, -1):
        journal.undo_last()
        assert target.read_text() == f"v{n}"
    assert not (tmp_path / ".unsloth-doctor-backup").exists()


def test_a_file_written_twice_in_one_run_is_restored_to_its_state_before_the_run(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    target = tmp_path / "f.txt"
    target.write_text("original")
    with journal.transaction("run") as tx:
        tx.write(target, b"first edit")
        tx.write(target, b"second edit")
    assert len(journal.transactions()[0]["steps"]) == 1
    journal.undo_last()
    assert target.read_text() == "original"


def test_script_and_dataset_fixers_share_the_transaction_they_are_given(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = tree(root)
    journal = Journal(tmp_path / "journal")
    rescan = lambda p: scan_source(read_source(p))  # noqa: E731
    with journal.transaction("one run") as tx:
        assert apply_fixes([str(root / "train.py")], rescan, False, "unused", tx=tx)
        repair_dataset(str(root / "data/train.jsonl"), tx=tx)
        repair_dataset(str(root / "data/table.csv"), tx=tx)
    (entry,) = journal.transactions()
    assert [Path(s["path"]).name for s in entry["steps"]] == [
        "train.py", "train.fixed.jsonl", "train.jsonl.rejects.jsonl", "table.fixed.csv", "table.csv.rejects.jsonl"]
    journal.undo_last()
    assert tree(root) == before


def test_the_old_call_paths_still_open_a_transaction_each(tmp_path: Path) -> None:
    root = project(tmp_path)
    journal = Journal(tmp_path / "journal")
    rescan = lambda p: scan_source(read_source(p))  # noqa: E731
    apply_fixes([str(root / "train.py")], rescan, False, "scripts", journal=journal)
    repair_dataset(str(root / "data/train.jsonl"), RepairOptions(journal_root=str(tmp_path / "journal")))
    assert [t["status"] for t in journal.transactions()] == ["committed", "committed"]
    apply_fixes([str(root / "train.py")], rescan, False, "nothing left to fix", journal=journal)
    assert len(journal.transactions()) == 2   # a run that changed nothing leaves no entry to undo


# -- an interrupted run ---------------------------------------------------------------------

def test_an_exception_inside_the_run_rolls_it_back_and_leaves_no_open_entry(tmp_path: Path) -> None:
    root = project(tmp_path)
    journal = Journal(tmp_path / "journal")
    earlier = tmp_path / "earlier.txt"
    earlier.write_text("before")
    with journal.transaction("an earlier run") as tx:
        tx.write(earlier, b"after")
    before = tree(root)
    rescan = lambda p: scan_source(read_source(p))  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        with journal.transaction("interrupted") as tx:
            apply_fixes([str(root / "train.py")], rescan, False, "unused", tx=tx)
            repair_dataset(str(root / "data/train.jsonl"), tx=tx)
            raise KeyboardInterrupt
    assert tree(root) == before
    assert [t["status"] for t in journal.transactions()] == ["committed", "rolled back"]
    assert journal.undo_last() == [f"restored {earlier.resolve()}"]   # undo still works
    assert earlier.read_text() == "before"


def test_ctrl_c_during_scan_fix_puts_the_folder_back(tmp_path: Path) -> None:
    root = project(tmp_path)
    with open(root / "data/train.jsonl", "w") as f:   # large enough to be caught mid-repair
        for i in range(60_000):
            f.write('{"instruction": "row %d says hello", "output": "fine",}\n' % i)
    before = tree(root)
    env = {**os.environ, "NO_COLOR": "1"}
    child = subprocess.Popen([sys.executable, "-m", "doctor", "scan", str(root), "--no-env", "--fix"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(TEMP_MARK in p.name and p.stat().st_size > 0 for p in (root / "data").iterdir()):
        assert child.poll() is None, "the run ended before it was interrupted"
        assert time.time() < deadline
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130 and "interrupted" in err, err
    assert tree(root) == before
    listed = run_cli("undo", "--list")
    assert "rolled back" in listed.stdout and "open" not in listed.stdout, listed.stdout


# -- a journal written by an earlier version --------------------------------------------------

def test_a_journal_entry_of_the_old_format_is_still_undone(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    data, created = tmp_path / "d.jsonl", tmp_path / "d.fixed.jsonl"
    data.write_text("original")
    backup = tmp_path / ".unsloth-doctor-backup/20250101T000000-abcd1234/d.jsonl"
    backup.parent.mkdir(parents=True)
    backup.write_text("original")
    data.write_text("in place")
    created.write_text("repaired")
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal/20250101T000000-abcd1234.json").write_text(json.dumps({
        "id": "20250101T000000-abcd1234", "label": f"fix dataset {data}", "created_at": 1.0,
        "status": "committed", "replaced": [{"path": str(data), "backup": str(backup)}],
        "created": [{"path": str(created)}]}))
    with journal.transaction("a new run") as tx:
        tx.write(tmp_path / "new.txt", b"new")
    assert [t["label"] for t in journal.transactions()] == [f"fix dataset {data}", "a new run"]
    journal.undo_last()
    journal.undo_last()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "journal"]
    assert data.read_text() == "original"
    with pytest.raises(UndoError, match="nothing to undo"):
        journal.undo_last()


