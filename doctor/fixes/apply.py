"""Apply the file edits that findings propose, inside the run's transaction, re-checking each.

Like ruff: apply one edit per file, re-run the probe on the result, and keep the edit only if
the finding it fixes is gone and nothing new appeared; repeat until no edit applies.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from doctor.findings import Fix, Observation, Safety
from doctor.fixes.journal import Journal, Transaction
from doctor.results.report import FixOutcome

Rescan = Callable[[str], list[Observation]]
MAX_ROUNDS = 20


def allowed(fix: Fix, unsafe: bool) -> bool:
    return bool(fix.edits) and (fix.safety == Safety.SAFE or (unsafe and fix.safety == Safety.UNSAFE))


def apply_file_fixes(path: str, rescan: Rescan, unsafe: bool, tx: Transaction) -> list[FixOutcome]:
    """Fix `path` until no allowed edit remains; returns what each applied fix did."""
    applied: list[FixOutcome] = []
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
        applied.append(FixOutcome(path, f"fixed {obs.entry_id} in {path}: {fix.text}",
                                  entry_id=obs.entry_id, outputs=(path,)))
    return applied


def apply_fixes(paths: list[str], rescan: Rescan, unsafe: bool, label: str,
                journal: Journal | None = None, tx: Transaction | None = None) -> list[FixOutcome]:
    """Fix every file of `paths`; inside `tx` when given (the run's), else a transaction of its own."""
    if tx is None:
        with (journal or Journal()).transaction(label) as own:
            return apply_fixes(paths, rescan, unsafe, label, tx=own)
    lines: list[FixOutcome] = []
    for path in paths:
        lines += apply_file_fixes(path, rescan, unsafe, tx)
    return lines
