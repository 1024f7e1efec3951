"""Conditions, findings with evidence, and text ranking."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from doctor.engine import evaluate, fill, finding_from_match, findings_from_observations, match_text
from doctor.facts import Facts
from doctor.findings import Location, Observation, Severity
from doctor.kb import load_knowledge
from doctor.kb.conditions import evaluate_condition

F = {"torch.cuda_build": "12.8", "nvml.driver_cuda": "12.2", "gpu.0.capability": 7.5,
     "gpu.1.capability": 8.6, "pkg.trl.version": "1.16.0", "names": ["a", "b"]}


@pytest.mark.parametrize("cond, expected", [
    ({"fact": "nvml.driver_cuda", "version_lt": {"fact": "torch.cuda_build"}}, True),
    ({"fact": "nvml.driver_cuda", "version_ge": "12.2"}, True),
    ({"fact": "pkg.trl.version", "version_in": ">=0.18.2,<=1.15.0,!=0.19.0"}, False),
    ({"fact": "pkg.trl.version", "version_not_in": ">=0.18.2,<=1.15.0"}, True),
    ({"fact": "gpu.*.capability", "lt": 8.0}, True),          # any GPU
    ({"not": {"fact": "gpu.*.capability", "ge": 7.0}}, False),
    ({"fact": "names", "contains": "b"}, True),
    ({"fact": "torch.cuda_build", "matches": "^12\\."}, True),
    ({"fact": "missing", "present": False}, True),
    ({"fact": "missing", "eq": 1}, None),                     # unknown, not false
    ({"all": [{"fact": "missing", "eq": 1}, {"fact": "gpu.0.capability", "lt": 7}]}, False),
    ({"any": [{"fact": "missing", "eq": 1}, {"fact": "gpu.0.capability", "lt": 8}]}, True),
    ({"any": [{"fact": "missing", "eq": 1}, {"fact": "gpu.0.capability", "lt": 7}]}, None),
    ({"fact": "torch.cuda_build", "in": ["12.6", "12.8"]}, True),
])
def test_conditions(cond: dict, expected: bool | None) -> None:
    assert evaluate_condition(cond, F) is expected


def test_fill_uses_first_source_and_marks_unknown() -> None:
    assert fill("torch {torch.cuda_build}, gpu {x}", {"x": 7.0}, F) == "torch 12.8, gpu 7.0"
    assert fill("{nope}", F) == "(unknown)"


KB_TEXT = textwrap.dedent("""\
    - id: ENV-T-DRIVER
      title: Driver too old
      severity: error
      category: cuda-torch-mismatch
      area: env
      when: {fact: nvml.driver_cuda, version_lt: {fact: torch.cuda_build}}
      explain: torch {torch.cuda_build} vs driver {nvml.driver_cuda}
      fixes: [{text: "Install a torch for CUDA {nvml.driver_cuda}", command: "pip install torch", safety: manual}]
      refs: [unsloth/_gpu_init.py:209]
      examples: {match: [{facts: {torch.cuda_build: "12.8", nvml.driver_cuda: "12.2"}}]}
    - id: RT-T-GENERIC
      title: Some CUDA error
      severity: error
      category: kernel-launch
      area: runtime
      when: {fact: gpu.0.capability, lt: 8.0}
      symptoms: [{pattern: "CUDA error", weight: 0.3}]
      explain: a generic CUDA failure
      refs: [https://github.com/pytorch/pytorch]
      examples: {match: ["RuntimeError: CUDA error: x"]}
    - id: RT-T-SPECIFIC
      title: Invalid configuration argument
      severity: error
      category: kernel-launch
      area: runtime
      symptoms:
        - {pattern: "CUDA error: invalid configuration argument", weight: 0.9}
        - {pattern: "CUDA_LAUNCH_BLOCKING", weight: 0.2}
        - {pattern: "Tried to allocate ([0-9.]+ [GM]iB)", weight: 0.4, capture: [size]}
      explain: "kernel launch; asked {size}"
      refs: [unsloth/models/rl.py:4302]
      examples: {match: ["CUDA error: invalid configuration argument"]}
    - id: DATA-T-QUOTES
      title: Single quotes
      severity: error
      category: dataset-format
      area: dataset
      observed: true
      explain: line {line} uses single quotes
      refs: [https://unsloth.ai/docs/basics/datasets-guide]
      examples: {match: [{probe: dataset.jsonl, input: "{'a': 1}"}]}
""")


@pytest.fixture()
def kb(tmp_path: Path):
    p = tmp_path / "k.yaml"
    p.write_text(KB_TEXT)
    return load_knowledge([p])


def test_scan_fires_when_entries_with_fact_evidence(kb) -> None:
    facts = Facts(F, {"nvml.driver_cuda": "nvml", "torch.cuda_build": "torch/version.py"})
    findings = evaluate(kb, facts)
    # the runtime entry's condition only correlates explain candidates; it never fires in scan
    assert [f.id for f in findings] == ["ENV-T-DRIVER"]
    f = findings[0]
    assert f.message == "torch 12.8 vs driver 12.2"
    assert {e.name: e.source for e in f.evidence} == {"nvml.driver_cuda": "nvml", "torch.cuda_build": "torch/version.py"}
    assert f.fixes[0].text == "Install a torch for CUDA 12.2" and f.fixes[0].command == "pip install torch"


def test_observations_become_located_findings(kb) -> None:
    obs = Observation("DATA-T-QUOTES", Location("d.jsonl", 4, 2), {"line": 4})
    (f,) = findings_from_observations(kb, [obs])
    assert f.location == Location("d.jsonl", 4, 2) and f.message == "line 4 uses single quotes"
    with pytest.raises(KeyError):
        findings_from_observations(kb, [Observation("NO-SUCH-ID")])


def test_specific_symptom_outranks_generic_and_captures(kb) -> None:
    log = "\n".join([
        "Traceback (most recent call last):",
        "RuntimeError: CUDA error: invalid configuration argument",
        "CUDA kernel errors might be asynchronously reported; set CUDA_LAUNCH_BLOCKING=1",
        "Tried to allocate 2.00 GiB",
    ])
    ranked = match_text(kb, log)
    assert [m.entry.id for m in ranked] == ["RT-T-SPECIFIC", "RT-T-GENERIC"]
    top = ranked[0]
    assert top.score == pytest.approx(1.0)  # 0.9 + two more distinct symptoms
    assert top.lines[0] == (2, "RuntimeError: CUDA error: invalid configuration argument")
    finding = finding_from_match(top)
    assert finding.message == "kernel launch; asked 2.00 GiB" and finding.confidence == 1.0
    assert finding.evidence[0].line == 2


def test_no_match_is_empty(kb) -> None:
    assert match_text(kb, "all good\nloss 1.23") == []


def test_ties_break_toward_the_later_error(kb, tmp_path: Path) -> None:
    ranked = match_text(kb, "CUDA error: one\n" * 3)
    assert ranked[0].last_line == 3


def test_severity_order() -> None:
    assert Severity.ERROR.rank > Severity.WARNING.rank > Severity.INFO.rank
