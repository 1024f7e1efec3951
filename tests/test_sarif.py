"""SARIF that code scanning accepts: valid against the official schema (unique tags), every
result at a real file of the project, environment findings without one carried in the run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from doctor.findings import Finding, Location, Severity
from doctor.report.sarif import render_sarif
from doctor.results.report import Report
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.sarif import validate_sarif


def _finding(fid: str, category: str, area: str, location: Location | None = None) -> Finding:
    return Finding(fid, "A title", Severity.ERROR, category, area, "A message.", location=location,
                   refs=("https://example.org",))


def test_a_category_named_like_its_area_is_one_tag(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    report = Report(command="scan", findings=[_finding("DATA-X", "dataset", "dataset", Location(str(data), 1, 1))])
    doc = json.loads(render_sarif(report, cwd=str(tmp_path)))
    validate_sarif(doc)
    assert doc["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["tags"] == ["dataset"]


def test_environment_findings_without_a_project_file_are_carried_in_the_run(tmp_path: Path) -> None:
    report = Report(command="scan", findings=[_finding("ENV-X", "no-gpu", "env")], anchor_file=None)
    doc = json.loads(render_sarif(report, cwd=str(tmp_path)))
    validate_sarif(doc)
    run = doc["runs"][0]
    assert run["results"] == []
    assert [f["ruleId"] for f in run["properties"]["unlocatedFindings"]] == ["ENV-X"]


def _results_point_at_real_files(doc: dict, cwd: Path) -> None:
    for result in doc["runs"][0]["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert (cwd / uri).is_file(), uri


def test_the_demo_scan_is_valid_sarif_at_real_files() -> None:
    r = run_cli("scan", "fixtures/demo", "--format", "sarif", cwd=ROOT)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    validate_sarif(doc)
    _results_point_at_real_files(doc, ROOT)
    env_results = [x for x in doc["runs"][0]["results"] if x["ruleId"].startswith("ENV-")]
    for x in env_results:   # the demo has no requirements file: its training config carries them
        assert x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fixtures/demo/config.yaml"


def test_environment_findings_never_land_on_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "hi"}\n')
    r = run_cli("scan", "--data", str(tmp_path / "train.jsonl"), "--env", "--format", "sarif", cwd=tmp_path)
    doc = json.loads(r.stdout)
    validate_sarif(doc)
    _results_point_at_real_files(doc, tmp_path)
    for x in doc["runs"][0]["results"]:
        uri = x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not (x["ruleId"].startswith(("ENV-", "DOCTOR-")) and uri.endswith(".jsonl")), x


def _notebook(path: Path, cells: list[str]) -> None:
    """A notebook laid out as Jupyter saves it (indent 1, each source line its own string)."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                     "source": [line for line in cell.splitlines(keepends=True)]} for cell in cells],
          "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n")


def test_notebook_results_sit_at_the_raw_ipynb_line(tmp_path: Path) -> None:
    _notebook(tmp_path / "train.ipynb", [
        "%pip install unsloth\n",
        "from unsloth import FastLanguageModel\nimport torch\n",
        "from trl import SFTConfig\nargs = SFTConfig(\n    output_dir='out',\n    learning_rate=1e-2,\n)\n"])
    r = run_cli("scan", "train.ipynb", "--format", "sarif", cwd=tmp_path)   # run_cli validates it
    doc = json.loads(r.stdout)
    (result,) = [x for x in doc["runs"][0]["results"] if x["ruleId"] == "SCRIPT-LR-TOO-HIGH"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    raw = (tmp_path / "train.ipynb").read_text().splitlines()[line - 1]
    assert "learning_rate=1e-2" in raw


def unsloth_without_torch(folder: Path) -> Path:
    """A virtualenv where unsloth is installed as `pip install --no-deps unsloth` leaves it
    (its dist-info, no torch, no unsloth_zoo): an environment with findings on any machine."""
    import subprocess
    import venv

    venv.create(folder, with_pip=False)
    python = next(p for p in (folder / "bin/python", folder / "Scripts/python.exe") if p.exists())
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "unsloth").mkdir(parents=True)
    (purelib / "unsloth/__init__.py").write_text("")
    info = purelib / "unsloth-2026.10.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unsloth\nVersion: 2026.10.9\nRequires-Dist: torch>=2.4.0\n")
    return python


@pytest.mark.parametrize("anchor", ["requirements.txt", "pyproject.toml"])
def test_environment_findings_are_attached_to_the_projects_own_file(tmp_path: Path, anchor: str) -> None:
    (tmp_path / anchor).write_text("unsloth\n" if anchor.endswith(".txt") else "[project]\nname = 'x'\n")
    (tmp_path / "train.py").write_text("from unsloth import FastLanguageModel\n")
    bare = unsloth_without_torch(tmp_path / ".venv")
    r = run_cli("scan", ".", "--env", "--python", str(bare), "--format", "sarif", "--output", "doctor.sarif",
                cwd=tmp_path)
    doc = json.loads((tmp_path / "doctor.sarif").read_text())
    env = [x for x in doc["runs"][0]["results"] if x["ruleId"].startswith("ENV-")]
    assert "ENV-TORCH-MISSING" in {x["ruleId"] for x in env}, r.stdout
    for x in env:
        assert x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == anchor


def test_every_test_that_writes_sarif_checks_it() -> None:
    """run_cli checks each `--format sarif` it runs; a test rendering SARIF in process must
    validate it itself."""
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if "render_sarif(" in text:
            assert "validate_sarif(" in text, f"{path.name} renders SARIF without validate_sarif"
        if re.search(r"""["']sarif["']""", text) and "subprocess.run(" in text:
            assert "run_cli(" in text, f"{path.name} may run the doctor for SARIF without run_cli"
