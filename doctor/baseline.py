"""A baseline: today's findings, written once, so that CI fails only on new ones.

Each finding is kept as its id, its file relative to the baseline's folder (so the baseline
holds in any checkout) and a fingerprint that does not change when lines move: a hash of the
finding's line as written (stripped), else of its message. Equal entries are counted, so a
second copy of a baselined mistake is still new.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from doctor.atomic import atomic_write_bytes
from doctor.errors import UsageError
from doctor.findings import Finding
from doctor.suppress import LineReader

FORMAT = "unsloth-doctor-baseline"
VERSION = 1
DEFAULT_NAME = ".unsloth-doctor-baseline.json"

Key = tuple[str, str, str]


def _relative(path: str, root: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()
    except ValueError:   # another drive on Windows
        return Path(path).as_posix()


def key_of(finding: Finding, root: Path, reader: LineReader) -> Key:
    where = finding.location
    path = _relative(where.path, root) if where and where.path else ""
    text = reader.line(where.path, where.line) if where and where.path and where.line else None
    basis = f"line:{text.strip()}" if text and text.strip() else f"message:{finding.message}"
    return finding.id, path, hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def write_baseline(findings: list[Finding], target: Path) -> int:
    reader = LineReader()
    keys = sorted(key_of(f, target.parent, reader) for f in findings)
    doc = {"format": FORMAT, "version": VERSION,
           "findings": [{"id": i, "path": p, "fingerprint": h} for i, p, h in keys]}
    atomic_write_bytes(target, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return len(keys)


def read_baseline(path: Path) -> Counter[Key]:
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--baseline: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--baseline: {path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("findings"), list):
        raise UsageError(f"--baseline: {path} is not an unsloth-doctor baseline (write one with "
                         "'unsloth-doctor baseline')")
    try:
        return Counter((e["id"], e["path"], e["fingerprint"]) for e in doc["findings"])
    except (KeyError, TypeError):
        raise UsageError(f"--baseline: {path} has an entry without id, path and fingerprint") from None


def drop_baselined(findings: list[Finding], path: Path) -> tuple[list[Finding], int]:
    """The findings that are not in the baseline, and how many were."""
    known = read_baseline(path)
    reader = LineReader()
    kept = []
    for finding in findings:
        key = key_of(finding, path.parent, reader)
        if known[key] > 0:
            known[key] -= 1
        else:
            kept.append(finding)
    return kept, len(findings) - len(kept)
