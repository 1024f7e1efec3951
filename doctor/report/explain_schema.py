"""JSON Schema of `ExplainResult.to_dict()` (the report's "explain" section).

Adding an optional key keeps "unsloth-doctor.explain/1"; removing or retyping one needs /2.
"""
from __future__ import annotations

from typing import Any

_INT_OR_NULL = {"type": ["integer", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}
_NUM_OR_NULL = {"type": ["number", "null"]}

_FRAME = {
    "type": "object",
    "required": ["file", "line", "function", "in_library", "package", "code", "log_line"],
    "properties": {
        "file": {"type": "string"}, "line": _INT_OR_NULL, "function": {"type": "string"},
        "in_library": {"type": "boolean"}, "package": _STR_OR_NULL, "code": _STR_OR_NULL,
        "log_line": _INT_OR_NULL,
    },
}

_EXCEPTION = {
    "type": "object",
    "required": ["type", "message", "line", "rank", "truncated"],
    "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}, "line": _INT_OR_NULL,
        "rank": _INT_OR_NULL, "truncated": {"type": "boolean"},
        "link": {"enum": ["cause", "context", None]},
    },
}

_DIAGNOSIS = {
    "type": "object",
    "required": ["id", "title", "severity", "category", "message", "evidence", "fixes", "refs"],
    "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "severity": {"enum": ["error", "warning", "info"]}, "category": {"type": "string"},
        "message": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "evidence": {"type": "array", "items": {"type": "object"}},
        "fixes": {"type": "array", "items": {"type": "object", "required": ["text"]}},
        "refs": {"type": "array", "items": {"type": "string"}},
        "myth": {"type": "string"},
        "env": {"enum": ["confirmed", "ruled_out", "unknown"]},
        "env_note": {"type": "string"},
        "on_final_error": {"type": "boolean"},
        "oom_summary": {"type": "string"},
        "alternatives": {"type": "array", "items": {"type": "string"}},
        "explains": {"type": "array", "items": {"type": "string"},
                     "description": "Findings of this log that this one causes (rank below it)."},
        "caused_by": {"type": "array", "items": {"type": "string"}},
    },
}

_RAISE_SITE = {
    "type": "object",
    "required": ["package", "version", "file", "line", "function", "kind", "exc_type", "template",
                 "condition", "category", "version_note"],
    "properties": {
        "package": {"type": "string"}, "version": {"type": "string"}, "file": {"type": "string"},
        "line": {"type": "integer"}, "function": {"type": "string"},
        "kind": {"enum": ["raise", "warn", "log", "print", "text", "frame"]}, "exc_type": {"type": "string"},
        "template": {"type": "string"}, "condition": {"type": "string"},
        "category": {"enum": ["saving/GGUF", "kernels", "vision", "RL", "tokenizer", "dataset", "other"]},
        "version_note": _STR_OR_NULL,
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

EXPLAIN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "unsloth-doctor explain result",
    "type": "object",
    "required": ["schema", "matched", "final_error", "chain", "key_frames", "diagnoses",
                 "unmatched", "oom", "build_errors", "rank_failures", "env_checked", "lines"],
    "properties": {
        "schema": {"const": "unsloth-doctor.explain/1"},
        "matched": {"type": "boolean", "description": "A diagnosis is claimed, not only weak leads."},
        "final_error": {"anyOf": [{"type": "null"}, _EXCEPTION]},
        "chain": {"type": "array", "items": _EXCEPTION},
        "key_frames": {"type": "array", "items": _FRAME},
        "diagnoses": {"type": "array", "items": _DIAGNOSIS},
        "unmatched": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["category", "reason", "collect"],
            "properties": {"category": {"type": "string"}, "reason": {"type": "string"},
                           "collect": {"type": "array", "items": {"type": "string"}}}}]},
        "oom": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["log_line", "fragmented", "advice"],
            "properties": {
                "log_line": {"type": "integer"}, "gpu": _INT_OR_NULL, "tried": _NUM_OR_NULL,
                "total": _NUM_OR_NULL, "free": _NUM_OR_NULL, "allocated": _NUM_OR_NULL,
                "reserved_unallocated": _NUM_OR_NULL, "reserved_total": _NUM_OR_NULL,
                "process_in_use": _NUM_OR_NULL, "context": _STR_OR_NULL,
                "fragmented": {"type": "boolean"}, "summary": _STR_OR_NULL,
                "advice": {"type": "array", "items": {"type": "string"}}}}]},
        "build_errors": {"type": "array", "items": {
            "type": "object", "required": ["tool", "message", "log_line"]}},
        "death": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["kind", "log_line", "text"]}]},
        "rank_failures": {"type": "array", "items": {
            "type": "object", "required": ["rank", "exitcode", "root_cause"]}},
        "run": {"anyOf": [{"type": "null"}, {"type": "object"}]},
        "env_checked": {"type": "boolean"},
        "lines": {"type": "object", "required": ["total", "kept", "dropped"]},
        "notes": {"type": "array", "items": {"type": "string"}},
        "raise_sites": {"type": "array", "items": _RAISE_SITE,
                        "description": "Where the library's source raises or prints the message."},
    },
}
