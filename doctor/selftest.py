"""`unsloth-doctor kb test`: every entry's own examples must behave as the entry says.

- text examples: the entry's symptoms must (match) or must not (no_match) hit the text;
- facts examples: the `when:` condition must hold (match) or not hold (no_match);
- probe examples: the named probe, run on the input, must (not) emit the entry's id.
Also reported, without failing: where a text example ranks among all entries, so a generic
symptom that outranks a specific one shows up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import importlib
from functools import lru_cache

from doctor.engine import match_text
from doctor.kb.conditions import evaluate_condition
from doctor.kb.loader import KnowledgeBase
from doctor.kb.model import Entry
from doctor.probes import registry
from doctor.probes.base import ExampleRunner
from doctor.textmatch import compile_pattern

# Modules other than probes whose `EXAMPLES` run knowledge examples; probes declare theirs.
_OTHER_EXAMPLE_MODULES = ("doctor.probes.guard", "doctor.scanner", "doctor.training.rules", "doctor.smoketest.runner",
                          "doctor.distributed.examples", "doctor.project")


@lru_cache(maxsize=1)
def _runners() -> dict[str, ExampleRunner]:
    return example_runners()


def example_runners() -> dict[str, ExampleRunner]:
    """Every example runner by name: each probe's, then the other modules'."""
    runners: dict[str, ExampleRunner] = {}
    for probe in registry.probes():
        runners.update(probe.examples)
    for module in _OTHER_EXAMPLE_MODULES:
        try:
            runners.update(importlib.import_module(module).EXAMPLES)
        except ImportError:   # an optional dependency is missing; its examples can't run
            continue
    return runners


@dataclass(frozen=True)
class ExampleResult:
    entry: Entry
    kind: str          # match | no_match
    index: int
    ok: bool
    detail: str = ""
    rank: int | None = None
    skipped: str | None = None     # a package the example requires is not installed


def _missing(example: Any) -> str | None:
    import importlib.util

    if isinstance(example, dict):
        for name in example.get("requires", ()):
            try:
                found = importlib.util.find_spec(name)
            except (ImportError, ValueError):   # a broken install reads as a missing one
                found = None
            if found is None:
                return name
    return None


def _text_hits(entry: Entry, text: str) -> bool:
    compiled = [compile_pattern(s.pattern) for s in entry.symptoms]
    return any(c.search(line) for line in text.splitlines() for c in compiled)


def _check(kb: KnowledgeBase, entry: Entry, example: Any, expect: bool) -> tuple[bool, str, int | None]:
    if isinstance(example, str) or ("text" in example and "facts" not in example and "probe" not in example):
        text = example if isinstance(example, str) else example["text"]
        hit = _text_hits(entry, text)
        rank = None
        if expect and hit:
            ranked = [m.entry.id for m in match_text(kb, text)]
            rank = ranked.index(entry.id) + 1 if entry.id in ranked else None
        return hit == expect, "" if hit == expect else ("no symptom matched" if expect else "a symptom matched"), rank
    if "facts" in example:
        result = evaluate_condition(entry.when or {}, example["facts"])
        ok = (result is True) == expect
        return ok, "" if ok else f"condition evaluated to {result}", None
    runner = _runners().get(example["probe"])
    if runner is None:
        return False, f"no probe named {example['probe']!r} can run examples", None
    try:
        observations = runner(example.get("input", ""), dict(example.get("options", {})), kb)
    except Exception as exc:  # a probe crash is a test failure, not ours to hide
        return False, f"probe {example['probe']} raised {type(exc).__name__}: {exc}", None
    ids = {o.entry_id for o in observations}
    hit = entry.id in ids
    ok = hit == expect
    return ok, "" if ok else f"probe emitted {sorted(ids) or 'nothing'}", None


def run_examples(kb: KnowledgeBase, only: str | None = None) -> list[ExampleResult]:
    results = []
    for entry in kb.entries:
        if only and entry.id != only:
            continue
        for kind, expect in (("match", True), ("no_match", False)):
            for i, example in enumerate(entry.examples.get(kind, [])):
                missing = _missing(example)
                if missing:
                    results.append(ExampleResult(entry, kind, i, True, f"needs {missing}", skipped=missing))
                    continue
                ok, detail, rank = _check(kb, entry, example, expect)
                results.append(ExampleResult(entry, kind, i, ok, detail, rank))
    return results
