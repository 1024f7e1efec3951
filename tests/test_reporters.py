"""Every reporter renders the same findings; SARIF validates against the official schema."""
from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from doctor.findings import AreaStatus, Evidence, Finding, Fix, Location, Safety, Severity
from doctor.report.console import assign_findings, render_console
from doctor.report.jsonout import render_json, report_schema
from doctor.report.markdown import render_markdown
from doctor.results.report import Report, exit_code
from doctor.report.redact import redact
from doctor.report.sarif import render_sarif

from tests.helpers.sarif import validate_sarif


def sample_report(tmp_path: Path) -> Report:
    data = tmp_path / "train.jsonl"
    data.write_text("{'a': 1}\n")
    (tmp_path / "requirements.txt").write_text("unsloth\n")
    return Report(
        command="scan",
        areas=[AreaStatus("env", "PyTorch 2.13.0 (CPU build)"), AreaStatus("dataset", f"Dataset {data}", "1 row")],
        findings=[
            Finding("ENV-CPU-TORCH", "CPU-only torch on a GPU host", Severity.ERROR, "cuda-torch-mismatch", "env",
                    "torch 2.13.0+cpu cannot use the RTX 4090.",
                    evidence=(Evidence("fact", "torch.build", "cpu", "torch/version.py"),),
                    fixes=(Fix("Reinstall torch for CUDA 12.8", Safety.MANUAL, "command",
                               "pip install torch --index-url https://download.pytorch.org/whl/cu128"),),
                    refs=("unsloth/_gpu_init.py:209",)),
            Finding("DATA-SINGLE-QUOTES", "Single-quoted JSON", Severity.WARNING, "dataset-format", "dataset",
                    "Line 1 uses single quotes.", location=Location(str(data), 1, 2),
                    fixes=(Fix("Rewrite with double quotes", Safety.SAFE, "dataset"),),
                    refs=("https://unsloth.ai/docs/basics/datasets-guide",)),
            Finding("ENV-NO-GPU", "No GPU", Severity.INFO, "no-gpu", "env", "Unsloth will train on the CPU.",
                    refs=("unsloth/_cpu_init.py:25",)),
        ],
        facts={"torch.build": "cpu"},
        targets=[str(tmp_path)],
        anchor_file=str(tmp_path / "requirements.txt"),
    )


def test_sarif_validates_against_the_official_schema_and_every_result_has_a_location(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sarif = json.loads(render_sarif(sample_report(tmp_path)))
    validate_sarif(sarif)
    results = sarif["runs"][0]["results"]
    assert len(results) == 3
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] and loc["region"]["startLine"] >= 1
    by_rule = {r["ruleId"]: r for r in results}
    data_loc = by_rule["DATA-SINGLE-QUOTES"]["locations"][0]["physicalLocation"]
    assert data_loc["artifactLocation"]["uri"] == "train.jsonl"
    assert data_loc["region"] == {"startLine": 1, "startColumn": 2}
    # environment findings are attached to a file of the project
    env_loc = by_rule["ENV-CPU-TORCH"]["locations"][0]["physicalLocation"]
    assert env_loc["artifactLocation"]["uri"] == "requirements.txt"
    assert by_rule["ENV-NO-GPU"]["level"] == "note"


def test_json_matches_its_published_schema(tmp_path: Path) -> None:
    out = json.loads(render_json(sample_report(tmp_path)))
    jsonschema.Draft202012Validator(report_schema()).validate(out)
    assert out["summary"] == {"error": 1, "warning": 1, "info": 1, "unchecked": 0}
    assert out["findings"][0]["fixes"][0]["command"].startswith("pip install torch")


def test_console_is_plain_in_a_pipe_and_groups_by_area(tmp_path: Path) -> None:
    buf = io.StringIO()
    render_console(sample_report(tmp_path), buf)
    text = buf.getvalue()
    assert "\x1b[" not in text
    assert "[✗] PyTorch 2.13.0 (CPU build)" in text
    assert "[!] Dataset" in text
    assert "$ pip install torch" in text
    assert "Doctor found 1 error, 1 warning, 1 note." in text


@pytest.mark.parametrize("fail_on, code", [("error", 1), ("warning", 1), ("never", 0)])
def test_exit_code_follows_fail_on(tmp_path: Path, fail_on: str, code: int) -> None:
    assert exit_code(sample_report(tmp_path), fail_on) == code


def test_exit_code_zero_when_only_notes(tmp_path: Path) -> None:
    report = sample_report(tmp_path)
    report.findings = [f for f in report.findings if f.severity == Severity.INFO]
    assert exit_code(report, "warning") == 0


# Real-looking secrets: the shapes each service issues (not live credentials).
SECRETS = {
    "hf": "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678",
    "openai": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "github": "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "aws": "AKIAIOSFODNN7EXAMPLE",
}


