"""How well does `explain` name the cause of real error reports?

Runs explain over every case in fixtures/tracebacks (real error text that users posted in
public issues, each labelled with its cause: a knowledge entry `RT-...`, a structural
diagnosis `ST-...`, or `site:<file>`, the library file that raises the message) and reports
top-1 / top-3 accuracy on the development and the test split separately. The test split is
named in fixtures/tracebacks/index.json and was frozen before any change that could use it;
the bench names that commit. Tune on the development split only.

It also prints a calibration table (top-1 confidence bins against top-1 accuracy) per split,
and, for the knowledge entries alone, the same figures for a naive baseline ("the entry
whose pattern matches the last line wins", no weights).

    .venv/bin/python bench/bench_explain_accuracy.py [--strict] [--verbose] [--show-test-misses]

--strict counts only `expected`, not `also_acceptable`.

Each split is scored twice: by its labels as written, and with one equivalence rule, the same
for both splits and decided from the knowledge base and the raise-site index, never from a
case's label beyond its file: a knowledge entry `RT-...` and `site:<file>` count as the same
answer when the entry's own symptom (weight >= 0.75) matches the paste's error line and a
template of <file> in the index fits that same line, whole or cut short as explain
matches it (the entry and the site name one message;
the entry says more about it). The figures by labels as written stay the headline.
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.explainer.diagnosis import diagnose  # noqa: E402
from doctor.explainer.labels import ranked_labels  # noqa: E402
from doctor.kb import load_knowledge  # noqa: E402
from doctor.textmatch import compile_pattern  # noqa: E402

CORPUS = ROOT / "fixtures" / "tracebacks"
INDEX = CORPUS / "index.json"
BINS = (0.0, 0.35, 0.5, 0.7, 0.85, 1.01)

Ranker = Callable[[str], list[tuple[str, float]]]


def load_cases() -> tuple[list[tuple[str, dict]], set[str]]:
    cases = [(p.stem, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sorted(CORPUS.glob("*.yaml"))]
    return cases, split_names("test")


# The splits named in the index: `test` (the current, third split), `test_fourth`, `test_fifth`
# and `test_previous` (the second) are held out and never tuned on; `retired_test` (the first)
# is development since the second was frozen, reported apart so earlier figures compare.
HELD_OUT = ("test", "test_fourth", "test_fifth", "test_previous")


@functools.lru_cache(maxsize=None)
def _index() -> dict:
    return json.loads(INDEX.read_text(encoding="utf-8"))


def split_names(key: str) -> set[str]:
    """The cases the index names under `key` (empty when it names none)."""
    return set(_index().get(key, []))


def held_out_names() -> set[str]:
    """Every case no tuning may read: the cases of every held-out split."""
    return set().union(*(split_names(k) for k in HELD_OUT))


def frozen_at(key: str = "test") -> str:
    """The commit that first recorded a test split (the oldest of the unbroken run of commits
    whose index names exactly these cases under `key`), and whether the working copy still equals it."""
    rel = INDEX.relative_to(ROOT).as_posix()
    now = sorted(split_names(key))
    try:
        commits = [c for c in subprocess.run(["git", "log", "--format=%h %cs", "--", rel], cwd=ROOT, text=True,
                                             capture_output=True, check=True).stdout.split("\n") if c.strip()]
        first = None
        for commit in commits:   # newest first
            then = json.loads(subprocess.run(["git", "show", f"{commit.split()[0]}:{rel}"], cwd=ROOT, text=True,
                                             capture_output=True, check=True).stdout).get(key, [])
            if sorted(then) != now:
                break
            first = commit
    except (subprocess.CalledProcessError, IndexError, ValueError, OSError):
        return "unknown (not a git checkout)"
    return first or "not committed yet (the split in the working copy differs from every commit)"


def explain_ranker(kb) -> Ranker:
    return lambda text: ranked_labels(diagnose(text, kb, facts=None, top=3))


def baseline_last_line(kb) -> Ranker:
    """Naive baseline: every entry whose any pattern matches; the latest matching line wins."""
    compiled = [(e.id, [compile_pattern(s.pattern) for s in e.symptoms]) for e in kb.entries if e.symptoms]

    def rank(text: str) -> list[tuple[str, float]]:
        last: dict[str, int] = {}
        for no, line in enumerate(text.splitlines(), start=1):
            for eid, pats in compiled:
                if any(p.search(line) for p in pats):
                    last[eid] = no
        return [(eid, 1.0) for eid, _ in sorted(last.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rank


def evaluate(cases: list[tuple[str, dict]], rank: Ranker, strict: bool, same_message: bool = False) -> dict:
    top1 = top3 = equivalent = 0
    misses, scored = [], []
    kinds: dict[str, list[int]] = {}
    audited = 0
    disputed: list[float] = []   # confidences of those misses
    elapsed = 0.0
    for name, case in cases:
        ok = {case["expected"]} if strict else {case["expected"], *case.get("also_acceptable", [])}
        t0 = time.perf_counter()
        ranked = rank(case["text"])
        elapsed += time.perf_counter() - t0
        labels = [label for label, _ in ranked]
        if same_message and labels:
            extra = {lab for lab in labels[:3] if lab not in ok and any(
                same_message_pair(lab, o, case["text"]) for o in ok)}
            equivalent += bool(labels[0] in extra)
            ok = ok | extra
        right = bool(labels) and labels[0] in ok
        top1 += right
        top3 += bool(ok & set(labels[:3]))
        scored.append((ranked[0][1] if ranked else None, right))
        kind = kinds.setdefault(_kind(case["expected"]), [0, 0, 0])
        kind[0] += right
        kind[1] += bool(ok & set(labels[:3]))
        kind[2] += 1
        if not right:
            misses.append((name, case["expected"], ranked[:3]))
            if labels and labels[0].startswith("RT-") and entry_names_the_error(labels[0], case["text"]):
                audited += 1
                disputed.append(ranked[0][1])
    return {"n": len(cases), "top1": top1, "top3": top3, "misses": misses, "scored": scored,
            "ms": 1000 * elapsed / max(1, len(cases)), "kinds": kinds, "audited": audited,
            "disputed": disputed, "equivalent": equivalent}


_KB = None


def entry_names_the_error(entry_id: str, text: str) -> bool:
    """The entry's own symptom (weight >= 0.75) matches the error line of the text: the case's
    label and an entry that says more about the same message disagree (a label to review)."""
    entry = _KB.get(entry_id) if _KB is not None else None
    exc_type, message = _error_line(text)
    line = f"{exc_type}: {message}" if exc_type else message
    return entry is not None and any(compile_pattern(sym.pattern).search(line)
                                     for sym in entry.symptoms if sym.weight >= 0.75)


def same_message_pair(a: str, b: str, text: str) -> bool:
    """A knowledge entry and a raise site name the same message: one label is an entry
    `RT-...` whose own symptom (weight >= 0.75) matches the paste's error line, the other is
    `site:<file>` where a template of the raise-site index fits that same line. Decided from
    the knowledge base and the index alone, for every case of either split alike."""
    entry, site = (a, b) if a.startswith("RT-") else (b, a)
    if not (entry.startswith("RT-") and site.startswith("site:")):
        return False
    return entry_names_the_error(entry, text) and site[len("site:"):] in _files_raising(text)


def _files_raising(text: str) -> set[str]:
    from doctor.explainer.raiseindex import default_index, history_index, second_tier_index

    exc_type, message = _error_line(text)
    indexes = (default_index(), second_tier_index(), history_index())
    return {item.site.file for index in indexes   # as explain matches: whole, or its opening cut short
            for _, item in [*index.match(message, exc_type), *index.cut_short(message)]}


def _error_line(text: str) -> tuple[str, str]:
    from doctor.explainer.parse import parse_text

    final = parse_text(text).final
    if final is not None and final.message:
        return final.type, final.message
    return "", text.strip().splitlines()[-1] if text.strip() else ""


def _kind(label: str) -> str:
    return "knowledge entry" if label.startswith("RT-") else "structural" if label.startswith("ST-") else "raise site"


def calibration(scored: list[tuple[float | None, bool]], disputed: list[float]) -> list[str]:
    rows = []
    none = sum(1 for c, _ in scored if c is None)
    for lo, hi in zip(BINS, BINS[1:]):
        inside = [r for c, r in scored if c is not None and lo <= c < hi]
        if inside:
            acc = sum(inside) / len(inside)
            rows.append(f"    confidence {lo:.2f}-{min(hi, 1.0):.2f}: {len(inside):3d} answers, "
                        f"{sum(inside):3d} right = {100 * acc:5.1f}%")
    if none:
        rows.append(f"    no answer:              {none:3d}")
    right = [c for c, r in scored if c is not None and r]
    wrong = [c for c, r in scored if c is not None and not r]
    if right and wrong:
        # AUROC: the chance that a right answer is more confident than a wrong one (0.5 = no
        # better than a coin); Brier: mean squared gap between confidence and right (1) / wrong (0)
        auroc = sum((a > b) + 0.5 * (a == b) for a in right for b in wrong) / (len(right) * len(wrong))
        brier = sum((c - r) ** 2 for c, r in scored if c is not None) / (len(right) + len(wrong))
        rows.append(f"    AUROC of top-1 confidence (right vs wrong): {auroc:.3f}   Brier score: {brier:.3f}")
        rows.append(f"    mean top-1 confidence: right {sum(right) / len(right):.2f}, "
                    f"wrong {sum(wrong) / len(wrong):.2f}")
        rest = list(wrong)
        for c in disputed:
            rest.remove(c)
        if disputed and rest:
            rows.append(f"    (wrong, leaving out the {len(disputed)} label/entry disagreements: "
                        f"{sum(rest) / len(rest):.2f})")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strict", action="store_true", help="count only `expected`")
    ap.add_argument("--verbose", action="store_true", help="list the development misses")
    ap.add_argument("--only", metavar="PREFIXES", default="",
                    help="score only the cases whose names start with one of these comma-separated prefixes "
                         "(a round of development reports: --only dv-,dw-)")
    ap.add_argument("--show-test-misses", action="store_true",
                    help="list the test misses too (read them, never tune on them)")
    args = ap.parse_args()

    global _KB
    kb = _KB = load_knowledge()
    cases, test_names = load_cases()
    if args.only:
        cases = [c for c in cases if c[0].startswith(tuple(p for p in args.only.split(",") if p))]
    retired, previous = split_names("retired_test"), split_names("test_previous")
    fourth, fifth = split_names("test_fourth"), split_names("test_fifth")
    splits = {"dev": [c for c in cases if c[0] not in held_out_names()],
              "test": [c for c in cases if c[0] in test_names]}
    if fourth:   # held out as well, never tuned on: reported apart, never as development
        splits[f"fourth test split (frozen at {frozen_at('test_fourth')})"] = [c for c in cases if c[0] in fourth]
    if fifth:
        splits[f"fifth test split (frozen at {frozen_at('test_fifth')})"] = [c for c in cases if c[0] in fifth]
    if previous:
        splits["previous test split (second, frozen at 0d0d09f)"] = [c for c in cases if c[0] in previous]
    if retired:   # a part of dev, shown apart so that the earlier rounds' figures stay comparable
        splits["dev, of which the retired first test split"] = [c for c in cases if c[0] in retired]
    print(f"corpus: {len(cases)} real error reports (dev {len(splits['dev'])}, test {len(splits['test'])}, "
          f"previous test {len(previous)}, fourth test {len(fourth)}, fifth test {len(fifth)}); "
          f"knowledge base: {len(kb.entries)} entries; {'strict' if args.strict else 'expected or also_acceptable'}")
    print(f"test split frozen at commit {frozen_at()}")
    rankers = [("explain (entries, structural, raise sites)", explain_ranker(kb)),
               ("baseline: last matching line, no weights", baseline_last_line(kb))]
    for split, subset in splits.items():
        if not subset:
            continue
        print(f"\n{split} split ({len(subset)} cases):")
        results = []
        for label, fn in rankers:
            r = evaluate(subset, fn, args.strict)
            results.append(r)
            n = r["n"]
            print(f"  {label:45s} top-1 {r['top1']:3d}/{n} = {100 * r['top1'] / n:5.1f}%   "
                  f"top-3 {r['top3']:3d}/{n} = {100 * r['top3'] / n:5.1f}%   {r['ms']:6.2f} ms/case")
        print(f"  top-1 misses where the top-1 is a knowledge entry whose own symptom names the error line "
              f"(label and entry disagree on who says more): {results[0]['audited']}")
        same = evaluate(subset, rankers[0][1], args.strict, same_message=True)
        print(f"  explain, an entry and a raise site naming the same message count as one answer "
              f"(rule: bench docstring)   top-1 {same['top1']:3d}/{n} = {100 * same['top1'] / n:5.1f}%   "
              f"top-3 {same['top3']:3d}/{n} = {100 * same['top3'] / n:5.1f}%   "
              f"({same['equivalent']} top-1 counted by the rule)")
        print("  calibration with that rule:")
        print("\n".join(calibration(same["scored"], [])))
        print("  explain by label kind: " + ", ".join(
            f"{k} top-1 {v[0]}/{v[2]}, top-3 {v[1]}/{v[2]}" for k, v in sorted(results[0]["kinds"].items())))
        print("  calibration of explain's top-1 confidence:")
        print("\n".join(calibration(results[0]["scored"], results[0]["disputed"])))
        if (split == "dev" and args.verbose) or (split == "test" and args.show_test_misses):
            print("  misses (case: expected -> got top 3):")
            for name, expected, got in results[0]["misses"]:
                shown = ", ".join(f"{lab} {c:.2f}" for lab, c in got) or "(nothing)"
                print(f"    {name}: {expected} -> {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
