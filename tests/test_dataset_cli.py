"""The dataset doctor as a user runs it: `unsloth-doctor scan --data ...` in a real process."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers.cli import ROOT, run_cli


def test_scan_reports_each_problem_with_its_location_and_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    shutil.copy(ROOT / "fixtures/demo/data/train.jsonl", data)
    done = run_cli("scan", "--data", str(data), "--no-env", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    located = {(f["id"], f["location"]["line"]) for f in report["findings"]}
    assert {("DATA-JSON-SINGLE-QUOTES", 5), ("DATA-JSON-TRAILING-COMMA", 10), ("DATA-FIELD-EMPTY", 14),
            ("DATA-ROW-DUPLICATE", 19), ("DATA-SCHEMA-SHAREGPT", 23)} <= located
    single = next(f for f in report["findings"] if f["id"] == "DATA-JSON-SINGLE-QUOTES")
    assert single["evidence"][0]["value"].startswith("{'instruction'")


def test_scan_fix_writes_the_copy_and_a_clean_file_passes(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    shutil.copy(ROOT / "fixtures/demo/data/train.jsonl", data)
    before = data.read_bytes()
    done = run_cli("scan", "--data", str(data), "--no-env", "--fix")
    assert "28 rows read" in done.stdout, done.stdout + done.stderr
    assert data.read_bytes() == before
    fixed = tmp_path / "train.fixed.jsonl"
    again = run_cli("scan", "--data", str(fixed), "--no-env", "--format", "json")
    ids = {f["id"] for f in json.loads(again.stdout)["findings"]}
    assert not {i for i in ids if i.startswith("DATA-JSON")}


def test_a_broken_tokenizer_folder_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello"}\n')
    (tmp_path / "tok").mkdir()
    done = run_cli("scan", "--data", str(data), "--no-env", "--tokenizer", str(tmp_path / "tok"),
                   "--max-seq-length", "64")
    assert "Traceback" not in done.stdout + done.stderr
    assert "DATA-TOKENIZER-UNUSABLE" in done.stdout
