"""SARIF 2.1.0 for code scanning (GitHub shows results inline at their file and line).

GitHub rejects a whole upload if any result lacks a location, so findings about the
environment are attached to a file of the project (`Report.anchor_file`: the requirements or
pyproject file when there is one), at line 1.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from doctor.version import __version__
from doctor.findings import Finding
from doctor.results.report import Report

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_ANCHOR_CANDIDATES = ("requirements.txt", "pyproject.toml", "environment.yml", "setup.py", "setup.cfg")


def default_anchor(roots: list[str]) -> str:
    for root in [*roots, "."]:
        base = Path(root)
        if base.is_file():
            return str(base)
        for name in _ANCHOR_CANDIDATES:
            if (base / name).is_file():
                return str(base / name)
    return "pyproject.toml"


def _uri(path: str) -> str:
    p = Path(path)
    try:
        rel = p.resolve().relative_to(Path.cwd().resolve())
        return rel.as_posix()
    except ValueError:
        return p.resolve().as_uri() if p.is_absolute() else p.as_posix()


def _rule(f: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f.id,
        "name": "".join(part.capitalize() for part in f.id.lower().split("-")),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": f.message},
        "defaultConfiguration": {"level": _LEVEL[f.severity.value]},
        "properties": {"category": f.category, "area": f.area, "tags": [f.category, f.area]},
    }
    if f.refs and f.refs[0].startswith("http"):
        rule["helpUri"] = f.refs[0]
    help_lines = [f.message] + [f"Fix: {x.text}" + (f"\n    $ {x.command}" if x.command else "") for x in f.fixes]
    rule["help"] = {"text": "\n".join(help_lines)}
    return rule


def _run_properties(report: Report) -> dict[str, Any]:
    """Sections without a place in a file (the smoke test's stages and facts) travel in the
    run's property bag, so a passing smoke test is on record too, not only its failures."""
    from doctor.report.jsonout import smoke_to_dict

    return {"properties": {"smoke": smoke_to_dict(report.smoke)}} if report.smoke is not None else {}


def render_sarif(report: Report) -> str:
    rules: dict[str, int] = {}
    rule_list: list[dict[str, Any]] = []
    results = []
    anchor = report.anchor_file or default_anchor(report.targets)
    for f in report.findings:
        if f.id not in rules:
            rules[f.id] = len(rule_list)
            rule_list.append(_rule(f))
        path = f.location.path if f.location else anchor
        region: dict[str, int] = {"startLine": max(1, (f.location.line if f.location and f.location.line else 1))}
        if f.location and f.location.column:
            region["startColumn"] = max(1, f.location.column)
        text = f.message
        if not f.location:
            text = f"[{f.area}] {f.title}: {f.message}"
        results.append({
            "ruleId": f.id,
            "ruleIndex": rules[f.id],
            "level": _LEVEL[f.severity.value],
            "message": {"text": text},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(path)},
                "region": region,
            }}],
            "properties": {"category": f.category, **({"confidence": f.confidence} if f.confidence is not None else {})},
        })
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "unsloth-doctor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://github.com/unsloth-doctor/unsloth-doctor",
                "rules": rule_list,
            }},
            "results": results,
            "originalUriBaseIds": {"SRCROOT": {"uri": Path(os.getcwd()).resolve().as_uri() + "/"}},
            **_run_properties(report),
        }],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"
