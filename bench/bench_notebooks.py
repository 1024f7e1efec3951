"""The script probe on a folder of notebooks: how many parse, what it finds, how long it takes.

    python bench/bench_notebooks.py FOLDER

Prints parsed/total, findings per id with their severity, every error with its place, and
the time per notebook (median, max) against a named baseline measured in the same run:
`json.loads` + `ast.parse` of the code cells joined as they are (what reading a notebook
costs with no IPython handling and no checks).
"""
from __future__ import annotations

import ast
import collections
import json
import sys
import time
from pathlib import Path

from doctor.kb import load_knowledge
from doctor.probes.script import read_source, scan_source
from timing import print_times   # bench/timing.py, beside this script


def baseline(path: Path) -> bool:
    """Plain reading: the code cells joined, magics and all. True when that parses."""
    notebook = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    cells = [c.get("source", "") for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    try:
        ast.parse("\n".join(s if isinstance(s, str) else "".join(s) for s in cells))
        return True
    except SyntaxError:
        return False


def main() -> int:
    folder = Path(sys.argv[1])
    notebooks = sorted(folder.glob("*.ipynb"))
    kb = load_knowledge()
    severity = {e.id: e.severity.value for e in kb}
    counts: collections.Counter[str] = collections.Counter()
    by_severity: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    probe_times, base_times, parsed, base_parsed = [], [], 0, 0
    for path in notebooks:
        t = time.perf_counter()
        observations = scan_source(read_source(str(path)))
        probe_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        base_parsed += baseline(path)
        base_times.append(time.perf_counter() - t)
        parsed += not any(o.entry_id == "SCRIPT-SYNTAX-ERROR" for o in observations)
        for o in observations:
            counts[o.entry_id] += 1
            by_severity[severity.get(o.entry_id, "?")] += 1
            if severity.get(o.entry_id) == "error":
                errors.append(f"  {o.entry_id}  {o.location}  (file line {o.location.line})")
    print(f"notebooks: {len(notebooks)} in {folder}")
    print(f"parsed: {parsed}/{len(notebooks)} (script probe); {base_parsed}/{len(notebooks)} (baseline: cells joined as they are)")
    print(f"findings: {by_severity['error']} errors, {by_severity['warning']} warnings, {by_severity['info']} notes")
    for entry_id, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:5d}  {severity.get(entry_id, '?'):7s}  {entry_id}")
    print("errors:" if errors else "errors: none")
    print("\n".join(errors)) if errors else None
    print_times("notebook", "script probe", probe_times, "json.loads + ast.parse", base_times)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
