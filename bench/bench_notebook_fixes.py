"""--fix on a folder of real notebooks, in a scratch copy: every notebook with an applicable
safe fix is fixed, then checked and undone.

    python bench/bench_notebook_fixes.py FOLDER

Per notebook: the fixes applied, whether the result still validates against Jupyter's schema
as the original did (nbformat), the findings left, the lines the file gained, whether undo
gave back the original bytes, and the time of the fix against a named baseline measured in
the same run: one scan of the same notebook (what a run without --fix costs).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from doctor.fixes.apply import allowed, apply_fixes
from doctor.fixes.journal import Journal
from doctor.probes.script import read_source, scan_source


def rescan(path: str) -> list:
    return scan_source(read_source(path))


def is_valid(text: str) -> bool:
    return nbformat.validator.isvalid(nbformat.reads(text, as_version=nbformat.NO_CONVERT))


def main() -> int:
    folder = Path(sys.argv[1])
    done = total = 0
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted(folder.glob("*.ipynb")):
            if not any(allowed(f, unsafe=False) for o in rescan(str(path)) for f in o.fixes):
                continue
            total += 1
            copy = Path(scratch) / path.name
            shutil.copy(path, copy)
            original = copy.read_bytes()
            t = time.perf_counter()
            rescan(str(copy))
            scan_s = time.perf_counter() - t
            journal = Journal(Path(scratch) / "journal")
            t = time.perf_counter()
            applied = apply_fixes([str(copy)], rescan, unsafe=False, label="bench", journal=journal)
            fix_s = time.perf_counter() - t
            after = copy.read_text(encoding="utf-8")
            valid = is_valid(after) == is_valid(original.decode("utf-8"))
            left = sorted(o.entry_id for o in rescan(str(copy)))
            gained = len(after.splitlines()) - len(original.decode("utf-8").splitlines())
            journal.undo_last()
            restored = copy.read_bytes() == original
            done += bool(applied) and valid and restored
            print(f"{path.name}: fixed {[a.entry_id for a in applied]}, valid as before: {valid}, left {left}, "
                  f"+{gained} lines, undo byte for byte: {restored}, fix {fix_s * 1000:.0f} ms "
                  f"(one scan: {scan_s * 1000:.0f} ms, {fix_s / scan_s:.1f}x)")
    print(f"\nnotebooks with a safe fix: {total}; fixed, valid and undone byte for byte: {done}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