def test_markdown_redacts_tokens_emails_and_home_paths(tmp_path: Path) -> None:
    report = sample_report(tmp_path)
    report.findings.append(Finding(
        "RT-HUB", "Push failed", Severity.ERROR, "other", "runtime",
        f"push_to_hub(token='{SECRETS['hf']}') failed for jane.doe@example.com in /home/jane/project/train.py "
        f"and C:\\Users\\jane\\train.py; OPENAI_API_KEY={SECRETS['openai']} {SECRETS['github']} {SECRETS['aws']}",
        refs=("https://example.org/issue",)))
    md = render_markdown(report)
    for secret in SECRETS.values():
        assert secret not in md
    assert "jane" not in md
    assert "hf_***REDACTED***" in md and "<email>" in md and "/home/<user>/project" in md


def test_redact_leaves_ordinary_text() -> None:
    text = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 14.75 GiB total capacity)"
    assert redact(text) == text


def smoke_section():  # -> SmokeReport
    from doctor.results.smoke import LoggedWarning, SmokeReport, Stage

    return SmokeReport(
        stages=[Stage("load 16-bit", 1.2, True, "FastLanguageModel, tiny Llama"),
                Stage("train", 0.9, False, "loss is NaN | at step 2")],
        facts={"smoke.device": "cpu", "smoke.attention": "sdpa"},
        warnings=[LoggedWarning(3, "Unsloth should be imported before trl", ["SCRIPT-IMPORT-ORDER"])],
        seconds=5.0)


def test_markdown_and_sarif_carry_the_smoke_test(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = sample_report(tmp_path)
    report.smoke = smoke_section()
    md = render_markdown(report)
    assert "### Smoke test: FAILED" in md
    assert "| train | ❌ | 0.9 | loss is NaN \\| at step 2 |" in md     # a | inside a cell is escaped
    assert "- Device: CPU (Unsloth's CPU fallback)" in md and "- Attention: sdpa" in md
    assert "→ SCRIPT-IMPORT-ORDER" in md
    sarif = json.loads(render_sarif(report))
    validate_sarif(sarif)
    smoke = sarif["runs"][0]["properties"]["smoke"]
    assert smoke["ok"] is False and [s["name"] for s in smoke["stages"]] == ["load 16-bit", "train"]
    assert "properties" not in json.loads(render_sarif(sample_report(tmp_path)))["runs"][0]


def test_each_finding_goes_under_its_own_line_when_an_area_has_several(tmp_path: Path) -> None:
    def finding(fid: str, area: str, severity: Severity, path: str | None = None) -> Finding:
        return Finding(fid, fid, severity, "other", area, "message",
                       location=Location(path, 1) if path else None)

    areas = [AreaStatus("packages", "torch 2.13.0", ids=("ENV-TORCH-",)),
             AreaStatus("packages", "unsloth is not installed"),
             AreaStatus("dataset", "Dataset a.jsonl", path="data/a.jsonl"),
             AreaStatus("dataset", "Dataset b.jsonl", path="data/b.jsonl"),
             AreaStatus("model", "Model out", path="out")]
    findings = [finding("ENV-TORCH-MISSING", "packages", Severity.ERROR),
                finding("ENV-UNSLOTH-NOT-INSTALLED", "packages", Severity.INFO),
                finding("DATA-JSON-SINGLE-QUOTES", "dataset", Severity.ERROR, "./data/a.jsonl"),
                finding("MODEL-PICKLE-WEIGHTS", "model", Severity.WARNING, "out/model.bin"),
                finding("SCRIPT-IMPORT-ORDER", "script", Severity.WARNING, "train.py")]
    per_line, rest = assign_findings(areas, findings)
    assert [[f.id for f in found] for found in per_line] == [
        ["ENV-TORCH-MISSING"], ["ENV-UNSLOTH-NOT-INSTALLED"], ["DATA-JSON-SINGLE-QUOTES"], [],
        ["MODEL-PICKLE-WEIGHTS"]]
    assert [f.id for f in rest["script"]] == ["SCRIPT-IMPORT-ORDER"]
    buf = io.StringIO()
    render_console(Report(command="scan", areas=areas, findings=findings), buf)
    text = buf.getvalue()
    assert "[✗] torch 2.13.0" in text and "[•] unsloth is not installed" in text
    # a clean file is counted, not named
    assert "[✗] Dataset a.jsonl (1 finding)" in text and "[✓] 1 dataset: nothing found" in text
    assert "Dataset b.jsonl" not in text
    # the finding follows its own dataset's line, not the last dataset's
    assert text.index("Dataset a.jsonl") < text.index("DATA-JSON-SINGLE-QUOTES") < text.index("1 dataset")
