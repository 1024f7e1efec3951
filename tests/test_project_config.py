"""Project configuration, per-line suppressions and the baseline, as a user meets them: real
files in tmp_path, the real CLI in a child process."""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import run_cli

HIGH_LR = ("from unsloth import FastLanguageModel\nfrom trl import SFTTrainer, SFTConfig\n"
           "args = SFTConfig(learning_rate=1e-2, output_dir='out'){comment}\n")


def _project(tmp_path: Path, comment: str = "") -> Path:
    (tmp_path / "train.py").write_text(HIGH_LR.format(comment=comment))
    return tmp_path


def _ids(proc) -> list[str]:
    return [f["id"] for f in json.loads(proc.stdout)["findings"]]


def test_scan_in_a_project_folder_checks_the_targets_its_configuration_names(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "other.py").write_text(HIGH_LR.format(comment=""))
    (tmp_path / ".unsloth-doctor.toml").write_text('scripts = ["train.py"]\n')
    proc = run_cli("scan", "--format", "json", "--fail-on", "warning", cwd=tmp_path)
    report = json.loads(proc.stdout)
    assert [f["location"]["path"] for f in report["findings"]] == ["train.py"], proc.stderr
    assert proc.returncode == 1


def test_ignore_and_severity_in_pyproject(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.unsloth-doctor]\n'
                                             'scripts = ["train.py"]\nseverity = {SCRIPT-LR = "info"}\n')
    proc = run_cli("scan", "--format", "json", "--fail-on", "warning", cwd=tmp_path)
    assert [(f["id"], f["severity"]) for f in json.loads(proc.stdout)["findings"]] == [("SCRIPT-LR-TOO-HIGH", "info")]
    assert proc.returncode == 0
    (tmp_path / "pyproject.toml").write_text('[tool.unsloth-doctor]\nignore = ["SCRIPT-LR"]\n')
    proc = run_cli("scan", "--no-env", "--format", "json", cwd=tmp_path)
    assert "SCRIPT-LR-TOO-HIGH" not in _ids(proc) and proc.returncode == 0, proc.stdout + proc.stderr


def test_the_configuration_is_found_from_the_scanned_folder_and_select_keeps_only_its_rules(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj") if (tmp_path / "proj").mkdir() is None else None
    (project / ".unsloth-doctor.toml").write_text('select = ["DATA"]\n')
    proc = run_cli("scan", str(project), "--no-env", "--format", "json", cwd=tmp_path)
    assert _ids(proc) == [] and proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_cli("scan", str(project), "--no-env", "--no-config", "--format", "json", cwd=tmp_path)
    assert _ids(proc) == ["SCRIPT-LR-TOO-HIGH"]


def test_an_unknown_key_is_a_warning_at_its_line(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.other]\nignroe = 1\n\n[tool.unsloth-doctor]\n'
                                             'scripts = ["train.py"]\nignroe = ["SCRIPT-LR"]\n')
    proc = run_cli("scan", "--format", "json", cwd=tmp_path)
    found = {f["id"]: f for f in json.loads(proc.stdout)["findings"]}
    unknown = found["DOCTOR-CONFIG-UNKNOWN-KEY"]
    assert unknown["severity"] == "warning" and "ignroe" in unknown["title"]
    assert unknown["location"]["path"].endswith("pyproject.toml") and unknown["location"]["line"] == 6
    assert "SCRIPT-LR-TOO-HIGH" in found   # the misspelt ignore did nothing, and that is said


def test_a_wrong_value_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / ".unsloth-doctor.toml").write_text('ignore = "SCRIPT-LR"\n')
    proc = run_cli("scan", "--no-env", cwd=tmp_path)
    assert proc.returncode == 2 and ".unsloth-doctor.toml: ignore must be a list" in proc.stderr


