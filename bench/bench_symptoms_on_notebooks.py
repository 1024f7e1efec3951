"""Runtime symptoms against official notebooks that work: a false-lead audit for `explain`.

    python bench/bench_symptoms_on_notebooks.py NB_DIR [--min-weight 0.35]

Users paste their notebook cells and the output of runs around the error, so a symptom that
matches the code of the official notebooks (unslothai/notebooks `nb/`) or the output of their
successful runs puts a wrong lead into many reports. For every runtime symptom of weight at
least --min-weight (the level explain claims a diagnosis at), it counts the matching lines of
cell sources and of saved outputs, with two of the lines each matched. A match in an output
is not always wrong (a warning a working run printed is still true); a match in code is.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.kb import load_knowledge  # noqa: E402
from doctor.textmatch import compile_pattern  # noqa: E402


def notebook_texts(folder: Path) -> list[tuple[str, str, str]]:
    """(notebook, "src" or "out", text) for every code cell's source and every saved output."""
    out = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            source = cell.get("source", [])
            out.append((path.name, "src", "".join(source) if isinstance(source, list) else str(source)))
            for o in cell.get("outputs", []) or []:
                t = o.get("text") or (o.get("data") or {}).get("text/plain") or o.get("traceback") or []
                out.append((path.name, "out", "".join(t) if isinstance(t, list) else str(t)))
    return out


def notebook_lines(folder: Path) -> list[tuple[str, str, str]]:
    """(notebook, "src" or "out", line) for every line of every code cell and saved output."""
    return [(name, kind, line) for name, kind, text in notebook_texts(folder) for line in text.splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--min-weight", type=float, default=0.35)
    args = ap.parse_args()
    kb = load_knowledge()
    lines = notebook_lines(args.folder)
    symptoms = [(e.id, s.pattern, s.weight, compile_pattern(s.pattern))
                for e in kb.entries if e.id.startswith("RT-") for s in e.symptoms if s.weight >= args.min_weight]
    hits: Counter = Counter()
    where: dict = defaultdict(list)
    for name, kind, line in lines:
        for entry_id, pattern, weight, compiled in symptoms:
            if compiled.search(line):
                hits[(entry_id, pattern, weight, kind)] += 1
                where[(entry_id, pattern, weight, kind)].append(f"{name}: {line.strip()[:110]}")
    print(f"{len({n for n, _, _ in lines})} notebooks, {len(lines)} lines; {len(symptoms)} runtime symptoms "
          f"of weight >= {args.min_weight}")
    print(f"symptoms matching no line: {len(symptoms) - len({k[:3] for k in hits})}")
    for (entry_id, pattern, weight, kind), n in hits.most_common():
        print(f"{n:6d} {kind}  {weight:.2f}  {entry_id}  {pattern[:80]}")
        for example in where[(entry_id, pattern, weight, kind)][:2]:
            print(f"           {example}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
