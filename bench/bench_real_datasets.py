"""The dataset doctor on a folder of real datasets: per file, its errors, warnings and notes, and
the time the check took; optionally compared with an annotation file of expected findings.

    python bench/bench_real_datasets.py fixtures/datasets/real [--repeat 3] [--findings out.tsv]
        [--expected fixtures/datasets/real/expected.json]

Every file a dataset scan would pick up in the folder is scanned on its own with the public
API (`doctor.api.scan(data=[file], env=False)`), so the time is that file's whole check,
knowledge base loaded once beforehand. Printed: one line per file (rows, errors, warnings,
notes, median ms of --repeat runs), the totals, and with --findings a TSV of every finding
(file, line, id, severity, message) to judge by hand. With --expected, the findings are
compared with the annotations (`scan_matches_annotations` in tests/test_dataset_real.py does
the same), and every difference is printed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from doctor import api  # noqa: E402
from doctor.probes.dataset import PROBE  # noqa: E402


def dataset_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and PROBE.finds(p))


def findings_of(path: Path, kb: object) -> tuple[list[tuple[int | None, str, str, str]], int]:
    report = api.scan(data=[str(path)], env=False, kb=kb, baseline=False)
    rows = next((a.detail for a in report.areas if a.area == "dataset"), "")
    found = [(f.location.line if f.location else None, f.id, f.severity.value, f.message)
             for f in report.findings]
    return found, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--findings", type=Path, help="write every finding to this TSV")
    parser.add_argument("--expected", type=Path, help="annotations to compare with")
    args = parser.parse_args(argv)
    kb = api.load_knowledge()
    expected = json.loads(args.expected.read_text()) if args.expected else None
    totals: Counter[str] = Counter()
    table: list[str] = []
    differences: list[str] = []
    print(f"{'file':<70} {'rows':>18} {'err':>4} {'warn':>4} {'note':>4} {'ms':>8}")
    for folder in args.folders:
        for path in dataset_files(folder):
            times = []
            for _ in range(max(1, args.repeat)):
                start = time.perf_counter()
                found, detail = findings_of(path, kb)
                times.append(time.perf_counter() - start)
            by_severity = Counter(sev for _, _, sev, _ in found)
            name = path.relative_to(folder).as_posix()
            totals.update(by_severity)
            totals["files"] += 1
            ms = statistics.median(times) * 1000
            totals["ms"] += round(ms)
            print(f"{name:<70} {detail:>18.18} {by_severity['error']:>4} {by_severity['warning']:>4} "
                  f"{by_severity['info']:>4} {ms:>8.1f}")
            for line, entry, sev, message in found:
                table.append("\t".join([name, str(line or ""), entry, sev, " ".join(message.split())]))
            if expected is not None:
                got = sorted(f"{entry}@{line}" for line, entry, sev, _ in found if sev in ("error", "warning"))
                want = sorted(expected.get(name, {}).get("findings", {}))
                if got != want:
                    differences.append(f"{name}: unexpected {sorted(set(got) - set(want))}, "
                                       f"missing {sorted(set(want) - set(got))}")
    print(f"\n{totals['files']} files: {totals['error']} errors, {totals['warning']} warnings, "
          f"{totals['info']} notes; {totals['ms']} ms in all (median of {args.repeat} runs each)")
    if args.findings:
        args.findings.write_text("file\tline\tid\tseverity\tmessage\n" + "\n".join(table) + "\n")
    if expected is not None:
        print("\n".join(differences) or "every file matches its annotations")
        return 1 if differences else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
