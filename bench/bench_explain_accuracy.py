"""How well does `explain` name the cause of real error reports?

Runs the explain ranking over every case in fixtures/tracebacks (real error text that users
posted in public GitHub issues, each labelled with the knowledge entry that describes its cause)
and prints top-1 / top-3 accuracy, the misses, and the same figures for a naive baseline
("the entry whose pattern matches the last line wins", no weights), so a change to weights or
patterns can be judged against something simple.

    .venv/bin/python bench/bench_explain_accuracy.py [--strict] [--verbose]

--strict counts only `expected`, not `also_acceptable`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.kb import load_knowledge  # noqa: E402
from doctor.textmatch import compile_pattern  # noqa: E402

CORPUS = ROOT / "fixtures" / "tracebacks"


def _ids_from(result: Any) -> list[str]:
    """Entry ids, best first, from whatever the ranking returned."""
    items = result
    for attr in ("candidates", "matches", "findings", "ranked"):
        if hasattr(result, attr):
            items = getattr(result, attr)
            break
    out: list[str] = []
    for item in items or []:
        if isinstance(item, str):
            eid = item
        elif hasattr(item, "entry"):
            eid = item.entry.id
        elif hasattr(item, "entry_id"):
            eid = item.entry_id
        elif hasattr(item, "id"):
            eid = item.id
        elif isinstance(item, dict):
            eid = item.get("id") or item.get("entry_id")
        else:
            continue
        if eid and eid not in out:
            out.append(eid)
    return out


def ranker(kb: Any) -> tuple[str, Callable[[str], list[str]]]:
    """explain's own ranking when the explain package offers it, else the engine's."""
    diagnose = None
    for module in ("doctor.explainer", "doctor.explainer.diagnosis", "doctor.explainer.diagnose"):
        try:
            candidate = getattr(importlib.import_module(module), "diagnose", None)
        except ImportError:
            continue
        if callable(candidate):
            diagnose = candidate
            break
    if diagnose is not None:
        return "doctor.explainer.diagnose", lambda text: _ids_from(diagnose(text, kb, facts=None, top=3))
    from doctor.engine import match_text
    return "doctor.engine.match_text", lambda text: _ids_from(match_text(kb, text))


def baseline_last_line(kb: Any) -> Callable[[str], list[str]]:
    """Naive baseline: every entry whose any pattern matches; the latest matching line wins."""
    compiled = [(e.id, [compile_pattern(s.pattern) for s in e.symptoms]) for e in kb.entries if e.symptoms]

    def rank(text: str) -> list[str]:
        last: dict[str, int] = {}
        for no, line in enumerate(text.splitlines(), start=1):
            for eid, pats in compiled:
                if any(p.search(line) for p in pats):
                    last[eid] = no
        return [eid for eid, _ in sorted(last.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rank


def evaluate(cases: list[tuple[Path, dict]], rank: Callable[[str], list[str]], strict: bool):
    top1 = top3 = 0
    misses = []
    elapsed = 0.0
    for path, case in cases:
        ok = {case["expected"]} if strict else {case["expected"], *case.get("also_acceptable", [])}
        t0 = time.perf_counter()
        ids = rank(case["text"])
        elapsed += time.perf_counter() - t0
        if ids[:1] and ids[0] in ok:
            top1 += 1
        if ok & set(ids[:3]):
            top3 += 1
        if not (ids[:1] and ids[0] in ok):
            misses.append((path.stem, case["expected"], ids[:3]))
    return top1, top3, misses, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strict", action="store_true", help="count only `expected`")
    ap.add_argument("--verbose", action="store_true", help="list every miss of the baseline too")
    args = ap.parse_args()

    kb = load_knowledge()
    cases = [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sorted(CORPUS.glob("*.yaml"))]
    n = len(cases)
    if not n:
        print("no cases in", CORPUS)
        return 1
    name, rank = ranker(kb)
    print(f"corpus: {n} real error reports; knowledge base: {len(kb.entries)} entries; "
          f"{'strict' if args.strict else 'expected or also_acceptable'}")
    rankers = [(name, rank)]
    if name != "doctor.engine.match_text":
        from doctor.engine import match_text
        rankers.append(("doctor.engine.match_text (patterns only)",
                        lambda text: _ids_from(match_text(kb, text))))
    rankers.append(("baseline: last matching line, no weights", baseline_last_line(kb)))
    rows = []
    for label, fn in rankers:
        top1, top3, misses, elapsed = evaluate(cases, fn, args.strict)
        rows.append((label, top1, top3, misses, elapsed))
        print(f"  {label:45s} top-1 {top1:3d}/{n} = {100 * top1 / n:5.1f}%   "
              f"top-3 {top3:3d}/{n} = {100 * top3 / n:5.1f}%   {1000 * elapsed / n:6.2f} ms/case")
    for label, _, _, misses, _ in (rows if args.verbose else rows[:1]):
        print(f"\nmisses of {label} (case: expected -> got top 3):")
        for stem, expected, got in misses:
            print(f"  {stem}: {expected} -> {', '.join(got) or '(nothing matched)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
