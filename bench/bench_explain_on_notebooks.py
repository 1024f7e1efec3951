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
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.engine import match_text  # noqa: E402
from bench_symptoms_on_notebooks import notebook_texts  # noqa: E402
from doctor.explainer.diagnosis import WEAK, diagnose_log, report_reason  # noqa: E402
from doctor.explainer.parse import parse_text  # noqa: E402
from doctor.kb import load_knowledge  # noqa: E402


def saved_outputs(folder: Path) -> list[tuple[str, str]]:
    """(notebook, text) of every saved output of a code cell that has any text."""
    return [(name, text) for name, kind, text in notebook_texts(folder) if kind == "out" and text.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the notebooks folder (unslothai/notebooks nb/)")
    ap.add_argument("--verbose", action="store_true", help="show one output per entry that answered")
    args = ap.parse_args()
    kb = load_knowledge()
    outputs = saved_outputs(args.folder)
    claims: Counter[str] = Counter()
    leads: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    shown: dict[str, tuple[str, str]] = {}
    prior = 0   # the update-first lead, the one answer no symptom gives
    by_wording: Counter[str] = Counter()   # outputs led by wording, by why explain read them as a report
    worded: dict[str, tuple[str, str]] = {}
    for name, text in outputs:
        matched = match_text(kb, text)
        log = parse_text(text)
        for d in diagnose_log(log, kb, facts=None, top=3).diagnoses[:1]:
            (claims if d.confidence >= WEAK else leads)[d.id] += 1
            shown.setdefault(d.id, (name, text.strip().splitlines()[0][:120]))
            if d.by_wording:
                why = report_reason(log) or "?"
                by_wording[why] += 1
                final = log.final
                typed = why == "a typed error line" and final is not None
                worded.setdefault(why, (name, f"{final.type}: {final.message}"[:120] if typed
                                        else text.strip().splitlines()[0][:120]))
            else:
                prior += d.id == "RT-STALE-RELEASE" and all(m.entry.id != d.id for m in matched)
        patterns.update({m.entry.id for m in matched if m.score >= WEAK and m.entry.area == "runtime"})
    print(f"{len(outputs)} saved outputs of {len({n for n, _ in outputs})} notebooks")
    print(f"  explain claims a cause (top answer >= {WEAK}): {sum(claims.values())} outputs")
    print(f"  explain gives only a weak lead:                 {sum(leads.values())} outputs")
    print(f"  of which the update-first lead of an unexplained Unsloth report: {prior}")
    print(f"  of which leads by wording only: {sum(by_wording.values())}")
    for why, n in by_wording.most_common():
        example = f"   e.g. {worded[why][0]}: {worded[why][1]!r}" if args.verbose else ""
        print(f"    read as a report for {why}: {n}{example}")
    print(f"  baseline, a runtime symptom >= {WEAK} on a line: {sum(patterns.values())} (output, entry) pairs")
    for title, counts in (("claims", claims), ("weak leads", leads)):
        print(f"\n{title} by entry:")
        for entry_id, n in counts.most_common():
            where = f"   e.g. {shown[entry_id][0]}: {shown[entry_id][1]!r}" if args.verbose else ""
            print(f"  {n:4d}  {entry_id}{where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
