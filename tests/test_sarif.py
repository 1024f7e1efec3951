"""SARIF that code scanning accepts: valid against the official schema (unique tags), every
result at a real file of the project, environment findings without one carried in the run."""
from __future__ import annotations

import json
from pathlib import Path

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
