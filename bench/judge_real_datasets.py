"""Judge the findings of bench_real_datasets.py (its --findings TSV) with a verdicts file, and
write the annotation file of the regression corpus.

    python bench/judge_real_datasets.py FINDINGS.tsv VERDICTS.json --table judged.tsv
    python bench/judge_real_datasets.py FINDINGS.tsv VERDICTS.json --annotations expected.json

A verdict is (file glob, finding id, true/false, why); the first that matches a finding
judges it. Errors and warnings are judged (notes are not); a finding no verdict covers is
printed as unjudged and counts as false. Printed: findings judged true / all, per severity.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path


def load_findings(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if row["severity"] in ("error", "warning")]


def verdict(row: dict[str, str], verdicts: list[list]) -> tuple[bool | None, str]:
    for glob, entry, ok, why in verdicts:
        if row["id"] == entry and fnmatch.fnmatch(row["file"], glob):
            return bool(ok), why
    return None, "no verdict covers this finding"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("findings", type=Path)
    parser.add_argument("verdicts", type=Path)
    parser.add_argument("--table", type=Path)
    parser.add_argument("--annotations", type=Path)
    parser.add_argument("--corpus", type=Path, help="the folder scanned: its files without findings are annotated too")
    args = parser.parse_args(argv)
    verdicts = json.loads(args.verdicts.read_text())["verdicts"]
    rows = load_findings(args.findings)
    tally: Counter[str] = Counter()
    table = ["file\tline\tid\tseverity\tjudged\twhy"]
    annotations: dict[str, dict[str, str]] = {}
    for row in rows:
        ok, why = verdict(row, verdicts)
        judged = {True: "true", False: "FALSE", None: "UNJUDGED"}[ok]
        tally[f"{row['severity']} {judged}"] += 1
        tally[judged] += 1
        table.append("\t".join([row["file"], row["line"], row["id"], row["severity"], judged, why]))
        if ok is None:
            print(f"unjudged: {row['file']}:{row['line']} {row['id']}")
        annotations.setdefault(row["file"], {})[f"{row['id']}@{row['line']}"] = why
    total = len(rows)
    print(f"{total} errors and warnings: {tally['true']} judged true, {tally['FALSE']} false, "
          f"{tally['UNJUDGED']} unjudged; precision {tally['true'] / total:.3f}" if total else "no findings")
    for severity in ("error", "warning"):
        print(f"  {severity}s: {tally[f'{severity} true']} true, {tally[f'{severity} FALSE']} false")
    if args.table:
        args.table.write_text("\n".join(table) + "\n")
    if args.annotations:
        files = {row["file"] for row in rows}
        if args.corpus:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_real_datasets import dataset_files

            files |= {p.relative_to(args.corpus).as_posix() for p in dataset_files(args.corpus)}
        out = {name: {"findings": dict(sorted(annotations.get(name, {}).items()))} for name in sorted(files)}
        args.annotations.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return 0 if tally["true"] == total else 1


if __name__ == "__main__":
    sys.exit(main())
