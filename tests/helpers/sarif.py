"""What GitHub code scanning accepts, checked on every SARIF document the tests produce:
`validate_sarif` (the official 2.1.0 schema, vendored, `uniqueItems` included, and a file
location on every result), used by the in-process tests and by `run_cli` on every
`--format sarif` it runs (standard output or --output file)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "sarif-schema-2.1.0.json").read_text())


def validate_sarif(doc: dict[str, Any], cwd: Path | None = None) -> None:
    """Schema-valid, and every result at a file and line, as code scanning requires (it
    rejects a whole upload otherwise). With `cwd`, the folder the scan ran in: each
    result's file exists there, its line is in the file, and a notebook's line is a line of a
    cell's source in the raw .ipynb (where an editor and GitHub show it)."""
    validator = jsonschema.Draft4Validator(SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    for run in doc["runs"]:
        rules = run["tool"]["driver"].get("rules", [])
        for result in run.get("results", []):
            _check_result(result, rules, cwd)


def _check_result(result: dict[str, Any], rules: list[dict[str, Any]], cwd: Path | None) -> None:
    what = result.get("ruleId")
    assert result.get("locations"), f"{what}: a result without a location (code scanning rejects the upload)"
    physical = result["locations"][0].get("physicalLocation") or {}
    uri = (physical.get("artifactLocation") or {}).get("uri")
    line = (physical.get("region") or {}).get("startLine")
    assert uri and isinstance(line, int) and line >= 1, f"{what}: no file and line: {physical}"
    if "ruleIndex" in result:
        assert rules[result["ruleIndex"]]["id"] == what, f"{what}: ruleIndex names another rule"
    if cwd is None or uri.startswith("file:"):
        return
    path = Path(cwd) / uri
    assert path.is_file(), f"{what}: {uri} is no file of the scanned folder"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() or [""]
    assert line <= len(lines), f"{what}: line {line} of {uri}, which has {len(lines)}"
    if uri.endswith(".ipynb") and line > 1:   # line 1: a finding about the whole file
        assert _is_source_line(lines[line - 1]), f"{what}: {uri}:{line} is no line of a cell's source"


def _is_source_line(raw: str) -> bool:
    """A line of an .ipynb that holds cell source: one string of a `source` list, or a
    `"source": "..."` written as one string."""
    text = raw.strip().rstrip(",")
    if text.startswith('"source":'):
        return True
    try:
        return isinstance(json.loads(text), str)
    except ValueError:
        return False


def validate_sarif_text(text: str, cwd: Path | None = None) -> dict[str, Any]:
    doc = json.loads(text)
    validate_sarif(doc, cwd)
    return doc
