"""Nothing unchecked is ever shown as fine: a target the doctor could not examine is ✗ with the
reason and fails the run; a folder with nothing to examine says so; bugs keep what was found."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli


def _plant(tmp_path: Path, code: str) -> dict[str, str]:
    """A bug of ours, planted from outside through a sitecustomize (no hook in the product)."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(code)
    path = os.pathsep.join(filter(None, [str(inject), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")}


def test_a_file_that_cannot_be_read_is_a_located_error_not_a_green_line(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "train.py").symlink_to(project / "gone.py")     # a dangling link: even root can't read it
    (project / "data.jsonl").write_text('{"text": "hi"}\n')
    r = run_cli("scan", str(project), "--no-env", "--format", "json")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    [found] = [f for f in data["findings"] if f["id"] == "DOCTOR-TARGET-UNREADABLE"]
    assert found["location"]["path"].endswith("train.py") and "No such file" in found["title"]
    [line] = [a for a in data["areas"] if a["label"].endswith("train.py")]
    assert line["ran"] is False and "not read" in line["detail"]
    console = run_cli("scan", str(project), "--no-env")
    assert f"[✗] Script {project / 'train.py'}" in console.stdout and "internal error" not in console.stderr
    assert "not checked" in console.stdout


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files of mode 000")
def test_permission_denied_is_a_located_error(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("learning_rate: 2e-4\n")
    config.chmod(0)
    r = run_cli("scan", "--config", str(config), "--format", "json")
    assert r.returncode == 1 and "Permission denied" in r.stdout


def test_a_probe_that_crashes_is_never_green_and_fails_the_run(tmp_path: Path) -> None:
    env = _plant(tmp_path, "import doctor.probes.config as c\n"
                           "def boom(path):\n    raise RecursionError('maximum recursion depth exceeded')\n"
                           "c.scan_config = boom\n")
    (tmp_path / "train.yaml").write_text("learning_rate: 2e-4\n")
    r = run_cli("scan", "--config", str(tmp_path / "train.yaml"), env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"[✗] Config {tmp_path / 'train.yaml'}" in r.stdout and "DOCTOR-PROBE-CRASHED" in r.stdout
    assert "No issues found" not in r.stdout


def test_a_bug_after_the_findings_keeps_them_and_exits_3(tmp_path: Path) -> None:
    env = _plant(tmp_path, "import doctor.scanner as s\n"
                           "def boom(*a, **k):\n    raise RuntimeError('a planted bug')\n"
                           "s.apply_fixes = boom\n")
    data = tmp_path / "d.jsonl"
    data.write_text("{'text': 'single quotes'}\n")
    r = run_cli("scan", "--data", str(data), "--fix", env=env)
    assert r.returncode == 3
    assert "Single-quoted strings" in r.stdout          # what was found before the bug
    assert "internal error" in r.stderr and "Traceback" not in r.stderr


def test_a_folder_with_nothing_to_examine_says_so(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    r = run_cli("scan", str(tmp_path), "--no-env")
    assert r.returncode == 2 and "nothing to examine" in r.stderr and "2 files skipped" in r.stderr
    assert r.stderr.count("\n") == 1
    with_env = run_cli("scan", str(tmp_path), "--format", "json")
    assert with_env.returncode == 1
    assert "DOCTOR-NOTHING-FOUND" in [f["id"] for f in json.loads(with_env.stdout)["findings"]]


def test_skipped_files_are_counted_with_why(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "hi"}\n')
    (tmp_path / "train.fixed.jsonl").write_text('{"text": "hi"}\n')
    (tmp_path / "notes.txt").write_text("hello\n")
    r = run_cli("scan", str(tmp_path), "--no-env")
    assert "Skipped: 1 file (not a kind of file the doctor reads); 1 file (repaired copy or rejects file)." in r.stdout


def test_adapter_folders_and_json_datasets_are_discovered(tmp_path: Path) -> None:
    adapter = tmp_path / "outputs" / "lora"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 16}')
    (tmp_path / "alpaca.json").write_text('[{"instruction": "a", "output": "b"}]')
    data = json.loads(run_cli("scan", str(tmp_path), "--no-env", "--format", "json").stdout)
    labels = [a["label"] for a in data["areas"]]
    assert any(str(adapter) in label for label in labels) and any("alpaca.json" in label for label in labels)


def test_unreadable_log_and_unwritable_output_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    r = run_cli("scan", "--no-env", "--data", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "a-file" / "r.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "internal error" not in r.stderr
    log = tmp_path / "log.txt"
    log.symlink_to(tmp_path / "missing-log")
    r = run_cli("explain", str(log))
    assert r.returncode == 2 and "internal error" not in r.stderr
