"""The doors CI uses: GitHub annotations, the composite action, and the pre-commit hooks run
for real with `pre-commit try-repo` on a temporary git repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import ROOT, run_cli

HIGH_LR = "from trl import SFTConfig\nargs = SFTConfig(learning_rate=1e-2, output_dir='out')\n"


def test_github_annotations_are_printed_with_the_console_report_only(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(HIGH_LR)
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": \n')
    proc = run_cli("scan", ".", "--no-env", cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    assert "::warning file=train.py,line=2,col=" in "\n".join(lines)
    assert any(line.startswith("::error file=bad.jsonl,line=2,col=10,title=DATA-JSON-UNTERMINATED::") for line in lines)
    proc = run_cli("scan", ".", "--no-env", "--format", "json", cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    json.loads(proc.stdout)   # nothing but the JSON document
    proc = run_cli("scan", ".", "--no-env", "--format", "sarif", cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert "::error" not in proc.stdout
    proc = run_cli("scan", ".", "--no-env", cwd=tmp_path, env={"GITHUB_ACTIONS": "false"})
    assert "::warning" not in proc.stdout


def test_the_composite_action_installs_itself_and_uploads_sarif() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {"path", "fail-on", "python-version"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite"
    assert steps[0]["uses"].startswith("actions/setup-python@")
    assert any("GITHUB_ACTION_PATH" in s.get("run", "") for s in steps)
    assert any("--format sarif --output doctor.sarif" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif@") for s in steps)


def _hooks() -> dict[str, dict]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_the_hooks_claim_datasets_configs_and_scripts() -> None:
    import re

    hooks = _hooks()
    assert all(h["entry"] == "unsloth-doctor scan --no-env" for h in hooks.values())
    data = re.compile(hooks["unsloth-doctor-data"]["files"])
    assert all(data.search(n) for n in ("a.jsonl", "b.json", "c.csv", "d.tsv", "e.parquet"))
    assert not data.search("train.py")
    assert re.compile(hooks["unsloth-doctor-configs"]["files"]).search("qlora.yml")
    assert set(hooks["unsloth-doctor-scripts"]["types_or"]) == {"python", "jupyter"}


def _pre_commit() -> str:
    found = shutil.which("pre-commit") or (Path(sys.executable).parent / "pre-commit")
    if not Path(found).exists():
        pytest.skip("pre-commit is not installed (pip install pre-commit)")
    return str(found)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.mark.slow
def test_the_hooks_run_for_real_with_pre_commit_try_repo(tmp_path: Path) -> None:
    """Installs the doctor from this checkout into pre-commit's own virtualenv (pip needs its
    index for the dependencies), then runs each hook on a real repository."""
    pre_commit = _pre_commit()
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "train.py").write_text(HIGH_LR)
    (repo / "bad.jsonl").write_text('{"text": "a"}\n{"text": \n')
    (repo / "qlora.yml").write_text("base_model: unsloth/llama-3-8b\nlearning_rate: 0.01\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)   # the hook runs the doctor it installed, not this checkout's

    def hook(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([pre_commit, "try-repo", str(ROOT), name, "--all-files"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600)

    data = hook("unsloth-doctor-data")
    if data.returncode == 3 and "An error has occurred" in data.stdout + data.stderr:
        pytest.skip(f"pre-commit could not install the hook's environment (offline?): {data.stdout[-300:]}")
    assert data.returncode == 1 and "DATA-JSON-UNTERMINATED" in data.stdout, data.stdout + data.stderr
    assert "train.py" not in data.stdout
    scripts = hook("unsloth-doctor-scripts")
    assert scripts.returncode == 0 and "Passed" in scripts.stdout, scripts.stdout   # a warning only
    (repo / ".unsloth-doctor.toml").write_text('severity = {SCRIPT-LR = "error", CONFIG-LR = "error"}\n')
    scripts = hook("unsloth-doctor-scripts")
    assert scripts.returncode == 1 and "SCRIPT-LR-TOO-HIGH" in scripts.stdout, scripts.stdout
    configs = hook("unsloth-doctor-configs")
    assert configs.returncode == 1 and "CONFIG-LR-TOO-HIGH" in configs.stdout, configs.stdout
