"""The config probe on a folder of real configs: vocabulary, findings and time per file.

    python bench/bench_configs.py FOLDER [FOLDER ...]

Every .yaml/.yml file and every .json file a folder scan takes as a config, or skips naming
the other tool it belongs to, is read. Prints one line per file (its vocabulary or the other
tool it belongs to, error/warning/note counts, time), every finding with its place, the
totals, and the time per file against a named baseline measured in the same run: PyYAML's
`yaml.safe_load` (C loader when present) or `json.loads` of the same text, which is what
reading the file costs with no positions, no vocabulary and no rules.

Then what a --fix edit does to the files: every config with a learning rate gets it set to
1e-4 the way a fix writes it (`configedit.rewrite`), counting the files where nothing but
that value's line changed; the baseline is a ruamel.yaml round trip with no change at all
(when ruamel.yaml is installed), counting the YAML files it writes back unchanged.
"""
from __future__ import annotations

import collections
import io
import json
import sys
import time
from pathlib import Path

import yaml

from doctor.kb import load_knowledge
from doctor.probes.config import PROBE, read_config, scan_config
from doctor.probes.configedit import rewrite
from timing import print_times   # bench/timing.py, beside this script

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def baseline(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)


def configs(folder: Path) -> list[Path]:
    """The files a folder scan takes as configs, and those it skips naming their tool."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and (PROBE.finds(p) or PROBE.skip_reason(p)))


def only_the_value_changes(path: Path) -> bool | None:
    """Set the learning rate as a fix would: did only that line change? None: no learning rate."""
    cfg = read_config(str(path))
    if not hasattr(cfg, "settings") or "learning_rate" not in cfg.settings:
        return None
    new = rewrite(cfg, {cfg.settings["learning_rate"].path: 1e-4})
    if new is None:
        return False
    old_lines, new_lines = cfg.text.splitlines(), new.splitlines()
    return len(old_lines) == len(new_lines) and sum(a != b for a, b in zip(old_lines, new_lines)) <= 1


def ruamel_round_trip_unchanged(path: Path) -> bool | None:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        return None
    text = path.read_text(encoding="utf-8")
    yaml = YAML()
    yaml.preserve_quotes, yaml.width = True, 4096
    yaml.indent(mapping=2, sequence=4, offset=2)   # its best single setting on these files
    out = io.StringIO()
    yaml.dump(yaml.load(text), out)
    return out.getvalue() == text


def fix_fidelity(paths: list[Path]) -> None:
    ours = [r for r in map(only_the_value_changes, paths) if r is not None]
    print(f"\nconfig edits (learning_rate set to 1e-4): {sum(ours)}/{len(ours)} files change only that value's line")
    theirs = [r for r in map(ruamel_round_trip_unchanged, [p for p in paths if p.suffix != ".json"]) if r is not None]
    if theirs:
        print(f"baseline ruamel.yaml round trip, no change made: {sum(theirs)}/{len(theirs)} YAML files written back unchanged")


def main() -> int:
    kb = load_knowledge()
    severity = {e.id: e.severity.value for e in kb}
    kinds: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    by_id: collections.Counter[str] = collections.Counter()
    times, base_times, details, seen = [], [], [], []
    for folder in map(Path, sys.argv[1:]):
        for path in configs(folder):
            seen.append(path)
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
    print_times("file", "config probe", times, "yaml.safe_load (C) / json.loads", base_times)
    fix_fidelity(seen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
