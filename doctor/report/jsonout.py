"""JSON output with a versioned schema (`REPORT_SCHEMA`, printed by `kb schema --report`).

Bump SCHEMA_VERSION on any change a consumer would notice; additions of optional keys
keep the major number.
"""
from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Any

from doctor.findings import Finding
from doctor.results.explain import Diagnosis, ExceptionInfo, ExplainResult
from doctor.results.report import FixOutcome, Report
from doctor.results.smoke import SmokeReport
from doctor.version import __version__

# 1.1: "fixes" (what --fix did, one object per input) replaces the notes it used to add;
#      "skipped" (files a folder scan left out, by why); summary.unchecked (targets that could
#      not be examined; they fail the run like errors).
SCHEMA_VERSION = "1.1"


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
        "summary": {**report.counts(), "unchecked": len(report.unchecked),
                    **({"fixed": report.fixed} if report.fixed is not None else {})},
        "areas": [dataclasses.asdict(a) for a in report.areas],
        "findings": [finding_to_dict(f) for f in report.findings],
        "facts": _plain(report.facts),
        **({"explain": explain_to_dict(report.explain)} if report.explain is not None else {}),
        **({"smoke": smoke_to_dict(report.smoke)} if report.smoke is not None else {}),
        **({"fixes": [fix_to_dict(x) for x in report.fixes]} if report.fixes else {}),
        **({"skipped": dict(report.skipped)} if report.skipped else {}),
    }


EXPLAIN_SCHEMA_ID = "unsloth-doctor.explain/1"
SMOKE_SCHEMA_ID = "unsloth-doctor.smoke/1"


def explain_to_dict(result: ExplainResult) -> dict[str, Any]:
    """The "explain" section; its schema is `doctor.report.explain_schema.EXPLAIN_SCHEMA`."""
    log = result.log
    final = log.final
    info = log.oom
    return {
        "schema": EXPLAIN_SCHEMA_ID,
        "matched": result.matched,
        "final_error": None if final is None else {
            "type": final.type, "message": final.message, "line": final.log_line,
            "rank": final.rank, "truncated": final.truncated},
        "chain": [_exception_dict(e) for e in (log.primary.exceptions if log.primary else ())],
        "key_frames": [f._asdict() for f in result.key_frames],
        "diagnoses": [diagnosis_to_dict(d) for d in result.diagnoses],
        "unmatched": None if result.unmatched is None else {
            "category": result.unmatched.category, "reason": result.unmatched.reason,
            "collect": list(result.unmatched.collect)},
        "oom": None if info is None else {
            **info._asdict(), "fragmented": info.fragmented, "summary": result.oom_summary,
            "advice": list(result.oom_advice)},
        "build_errors": [b._asdict() for b in log.build_errors],
        "death": log.death._asdict() if log.death else None,
        "run": log.run._asdict() if log.run is not None and not log.run.empty else None,
        "rank_failures": [r._asdict() for r in log.rank_failures],
        "env_checked": result.env_checked,
        "lines": {"total": log.total_lines, "kept": len(log.lines), "dropped": log.dropped_lines},
        "notes": list(result.notes),
        **({"raise_sites": [r._asdict() for r in result.raise_sites]} if result.raise_sites else {}),
    }


def _exception_dict(e: ExceptionInfo) -> dict[str, Any]:
    return {"type": e.type, "message": e.message, "line": e.log_line, "link": e.link,
            "rank": e.rank, "truncated": e.truncated}


def diagnosis_to_dict(d: Diagnosis) -> dict[str, Any]:
    """A finding plus how explain weighed it; keys that say nothing are left out."""
    out = finding_to_dict(d.finding)
    out["on_final_error"] = d.on_final_error
    optional = {"env": d.env, "env_note": d.env_note, "oom_summary": d.oom_summary,
                "alternatives": list(d.alternatives), "explains": list(d.explains),
                "caused_by": list(d.caused_by)}
    out.update({k: v for k, v in optional.items() if v})
    return out


def smoke_to_dict(smoke: SmokeReport) -> dict[str, Any]:
    return {
        "schema": SMOKE_SCHEMA_ID,
        "ok": smoke.ok,
        "seconds": round(smoke.seconds, 3),
        "refused": smoke.refused,
        "timed_out": smoke.timed_out,
        "stages": [dataclasses.asdict(s) for s in smoke.stages],
        "facts": _plain(smoke.facts),
        "warnings": [dataclasses.asdict(w) for w in smoke.warnings],
        "diagnoses": [{"id": f.id, "title": f.title, "message": f.message, "confidence": f.confidence,
                       "fixes": [x.text for x in f.fixes]} for f in smoke.diagnoses],
        "observations": [{"id": o.entry_id, "values": _plain(o.values)} for o in smoke.observations],
        "notes": list(smoke.notes),
    }


def fix_to_dict(outcome: FixOutcome) -> dict[str, Any]:
    return {"path": outcome.path, "applied": outcome.applied, "summary": outcome.summary,
            "entry_id": outcome.entry_id, "details": list(outcome.details), "outputs": list(outcome.outputs)}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
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
                                            "column": {"type": ["integer", "null"]},
                                            "cell": {"type": ["integer", "null"], "description":
                                                     "In a notebook: the cell, 1-based, every cell counted; line and column are the .ipynb file's."},
                                            "cell_line": {"type": ["integer", "null"]},
                                            "row": {"type": ["integer", "null"], "description":
                                                    "In a Parquet file: the row, 1-based (line holds the same number)."}}},
                "evidence": {"type": "array"},
                "skipped": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "Files a folder scan left out, counted by why."},
        "fixes": {"type": "array", "items": {"type": "object", "required": ["text", "safety"],
                                                     "properties": {"safety": {"enum": ["safe", "unsafe", "manual"]}}}},
                "refs": {"type": "array", "items": {"type": "string"}},
                "myth": {"type": "string"},
            },
        }},
        "explain": {"$ref": "#/$defs/explain"},
        "smoke": {"type": "object"},
        "skipped": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "Files a folder scan left out, counted by why."},
        "fixes": {"type": "array", "items": {
            "type": "object", "required": ["path", "applied", "summary"],
            "properties": {"path": {"type": "string"}, "applied": {"type": "boolean"},
                           "summary": {"type": "string"}, "entry_id": {"type": ["string", "null"]},
                           "details": {"type": "array", "items": {"type": "string"}},
                           "outputs": {"type": "array", "items": {"type": "string"}}}}},
    },
}


def report_schema() -> dict[str, Any]:
    """The published report schema, with explain's own section schema inlined."""
    from doctor.report.explain_schema import EXPLAIN_SCHEMA

    explain = {k: v for k, v in EXPLAIN_SCHEMA.items() if k not in ("$schema", "$id")}
    return {**REPORT_SCHEMA, "$defs": {"explain": explain}}


def render_explain_json(result: ExplainResult) -> str:
    """explain's own section alone, as JSON (what `explain_to_dict` gives, indented)."""
    return json.dumps(explain_to_dict(result), indent=2, ensure_ascii=False) + "\n"
