"""The config probe on a folder of real configs: vocabulary, findings and time per file.

    python bench/bench_configs.py FOLDER [FOLDER ...]

Every .yaml/.yml file and every .json file the probe takes in a folder scan (a training
config or another tool's) is read. Prints one line per file (its vocabulary or the other
tool it belongs to, error/warning/note counts, time), every finding with its place, the
totals, and the time per file against a named baseline measured in the same run: PyYAML's
`yaml.safe_load` (C loader when present) or `json.loads` of the same text, which is what
reading the file costs with no positions, no vocabulary and no rules.
"""
from __future__ import annotations

import collections
import json
import statistics
import sys
import time
from pathlib import Path

import yaml

from doctor.kb import load_knowledge
from doctor.probes.config import PROBE, read_config, scan_config

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def baseline(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)


def configs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and PROBE.finds(p))


def main() -> int:
    kb = load_knowledge()
    severity = {e.id: e.severity.value for e in kb}
    kinds: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    by_id: collections.Counter[str] = collections.Counter()
    times, base_times, details = [], [], []
    for folder in map(Path, sys.argv[1:]):
        for path in configs(folder):
            name = f"{folder.name}/{path.relative_to(folder)}"
            t = time.perf_counter()
            result = scan_config(str(path))
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            baseline(path)
            base_times.append(time.perf_counter() - t)
            cfg = read_config(str(path))
            kind = "unparsed" if not hasattr(cfg, "kind") else cfg.kind.label
            kinds[kind] += 1
            counts = collections.Counter(severity.get(o.entry_id, "?") for o in result.observations)
            totals.update(counts)
            print(f"{name}  [{kind}]  {counts['error']} errors, {counts['warning']} warnings, "
                  f"{counts['info']} notes  {times[-1] * 1000:.1f} ms")
            for o in result.observations:
                by_id[o.entry_id] += 1
                details.append(f"  {severity.get(o.entry_id, '?'):7s} {o.entry_id}  {name}:{o.location.line}:"
                               f"{o.location.column}  {o.values}")
    print(f"\nfiles: {len(times)}")
    print("vocabularies: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    print(f"findings: {totals['error']} errors, {totals['warning']} warnings, {totals['info']} notes")
    for entry_id, n in by_id.most_common():
        print(f"  {n:5d}  {severity.get(entry_id, '?'):7s}  {entry_id}")
    print("every finding:" if details else "every finding: none")
    print("\n".join(sorted(details, key=lambda d: (d.split()[0] != "error", d))))
    med, top, bmed = statistics.median(times), max(times), statistics.median(base_times)
    print(f"time per file, config probe: median {med * 1000:.2f} ms, max {top * 1000:.2f} ms")
    print(f"time per file, baseline yaml.safe_load (C) / json.loads: median {bmed * 1000:.2f} ms")
    print(f"ratio probe / baseline: median {med / bmed:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
