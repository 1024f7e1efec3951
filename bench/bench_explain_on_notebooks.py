"""`explain` on the saved outputs of official notebooks that work: a false-alarm audit.

    python bench/bench_explain_on_notebooks.py NB_DIR [--verbose]

Users paste the output of their cells, and the official notebooks (unslothai/notebooks `nb/`)
were saved after runs that worked. Every saved output of a code cell is explained on its own,
as a user would paste it (no live facts). An answer at or above explain's claim level (WEAK)
on a healthy output is a false alarm unless the output really shows a problem (a few saved
outputs hold a warning or a caught error that is true); a lead below it is noise a user sees
under "Weak leads". Baseline: the same outputs through the knowledge base's patterns alone
(any symptom at or above WEAK matching a line), which is what explain starts from.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.engine import match_text  # noqa: E402
from doctor.explainer.diagnosis import WEAK, diagnose  # noqa: E402
from doctor.kb import load_knowledge  # noqa: E402


def saved_outputs(folder: Path) -> list[tuple[str, str]]:
    """(notebook, text) of every saved stream or plain-text output of a code cell."""
    out = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            for o in cell.get("outputs", []) or []:
                t = o.get("text") or (o.get("data") or {}).get("text/plain") or o.get("traceback") or []
                text = "".join(t) if isinstance(t, list) else str(t)
                if text.strip():
                    out.append((path.name, text))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the notebooks folder (unslothai/notebooks nb/)")
    ap.add_argument("--verbose", action="store_true", help="show one output per entry that answered")
    args = ap.parse_args()
    kb = load_knowledge()
    runtime = [e for e in kb.entries if e.area == "runtime"]
    outputs = saved_outputs(args.folder)
    claims: Counter[str] = Counter()
    leads: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    shown: dict[str, tuple[str, str]] = {}
    for name, text in outputs:
        top = diagnose(text, kb, facts=None, top=3).diagnoses[:1]
        for d in top:
            (claims if d.confidence >= WEAK else leads)[d.id] += 1
            shown.setdefault(d.id, (name, text.strip().splitlines()[0][:120]))
        found = {m.entry.id for m in match_text(kb, text) if m.score >= WEAK and m.entry in runtime}
        patterns.update(found)
    print(f"{len(outputs)} saved outputs of {len({n for n, _ in outputs})} notebooks")
    print(f"  explain claims a cause (top answer >= {WEAK}): {sum(claims.values())} outputs")
    print(f"  explain gives only a weak lead:                 {sum(leads.values())} outputs")
    print(f"  baseline, a runtime symptom >= {WEAK} on a line: {sum(patterns.values())} (output, entry) pairs")
    for title, counts in (("claims", claims), ("weak leads", leads)):
        print(f"\n{title} by entry:")
        for entry_id, n in counts.most_common():
            where = f"   e.g. {shown[entry_id][0]}: {shown[entry_id][1]!r}" if args.verbose else ""
            print(f"  {n:4d}  {entry_id}{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