def test_extra_knowledge_folders_from_the_cli_and_the_configuration_are_validated(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yaml").write_text("- id: MY-RULE\n  title: no severity\n")
    proc = run_cli("scan", ".", "--no-env", "--no-config", "--kb", "rules", cwd=tmp_path)
    assert proc.returncode == 3 and "bad.yaml" in proc.stderr
    (tmp_path / ".unsloth-doctor.toml").write_text('kb = ["rules"]\n')
    proc = run_cli("scan", ".", "--no-env", cwd=tmp_path)
    assert proc.returncode == 3 and "bad.yaml" in proc.stderr
    proc = run_cli("scan", ".", "--no-env", "--kb", "nosuch", "--no-config", cwd=tmp_path)
    assert proc.returncode == 2 and "nosuch" in proc.stderr


def test_a_comment_on_the_line_silences_that_rule_only(tmp_path: Path) -> None:
    _project(tmp_path, "  # unsloth-doctor: ignore[SCRIPT-LR-TOO-HIGH]")
    proc = run_cli("scan", "train.py", "--no-env", "--format", "json", cwd=tmp_path)
    assert _ids(proc) == [] and proc.returncode == 0
    _project(tmp_path, "  # unsloth-doctor: ignore[DATA-X]")
    assert _ids(run_cli("scan", "train.py", "--no-env", "--format", "json", cwd=tmp_path)) == ["SCRIPT-LR-TOO-HIGH"]
    _project(tmp_path, "  # unsloth-doctor: ignore")
    proc = run_cli("scan", "train.py", "--no-env", cwd=tmp_path)
    assert proc.returncode == 0 and "silenced" in proc.stdout


def test_a_baseline_keeps_ci_failing_only_on_new_findings(tmp_path: Path) -> None:
    _project(tmp_path)
    proc = run_cli("baseline", ".", "--no-env", cwd=tmp_path)
    assert proc.returncode == 0 and "Wrote 1 finding to" in proc.stdout, proc.stderr
    baseline = json.loads((tmp_path / ".unsloth-doctor-baseline.json").read_text())
    assert [(e["id"], e["path"]) for e in baseline["findings"]] == [("SCRIPT-LR-TOO-HIGH", "train.py")]
    # lines moved: still the same finding
    (tmp_path / "train.py").write_text("# a new first line\n" + (tmp_path / "train.py").read_text())
    proc = run_cli("scan", ".", "--no-env", "--baseline", ".unsloth-doctor-baseline.json", cwd=tmp_path)
    assert proc.returncode == 0 and "1 finding already in the baseline" in proc.stdout, proc.stdout
    # a new copy of the mistake is new
    (tmp_path / "train2.py").write_text(HIGH_LR.format(comment=""))
    (tmp_path / ".unsloth-doctor.toml").write_text('baseline = ".unsloth-doctor-baseline.json"\n')
    proc = run_cli("scan", ".", "--no-env", "--format", "json", "--fail-on", "warning", cwd=tmp_path)
    assert [f["location"]["path"] for f in json.loads(proc.stdout)["findings"]] == ["train2.py"]
    assert proc.returncode == 1


def test_a_baseline_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "b.json").write_text("[]")
    proc = run_cli("scan", ".", "--no-env", "--baseline", "b.json", cwd=tmp_path)
    assert proc.returncode == 2 and "not an unsloth-doctor baseline" in proc.stderr


def test_the_status_line_counts_the_findings_shown_after_suppressions(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        "from trl import SFTConfig\n"
        "a = SFTConfig(learning_rate=1e-2, output_dir='out')  # unsloth-doctor: ignore[SCRIPT-LR]\n"
        "b = SFTConfig(learning_rate=2e-2, output_dir='out')\n"
        "c = SFTConfig(learning_rate=3e-2, output_dir='out')\n")
    proc = run_cli("scan", "train.py", "--no-env", cwd=tmp_path)
    assert "Script train.py (2 findings)" in proc.stdout and "1 finding silenced" in proc.stdout, proc.stdout
    assert "0 errors, 2 warnings" in proc.stdout
    proc = run_cli("scan", "train.py", "--no-env", "--ignore", "SCRIPT-LR", cwd=tmp_path)
    assert "[✓] 1 script: nothing found" in proc.stdout and "No issues found" in proc.stdout, proc.stdout
