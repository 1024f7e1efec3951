"""Two versions of the doctor on real public material: what does the newer one report that the
older one did not, and how long does each take?

    git worktree add --detach ../old-doctor a80824c       # the code to compare against
    git worktree add --detach ../new-doctor HEAD
    cd .. && python new-doctor/bench/real_material.py --old old-doctor --new new-doctor \\
        --python "$(which python)" --repeat 3 --per-file per_file.tsv \\
        real/notebooks real/notebooks-py real/llamafactory real/axolotl

(real/*: unslothai/notebooks nb/ and python_scripts/, LLaMA-Factory data/ and examples/,
axolotl examples/, extracted from their git snapshots; see results/real-material-2026-12-07.)

Each version is a source tree; it runs as `python -m doctor scan FOLDER --no-env --format json`
in a subprocess with PYTHONPATH=TREE and the working directory outside both trees (the script
first checks that `import doctor` really loads that tree). Nothing here imports the doctor, so
any two trees whose JSON report has `areas` and `findings` can be compared.

Printed: files examined per kind and error/warning/note counts per version and folder; every
finding id only the new version reports, with its files; every id only the old one reports;
(id, file) pairs new in files where the id is otherwise known; exit code 3, DOCTOR-PROBE-CRASHED
and unreadable output; wall time of each version (median of --repeat runs, versions
alternating) and the ratio. A file the old version did not examine in its folder scan is
scanned again by it with an explicit flag (--data/--script/--config/--model), to tell a
finding that comes from the new file discovery from one that comes from a changed probe.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SEVERITIES = ("error", "warning", "info")
# the flag that makes a scan examine one file of an area, in both versions
AREA_FLAG = {"dataset": "--data", "script": "--script", "config": "--config", "model": "--model"}
CRASH_IDS = {"DOCTOR-PROBE-CRASHED"}
SHOW_FILES = 5


@dataclass
class Run:
    """One version's scan of one folder."""
    rc: int
    seconds: list[float] = field(default_factory=list)
    areas: dict[str, str] = field(default_factory=dict)          # path -> area, examined targets
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (id, severity, path)
    unchecked: int = 0
    skipped: int = 0
    problem: str = ""                                               # crash, or unreadable report


