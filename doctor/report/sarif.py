"""SARIF 2.1.0 for code scanning (GitHub shows results inline at their file and line).

GitHub rejects a whole upload if any result lacks a location, so a finding without a file of
its own (the environment's) is attached to a real file of the scanned project that the scan
chose (`Report.anchor_file`: requirements, pyproject or a training config), at line 1; where
the project has none, it is no result at all and travels in the run's property bag
(`unlocatedFindings`). This module only reads the report; it touches no file.
"""
from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import Any

from doctor.version import __version__
from doctor.findings import Finding
from doctor.results.report import Report

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _inside(path: str, cwd: str) -> bool:
    """A file of the scanned project (under the working folder, and not an installed package's
    file such as a METADATA in a virtualenv there): one code scanning can show."""
    rel = os.path.relpath(os.path.normpath(os.path.join(cwd, path)), cwd)
    parts = PurePath(rel).parts
    return not rel.startswith("..") and not {"site-packages", "dist-packages"} & set(parts)


def _uri(path: str, cwd: str) -> str:
    """Relative to the working folder when inside it (how code scanning matches files)."""
    absolute = os.path.normpath(os.path.join(cwd, path))
    rel = os.path.relpath(absolute, cwd)
    if not rel.startswith(".."):
        return PurePath(rel).as_posix()
    return PurePath(absolute).as_uri()


def _rule(f: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f.id,
        "name": "".join(part.capitalize() for part in f.id.lower().split("-")),
        "shortDescription": {"text": f.title},
        "fullDescription": {"text": f.message},
        "defaultConfiguration": {"level": _LEVEL[f.severity.value]},
        # tags are a set in SARIF (uniqueItems): a category named like its area is one tag
        "properties": {"category": f.category, "area": f.area, "tags": list(dict.fromkeys((f.category, f.area)))},
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


def render_sarif(report: Report, cwd: str | None = None) -> str:
    cwd = cwd or os.getcwd()
    rules: dict[str, int] = {}
    rule_list: list[dict[str, Any]] = []
    results = []
    unlocated = []
    for f in report.findings:
        location = f.location if f.location and _inside(f.location.path, cwd) else None
        path = location.path if location else report.anchor_file
        if path is None:
            unlocated.append({"ruleId": f.id, "level": _LEVEL[f.severity.value], "area": f.area,
                              "message": {"text": f"{f.title}: {f.message}"}})
            continue
        if f.id not in rules:
            rules[f.id] = len(rule_list)
            rule_list.append(_rule(f))
        region: dict[str, int] = {"startLine": max(1, (location.line if location and location.line else 1))}
        if location and location.column:
            region["startColumn"] = max(1, location.column)
        text = f.message
        if not location:   # the environment's: say what it is about, and where it really is
            text = f"[{f.area}] {f.title}: {f.message}" + (f" ({f.location})" if f.location else "")
        results.append({
            "ruleId": f.id,
            "ruleIndex": rules[f.id],
            "level": _LEVEL[f.severity.value],
            "message": {"text": text},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(path, cwd)},
                "region": region,
            }}],
            "properties": {"category": f.category, **({"confidence": f.confidence} if f.confidence is not None else {})},
        })
    properties = _run_properties(report)
    if unlocated:
        properties.setdefault("properties", {})["unlocatedFindings"] = unlocated
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
            "originalUriBaseIds": {"SRCROOT": {"uri": PurePath(os.path.abspath(cwd)).as_uri() + "/"}},
            **properties,
        }],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"
