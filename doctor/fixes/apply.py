"""Apply the file edits that findings propose, inside the run's transaction, re-checking each.

Like ruff: apply one edit per file, re-run the probe on the result, and keep the edit only if
the finding it fixes is gone and nothing new appeared; repeat until no edit applies.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable

from doctor.findings import FileEdit, Fix, Observation, Safety
from doctor.fixes.journal import Journal, Transaction

Rescan = Callable[[str], list[Observation]]
MAX_ROUNDS = 20


def allowed(fix: Fix, unsafe: bool) -> bool:
    return bool(fix.edits) and (fix.safety == Safety.SAFE or (unsafe and fix.safety == Safety.UNSAFE))


def propose_diff(edit: FileEdit, context: int = 2, limit: int = 40) -> str:
    """The change an edit would make, as a unified diff (what `scan` shows without --fix)."""
    try:
        old = Path(edit.path).read_text(encoding="utf-8")
    except OSError:
        old = ""
    diff = list(difflib.unified_diff(old.splitlines(keepends=True), (edit.new_text or "").splitlines(keepends=True),
                                     fromfile=f"a/{edit.path.lstrip('/')}", tofile=f"b/{edit.path.lstrip('/')}", n=context))
    if len(diff) > limit:
        diff = diff[:limit] + [f"... ({len(diff) - limit} more diff lines)\n"]
    return "".join(diff)


def apply_file_fixes(path: str, rescan: Rescan, unsafe: bool, tx: Transaction) -> list[str]:
    """Fix `path` until no allowed edit remains; returns a line per applied fix."""
    applied: list[str] = []
    skipped: set[str] = set()
    for _ in range(MAX_ROUNDS):
        observations = rescan(path)
        candidate = next(((o, f) for o in observations for f in o.fixes
                          if allowed(f, unsafe) and o.entry_id not in skipped), None)
        if candidate is None:
            break
        obs, fix = candidate
        edit = next(e for e in fix.edits if Path(e.path) == Path(path))
        before_ids = sorted(o.entry_id for o in observations)
        original = Path(path).read_bytes()
        tx.write(path, edit.content())
        after_ids = sorted(o.entry_id for o in rescan(path))
        expected = sorted(before_ids)
        expected.remove(obs.entry_id)
        if after_ids != expected:
            # the edit did not do what it promised: put the file back and don't try it again
            tx.write(path, original)
            skipped.add(obs.entry_id)
            continue
        applied.append(f"fixed {obs.entry_id} in {path}: {fix.text}")
    return applied


def apply_fixes(paths: list[str], rescan: Rescan, unsafe: bool, label: str,
                journal: Journal | None = None, tx: Transaction | None = None) -> list[str]:
    """Fix every file of `paths`; inside `tx` when given (the run's), else a transaction of its own."""
    if tx is None:
        with (journal or Journal()).transaction(label) as own:
            return apply_fixes(paths, rescan, unsafe, label, tx=own)
    lines: list[str] = []
    for path in paths:
        lines += apply_file_fixes(path, rescan, unsafe, tx)
    return lines
