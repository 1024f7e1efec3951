"""After --fix: what is left is re-checked on the files as they are now, the repaired copy is
loaded with the reader training uses, and the report says how many were fixed and remain."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from doctor import api
from doctor.fixes.loadcheck import load_like_training

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("pyarrow")


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_remaining_findings_are_those_of_the_repaired_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "train.jsonl",
                '{"instruction": "a", "output": "b"}',
                "{'instruction': 'c', 'output': 'd'}",            # fixed: single quotes
                '{"instruction": "e", "output": "f",}',          # fixed: trailing comma
                '{"instruction": "g", "output": ""}')             # remains: an empty field
    before = api.scan(["train.jsonl"], env=False)
    after = api.scan(["train.jsonl"], env=False, fix=True)
    assert {f.location.path for f in after.findings if f.location} == {"train.fixed.jsonl"}
    assert [f.id for f in after.findings] == ["DATA-FIELD-EMPTY"]
    assert after.findings[0].location.line == 4
    fixed = len(before.findings) - 1
    assert after.notes[0].startswith(f"--fix: {fixed} fixed, 1 remaining")
    assert any("train.fixed.jsonl loads as training reads it (4 rows, 2 columns" in line
               for outcome in after.fixes for line in outcome.lines())


def test_a_copy_that_still_fails_to_load_is_an_error_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "train.jsonl",
                '{"instruction": "a", "output": "b", "score": 1}',
                "{'instruction': 'c', 'output': 'd', 'score': 2}",
                '{"instruction": "e", "output": "f", "score": "high"}')
    report = api.scan(["train.jsonl"], env=False, fix=True)
    found = [f for f in report.findings if f.id == "DATA-REPAIRED-COPY-UNLOADABLE"]
    assert len(found) == 1 and found[0].severity.value == "error"
    assert found[0].location.path == "train.fixed.jsonl" and found[0].location.line == 3
    assert "Column(/score) changed from number to string on line 3" in found[0].message
    assert report.notes[0].startswith("--fix: 1 fixed, 1 remaining")


def test_the_load_check_reads_as_pyarrow_reads_and_counts_lines_across_chunks(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import doctor.fixes.loadcheck as loadcheck

    monkeypatch.setattr(loadcheck, "CHUNK_BYTES", 64)   # many chunks: the line must still be the file's
    rows = [json.dumps({"text": f"row {i}", "n": i}) for i in range(40)] + [json.dumps({"text": "x", "n": "many"})]
    good = write_lines(tmp_path / "good.jsonl", *rows[:40])
    bad = write_lines(tmp_path / "bad.jsonl", *rows)
    assert load_like_training(str(good), "jsonl").ok is True
    check = load_like_training(str(bad), "jsonl")
    assert check.ok is False
    # the last chunk holds only the odd row: the schemas of the chunks do not unify
    assert "n" in check.detail


def test_a_repaired_parquet_copy_is_read_back(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "n": [1, 2]}), path)
    check = load_like_training(str(path), "parquet")
    assert check.ok is True and "2 rows, 2 columns" in check.detail
    path.write_bytes(path.read_bytes()[:-20])   # a truncated footer: pyarrow refuses it
    assert load_like_training(str(path), "parquet").ok is False


def test_the_cli_prints_fixed_and_remaining(tmp_path: Path) -> None:
    write_lines(tmp_path / "train.jsonl", "{'instruction': 'c', 'output': 'd'}", '{"instruction": "g", "output": ""}')
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "train.jsonl", "--fix"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "--fix: 1 fixed, 1 remaining (re-checked on the files as they are now)." in done.stdout
    assert "train.fixed.jsonl:2:" in done.stdout

    import json

    (tmp_path / "train.jsonl").write_text("{'instruction': 'c', 'output': 'd'}\n")
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "train.jsonl", "--fix", "--format", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    summary = json.loads(done.stdout)["summary"]
    assert summary["fixed"] == 1 and summary["error"] + summary["warning"] + summary["info"] == 0
