"""Check knowledge entries against the published JSON Schema, plus what a schema can't say.

A small validator for the subset of JSON Schema that `schema.py` uses, so the base install
needs no jsonschema; the test suite checks that the real jsonschema agrees with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from doctor.kb import schema as S
from doctor.results.words import counted

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    at_key: bool = False   # point at the key itself (an unknown key), not at its value


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _describe(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(value), type(value).__name__)


def validate_value(value: Any, schema: dict[str, Any], path: Path, root: dict[str, Any]) -> list[Problem]:
    if "$ref" in schema:
        return validate_value(value, _resolve(schema["$ref"], root), path, root)
    problems: list[Problem] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [validate_value(value, sub, path, root) for sub in schema[key]]
            if not any(not b for b in branches):
                # Report the branch that got furthest: the one with the fewest problems.
                return min(branches, key=len)
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [Problem(path, f"expected {' or '.join(names)}, got {_describe(value)}")]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(Problem(path, f"{value!r} is not one of: {', '.join(map(str, schema['enum']))}"))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(Problem(path, f"must be at least {schema['minLength']} characters"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(Problem(path, f"{value!r} does not match the pattern {schema['pattern']}"))
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(Problem(path, f"must be ≥ {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(Problem(path, f"must be ≤ {schema['maximum']}"))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(Problem(path, f"needs at least {counted(schema['minItems'], 'item')}"))
        if "items" in schema:
            for i, item in enumerate(value):
                problems += validate_value(item, schema["items"], (*path, i), root)
    if isinstance(value, dict):
        problems += _validate_object(value, schema, path, root)
    return problems


def _validate_object(value: dict[str, Any], schema: dict[str, Any], path: Path, root: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            problems.append(Problem(path, f"missing required key '{name}'"))
    if schema.get("additionalProperties") is False:
        for key in value:
            if key not in props:
                hint = _closest(str(key), list(props))
                problems.append(Problem((*path, key), f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else ""), True))
    if len(value) < schema.get("minProperties", 0) or len(value) > schema.get("maxProperties", 10**9):
        problems.append(Problem(path, "a condition leaf needs exactly one operator beside 'fact'"))
    for key, sub in props.items():
        if key in value:
            problems += validate_value(value[key], sub, (*path, key), root)
    return problems


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None


def validate_entry(entry: Any, path: Path = ()) -> list[Problem]:
    """Schema problems first; the semantic checks run only on a well-formed entry."""
    root = S.json_schema()
    problems = validate_value(entry, root["$defs"]["entry"], path, root)
    if problems:
        return problems
    return _semantic_checks(entry, path)


def _semantic_checks(entry: dict[str, Any], path: Path) -> list[Problem]:
    from doctor.kb.conditions import condition_problems
    from doctor.textmatch import pattern_problem

    problems: list[Problem] = []
    if not any(k in entry for k in ("when", "symptoms", "observed")):
        problems.append(Problem(path, "an entry needs 'when', 'symptoms' or 'observed: true', or nothing can trigger it"))
    if "when" in entry:
        problems += [Problem((*path, "when", *p), m) for p, m in condition_problems(entry["when"])]
    for i, symptom in enumerate(entry.get("symptoms", [])):
        pattern = symptom if isinstance(symptom, str) else symptom["pattern"]
        message = pattern_problem(pattern)
        if message:
            problems.append(Problem((*path, "symptoms", i), message))
    examples = entry["examples"]
    for kind in ("match", "no_match"):
        for i, example in enumerate(examples.get(kind, [])):
            problems += _example_problems(entry, example, (*path, "examples", kind, i))
    return problems


def _example_problems(entry: dict[str, Any], example: Any, path: Path) -> list[Problem]:
    if isinstance(example, str):
        if "symptoms" not in entry:
            return [Problem(path, "a text example needs 'symptoms' to match it against")]
        return []
    if "facts" in example and "when" not in entry:
        return [Problem(path, "a facts example needs a 'when' condition")]
    if "probe" in example and not entry.get("observed"):
        return [Problem(path, "a probe example belongs to an entry with 'observed: true'")]
    if not any(k in example for k in ("facts", "probe", "text")):
        return [Problem(path, "an example needs 'facts', 'probe' or 'text'")]
    return []
