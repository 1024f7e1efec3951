"""The knowledge-entry schema, as JSON Schema (draft 2020-12).

This dict is the single source of truth: `unsloth-doctor kb schema` prints it for editors, and
`doctor.kb.validate` checks every entry against it (with file and line for each problem).
"""
from __future__ import annotations

from typing import Any, Iterable

SCHEMA_ID = "https://unsloth-doctor.dev/schema/knowledge-entry-1.json"

# The fixed vocabulary of failure categories (shown in reports and JSON). Area slugs are
# allowed too, for entries that are not runtime failures.
CATEGORIES: tuple[str, ...] = (
    "cuda-torch-mismatch", "kernel-launch", "bnb-cuda-setup", "triton-compile",
    "xformers-mismatch", "bf16-dtype", "cuda-oom", "nan-loss", "trl-version-incompat",
    "dataset-format", "tokenizer-load", "load-size-mismatch", "merge-gguf-export", "no-gpu",
    "torch-compile", "ddp-multi-gpu", "padding-mask", "import-order", "windows",
    "vision-model", "stale-release", "other",
    # area slugs
    "env", "dataset", "config", "model", "smoke", "training", "distributed",
)

# An entry's area is a slug here; which areas exist is the probe registry's to say
# (`doctor.probes.registry.area_names()`), passed to the loader and to `json_schema`.
AREA_SLUG = r"^[a-z][a-z0-9-]*$"

_FACT_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.\-*]*$"}
_FACT_REF = {
    "type": "object",
    "properties": {"fact": _FACT_NAME},
    "required": ["fact"],
    "additionalProperties": False,
    "description": "Compare with the value of another fact instead of a literal.",
}
_SCALAR = {"type": ["string", "number", "boolean", "null"]}
_OPERAND = {"anyOf": [_SCALAR, _FACT_REF]}
_VERSION_OPERAND = {"anyOf": [{"type": "string"}, _FACT_REF]}

# Comparison operators a leaf condition may use, with the operand each takes.
LEAF_OPERATORS: dict[str, dict[str, Any]] = {
    "present": {"type": "boolean", "description": "The fact exists (true) or not (false)."},
    "eq": _OPERAND,
    "ne": _OPERAND,
    "in": {"type": "array", "items": _SCALAR, "description": "The value is one of these."},
    "not_in": {"type": "array", "items": _SCALAR},
    "contains": {**_OPERAND, "description": "A list fact holds this item, or a string holds this substring."},
    "lt": {"anyOf": [{"type": "number"}, _FACT_REF]},
    "le": {"anyOf": [{"type": "number"}, _FACT_REF]},
    "gt": {"anyOf": [{"type": "number"}, _FACT_REF]},
    "ge": {"anyOf": [{"type": "number"}, _FACT_REF]},
    "version_lt": _VERSION_OPERAND,
    "version_le": _VERSION_OPERAND,
    "version_gt": _VERSION_OPERAND,
    "version_ge": _VERSION_OPERAND,
    "version_eq": _VERSION_OPERAND,
    "version_in": {"type": "string", "description": "A PEP 440 specifier set, e.g. '>=4.4,<4.6'."},
    "version_not_in": {"type": "string"},
    "matches": {"type": "string", "description": "A regular expression (RE2 syntax) searched in the value."},
}

CONDITION: dict[str, Any] = {
    "$id": "#condition",
    "type": "object",
    "description": "all/any/not of conditions, or one leaf: {fact: NAME, <operator>: operand}.",
    "oneOf": [
        {"properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}},
         "required": ["all"], "additionalProperties": False},
        {"properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}},
         "required": ["any"], "additionalProperties": False},
        {"properties": {"not": {"$ref": "#/$defs/condition"}},
         "required": ["not"], "additionalProperties": False},
        {"properties": {"fact": _FACT_NAME, **LEAF_OPERATORS},
         "required": ["fact"], "additionalProperties": False,
         "minProperties": 2, "maxProperties": 2},
    ],
}

SYMPTOM: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 3, "description": "A regular expression (RE2 syntax), case-insensitive."},
        {
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "minLength": 3},
                "weight": {"type": "number", "minimum": 0.05, "maximum": 1,
                           "description": "How specific this pattern is (1 = unmistakable)."},
                "capture": {"type": "array", "items": {"type": "string"},
                            "description": "Names for the pattern's groups, usable as {name} in texts."},
            },
            "required": ["pattern"],
            "additionalProperties": False,
        },
    ]
}

FIX: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "minLength": 3},
        "safety": {"enum": ["safe", "unsafe", "manual"]},
        "kind": {"enum": ["command", "edit", "config", "dataset", "model", "manual"]},
        "command": {"type": "string", "description": "A shell command shown apart from prose; never run by us."},
    },
    "required": ["text"],
    "additionalProperties": False,
}

EXAMPLE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": "Log text for `explain` (symptoms)."},
        {
            "type": "object",
            "properties": {
                "facts": {"type": "object", "description": "Facts for a `when:` rule."},
                "probe": {"type": "string", "description": "A probe that reads `input` (e.g. dataset.jsonl)."},
                "input": {"type": "string"},
                "options": {"type": "object"},
                "text": {"type": "string"},
                "requires": {"type": "array", "items": {"type": "string"},
                             "description": "Optional packages the example needs; skipped where one is missing."},
            },
            "additionalProperties": False,
        },
    ]
}

ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"},
        "title": {"type": "string", "minLength": 5},
        "severity": {"enum": ["error", "warning", "info"]},
        "category": {"enum": list(CATEGORIES)},
        "area": {"type": "string", "pattern": AREA_SLUG},
        "when": {"$ref": "#/$defs/condition"},
        "symptoms": {"type": "array", "items": SYMPTOM, "minItems": 1},
        "observed": {"type": "boolean", "description": "Emitted by a probe as a located observation."},
        "explain": {"type": "string", "minLength": 10,
                    "description": "Why it happens. {fact.name} and {capture} are filled in."},
        "fixes": {"type": "array", "items": FIX},
        "refs": {"type": "array", "items": {"type": "string", "minLength": 8}, "minItems": 1,
                 "description": "Unsloth source path, docs URL, or GitHub issue URL."},
        "myth": {"type": "string", "description": "The folklore claim this entry corrects."},
        "related": {"type": "array", "items": {"type": "string"}},
        "explains": {"type": "array", "items": {"type": "string"},
                     "description": "Entries whose symptom this one causes (a later, misleading error): "
                                    "when both appear in a log, explain ranks this one first."},
        "examples": {
            "type": "object",
            "properties": {
                "match": {"type": "array", "items": EXAMPLE, "minItems": 1},
                "no_match": {"type": "array", "items": EXAMPLE},
            },
            "required": ["match"],
            "additionalProperties": False,
        },
    },
    "required": ["id", "title", "severity", "category", "area", "explain", "refs", "examples"],
    "additionalProperties": False,
}


def json_schema(areas: Iterable[str] | None = None) -> dict[str, Any]:
    """The published schema for a knowledge file: a list of entries; with `areas`, an
    entry's area is one of them (editors complete it)."""
    entry = ENTRY if areas is None else {
        **ENTRY, "properties": {**ENTRY["properties"], "area": {"enum": sorted(areas)}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "unsloth-doctor knowledge file",
        "type": "array",
        "items": {"$ref": "#/$defs/entry"},
        "$defs": {"entry": entry, "condition": {k: v for k, v in CONDITION.items() if k != "$id"}},
    }