def scan(python: str, tree: Path, args: list[str], cwd: str) -> tuple[int, float, str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([python, "-m", "doctor", "scan", *args, "--no-env", "--format", "json"],
                          cwd=cwd, env=env, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - start, proc.stdout, proc.stderr


def parse(rc: int, stdout: str, stderr: str) -> Run:
    run = Run(rc)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        run.problem = f"exit {rc}, no JSON report; stderr: {stderr.strip()[-300:]!r}"
        return run
    for area in report.get("areas", []):
        if area.get("path") and area.get("ran", True):
            run.areas[area["path"]] = area["area"]
    for f in report.get("findings", []):
        path = (f.get("location") or {}).get("path") or "(no file)"
        run.findings[(f["id"], f["severity"], path)] += 1
    run.unchecked = report.get("summary", {}).get("unchecked", 0)
    run.skipped = sum((report.get("skipped") or {}).values())
    if rc == 3:
        run.problem = f"exit 3 (a bug after the findings); stderr: {stderr.strip()[-300:]!r}"
    return run


def check_tree(python: str, tree: Path, cwd: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([python, "-c", "import doctor; print(doctor.__file__)"], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"PYTHONPATH={tree} imports {out}, not that tree")
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", "doctor"],
                           capture_output=True, text=True).stdout.strip()
    return f"{out} (commit {head}{', doctor/ modified' if dirty else ''})"


def by_id(runs: dict[str, Run]) -> dict[str, Counter[str]]:
    """id -> Counter of 'severity path' over all folders."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs.values():
        for (fid, sev, path), n in run.findings.items():
            out[fid][f"{sev}\t{path}"] += n
    return out


def short(path: str, folders: list[Path]) -> str:
    for folder in folders:
        if path.startswith(str(folder.parent) + "/"):
            return path[len(str(folder.parent)) + 1:]
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--old", type=Path, required=True, help="source tree of the older version")
    ap.add_argument("--new", type=Path, required=True, help="source tree of the newer version")
    ap.add_argument("--python", default=sys.executable, help="interpreter with the doctor's dependencies")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per version and folder")
    ap.add_argument("--per-file", type=Path, help="write every file's ids of each version here (TSV)")
    a = ap.parse_args()
    versions = {"old": a.old, "new": a.new}
    cwd = tempfile.mkdtemp(prefix="real-material-")   # neither tree shadows PYTHONPATH from here

    print("# unsloth-doctor on real material: old vs new\n")
    for name, tree in versions.items():
        print(f"{name}: PYTHONPATH={tree} -> {check_tree(a.python, tree, cwd)}")
    print(f"python: {a.python}; each folder: scan FOLDER --no-env --format json; {a.repeat} runs each\n")

    runs: dict[str, dict[str, Run]] = {"old": {}, "new": {}}
    for folder in a.folders:
        for i in range(a.repeat):
            for name, tree in (versions.items() if i % 2 == 0 else reversed(versions.items())):
                rc, secs, out, err = scan(a.python, tree, [str(folder)], cwd)
                run = runs[name].setdefault(str(folder), parse(rc, out, err))
                run.seconds.append(secs)

    # --- counts ---
    print("## Files examined, findings, time (median of runs)\n")
    kinds = sorted({k for v in runs.values() for r in v.values() for k in r.areas.values()})
    head = ["folder", "ver", "exit", *kinds, "skipped", "unchecked", "errors", "warnings", "notes", "seconds"]
    rows = [head]
    totals = {name: Counter() for name in versions}
    for folder in a.folders:
        for name in versions:
            r = runs[name][str(folder)]
            per_kind = Counter(r.areas.values())
            sev = Counter()
            for (_, s, _), n in r.findings.items():
                sev[s] += n
            secs = statistics.median(r.seconds)
            row = {**per_kind, "skipped": r.skipped, "unchecked": r.unchecked, "errors": sev["error"],
                   "warnings": sev["warning"], "notes": sev["info"]}
            totals[name].update(row)
            totals[name]["seconds"] += secs
            rows.append([folder.name, name, str(r.rc), *(str(row.get(k, 0)) for k in head[3:-1]), f"{secs:.2f}"])
    for name in versions:
        t = totals[name]
        rows.append(["TOTAL", name, "", *(str(t.get(k, 0)) for k in head[3:-1]), f"{t['seconds']:.2f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print("(notes = severity info; skipped = files no probe reads, reported by the new version only)")

    # --- the old version on the files only the new one examined ---
    extra: dict[str, Run] = {}
    for folder in a.folders:
        old, new = runs["old"][str(folder)], runs["new"][str(folder)]
        args = [arg for path, area in new.areas.items() if path not in old.areas and area in AREA_FLAG
                for arg in (AREA_FLAG[area], path)]
        if args:
            rc, _, out, err = scan(a.python, versions["old"], args, cwd)
            extra[str(folder)] = parse(rc, out, err)
    old_explicit: Counter[tuple[str, str, str]] = Counter()
    for r in extra.values():
        old_explicit.update(r.findings)

    def origin(fid: str, sev: str, path: str, n: int) -> str:
        if any(path in r.areas for r in runs["old"].values()):
            return "old examined this file"
        if old_explicit[(fid, sev, path)] == n:
            return "discovery: old says the same when given the file"
        if any(path in r.areas for r in extra.values()):
            return f"probe change: old given the file says it {old_explicit[(fid, sev, path)]}x"
        return "old cannot be given this file"

    def show(fid: str, files: Counter[str]) -> None:
        sevs = sorted({k.split("\t")[0] for k in files})
        print(f"\n{fid}  [{'/'.join(sevs)}]  {sum(files.values())} in {len(files)} file(s)")
        for key, n in files.most_common(SHOW_FILES):
            sev, path = key.split("\t")
            print(f"    {n:>4} x {short(path, a.folders)}  ({origin(fid, sev, path, n)})")
        if len(files) > SHOW_FILES:
            print(f"    ... and {len(files) - SHOW_FILES} more file(s)")

    old_ids, new_ids = by_id(runs["old"]), by_id(runs["new"])
    print("\n## Ids only the NEW version reports\n")
    only_new = sorted(set(new_ids) - set(old_ids))
    if not only_new:
        print("(none)")
    for fid in only_new:
        show(fid, new_ids[fid])

    print("\n\n## Ids only the OLD version reports\n")
    only_old = sorted(set(old_ids) - set(new_ids))
    if not only_old:
        print("(none)")
    for fid in only_old:
        files = old_ids[fid]
        print(f"\n{fid}  {sum(files.values())} in {len(files)} file(s), e.g. "
              f"{short(files.most_common(1)[0][0].split(chr(9))[1], a.folders)}")

    print("\n\n## Ids both report, with more findings in the new version (per id and severity)\n")
    grown = False
    for fid in sorted(set(new_ids) & set(old_ids)):
        more = Counter({k: n - old_ids[fid][k] for k, n in new_ids[fid].items() if n > old_ids[fid][k]})
        fewer = sum(max(0, n - new_ids[fid][k]) for k, n in old_ids[fid].items())
        if more:
            grown = True
            show(fid, more)
            if fewer:
                print(f"    ({fewer} fewer elsewhere)")
    print("(none)" if not grown else "")

    # --- crashes ---
    print("\n## Crashes (exit 3, DOCTOR-PROBE-CRASHED, no JSON report)\n")
    crashed = False
    for name in versions:
        for folder, r in [*runs[name].items(), *((f"{k} (explicit)", v) for k, v in extra.items() if name == "old")]:
            ids = [k for k in r.findings if k[0] in CRASH_IDS]
            for k in ids:
                crashed = True
                print(f"{name} {folder}: {k[0]} in {short(k[2], a.folders)}")
            if r.problem:
                crashed = True
                print(f"{name} {folder}: {r.problem}")
    print("(none)" if not crashed else "")

    # --- time ---
    t_old, t_new = totals["old"]["seconds"], totals["new"]["seconds"]
    print(f"\n## Wall time, all folders (sum of medians)\n\nold {t_old:.2f} s, new {t_new:.2f} s, "
          f"new/old = {t_new / t_old:.2f}")

    if a.per_file:
        lines = ["folder\tfile\tkind_old\tkind_new\tids_old\tids_new"]
        for folder in a.folders:
            old, new = runs["old"][str(folder)], runs["new"][str(folder)]
            ids: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: {"old": Counter(), "new": Counter()})
            for name, r in (("old", old), ("new", new)):
                for path in r.areas:
                    ids[path]   # an examined file without findings still gets its row
                for (fid, sev, path), n in r.findings.items():
                    ids[path][name][f"{fid}:{sev}"] += n
            for path in sorted(ids):
                fmt = lambda c: " ".join(f"{k}x{n}" for k, n in sorted(c.items())) or "-"  # noqa: E731
                lines.append("\t".join([folder.name, short(path, a.folders), old.areas.get(path, "-"),
                                        new.areas.get(path, "-"), fmt(ids[path]["old"]), fmt(ids[path]["new"])]))
        a.per_file.parent.mkdir(parents=True, exist_ok=True)
        a.per_file.write_text("\n".join(lines) + "\n")
        print(f"\nper-file ids: {a.per_file}")


if __name__ == "__main__":
    main()
