"""JSON output with a versioned schema (`REPORT_SCHEMA`, printed by `kb schema --report`).

Bump SCHEMA_VERSION on any change a consumer would notice; additions of optional keys
keep the major number.
"""
from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Any

from doctor import __version__
from doctor.findings import Finding
from doctor.report.model import Report

SCHEMA_VERSION = "1.0"


def finding_to_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.id, "title": f.title, "severity": f.severity.value, "category": f.category,
        "area": f.area, "message": f.message,
        "location": dataclasses.asdict(f.location) if f.location else None,
        "evidence": [_plain(dataclasses.asdict(e)) for e in f.evidence],
        "fixes": [{"text": x.text, "safety": x.safety.value, "kind": x.kind, "command": x.command,
                   "edits": [e.path for e in x.edits]} for x in f.fixes],
        "refs": list(f.refs),
    }
    if f.confidence is not None:
        out["confidence"] = f.confidence
    if f.myth:
        out["myth"] = f.myth
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "unsloth-doctor", "version": __version__},
        "command": report.command,
        "targets": report.targets,
        "summary": report.counts(),
        "areas": [dataclasses.asdict(a) for a in report.areas],
        "findings": [finding_to_dict(f) for f in report.findings],
        "facts": _plain(report.facts),
        **{k: _plain(v) for k, v in report.sections.items()},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"


_SEVERITY = {"enum": ["error", "warning", "info"]}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://unsloth-doctor.dev/schema/report-{SCHEMA_VERSION}.json",
    "title": "unsloth-doctor report",
    "type": "object",
    "required": ["schema_version", "tool", "command", "summary", "findings"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "tool": {"type": "object", "required": ["name", "version"]},
        "command": {"enum": ["scan", "explain", "run", "smoke"]},
        "targets": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": "object", "required": ["error", "warning", "info"],
                    "additionalProperties": {"type": "integer"}},
        "areas": {"type": "array", "items": {"type": "object", "required": ["area", "label"]}},
        "facts": {"type": "object"},
        "findings": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "title", "severity", "category", "area", "message", "fixes", "refs"],
            "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "severity": _SEVERITY,
                "category": {"type": "string"}, "area": {"type": "string"}, "message": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "location": {"type": ["object", "null"], "required": ["path"],
                             "properties": {"path": {"type": "string"}, "line": {"type": ["integer", "null"]},
                                            "column": {"type": ["integer", "null"]}}},
                "evidence": {"type": "array"},
                "fixes": {"type": "array", "items": {"type": "object", "required": ["text", "safety"],
                                                     "properties": {"safety": {"enum": ["safe", "unsafe", "manual"]}}}},
                "refs": {"type": "array", "items": {"type": "string"}},
                "myth": {"type": "string"},
            },
        }},
        "explain": {"$ref": "#/$defs/explain"},
        "smoke": {"type": "object"},
    },
}


def report_schema() -> dict[str, Any]:
    """The published report schema, with explain's own section schema inlined."""
    from doctor.explain.schema import EXPLAIN_SCHEMA

    explain = {k: v for k, v in EXPLAIN_SCHEMA.items() if k not in ("$schema", "$id")}
    return {**REPORT_SCHEMA, "$defs": {"explain": explain}}
