"""The real-traceback corpus (fixtures/tracebacks) and its link to the runtime knowledge."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from doctor.textmatch import compile_pattern
from tests.helpers.reserved_threads import reserved_urls_in

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "tracebacks"
RUNTIME_KB = ROOT / "knowledge" / "runtime"
# a public thread: a GitHub issue or PR, a Hugging Face model discussion or forum topic, or a
# blog post whose answer settles the cause (CSDN, Qiita)
ISSUE_URL = re.compile(r"^https://(github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+"
                       r"|huggingface\.co/(spaces/|datasets/)?[\w.-]+/[\w.-]+/discussions/\d+"
                       r"|discuss\.huggingface\.co/t/[\w-]+/\d+"
                       r"|blog\.csdn\.net/[\w-]+/article/details/\d+"
                       r"|qiita\.com/[\w-]+/items/\w+)$")
ALLOWED_KEYS = {"source", "expected", "also_acceptable", "note", "text"}
INDEX = json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))
STRUCTURAL = {k for k in INDEX["expected_labels"] if k.startswith("ST-")}
SITE = re.compile(r"^site:(unsloth|unsloth_zoo|trl|peft|transformers|bitsandbytes)/[\w/]+\.py$")


def _label_kind(label: str) -> str:
    """RT (knowledge entry), ST (structural diagnosis) or site (raising library file)."""
    if label.startswith("RT-"):
        return "RT"
    if label in STRUCTURAL:
        return "ST"
    if SITE.match(label):
        return "site"
    return "unknown"


def _cases() -> list[tuple[Path, dict]]:
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sorted(CORPUS.glob("*.yaml"))]


CASES = _cases()


@pytest.fixture(scope="module")
def kb(knowledge_base):
    return knowledge_base


def test_corpus_is_big_enough():
    assert len(CASES) >= 250, f"only {len(CASES)} cases in {CORPUS}"


@pytest.mark.parametrize("path,case", CASES, ids=[p.stem for p, _ in CASES])
def test_case_is_well_formed(path, case):
    assert isinstance(case, dict), "a case is a mapping"
    assert set(case) <= ALLOWED_KEYS, f"unknown keys {set(case) - ALLOWED_KEYS}"
    assert ISSUE_URL.match(case.get("source", "")), f"source must be an issue/PR URL: {case.get('source')!r}"
    assert isinstance(case.get("expected"), str) and _label_kind(case["expected"]) != "unknown"
    assert isinstance(case.get("note"), str) and case["note"].strip()
    assert isinstance(case.get("text"), str) and len(case["text"].strip()) >= 20
    also = case.get("also_acceptable", [])
    assert isinstance(also, list) and all(isinstance(a, str) for a in also)
    assert all(_label_kind(a) != "unknown" for a in also), also
    assert case["expected"] not in also


def test_corpus_index_has_a_frozen_test_split():
    names = {p.stem for p, _ in CASES}
    test = INDEX["test"]
    assert len(test) >= 80 and len(set(test)) == len(test)
    assert set(test) <= names, set(test) - names
    assert len(names - set(test)) >= 80, "the development split is too small to tune on"
    # the retired first split is development now, never part of the current test split
    assert set(INDEX.get("retired_test", [])) <= names - set(test)
    # the previous (second) split is held out too, apart from the current one and from the retired one
    previous = set(INDEX.get("test_previous", []))
    assert previous <= names and not previous & set(test) and not previous & set(INDEX.get("retired_test", []))
    # the fourth split is held out as well, apart from every other split
    fourth = set(INDEX.get("test_fourth", []))
    assert fourth <= names and not fourth & (set(test) | previous | set(INDEX.get("retired_test", [])))
    # and so is the fifth
    fifth = set(INDEX.get("test_fifth", []))
    assert fifth <= names and not fifth & (set(test) | previous | fourth | set(INDEX.get("retired_test", [])))


@pytest.mark.parametrize("path,case", CASES, ids=[p.stem for p, _ in CASES])
def test_case_is_not_a_reserved_thread(path, case):
    assert not reserved_urls_in(case["source"]), f"{path.name} comes from a reserved thread"
    assert not reserved_urls_in(case["text"]), f"{path.name} text links a reserved thread"


def test_sources_are_unique_per_text():
    seen = {}
    for path, case in CASES:
        key = (case["source"], case["text"].strip())
        assert key not in seen, f"{path.name} duplicates {seen[key]}"
        seen[key] = path.name


@pytest.mark.parametrize("path,case", CASES, ids=[p.stem for p, _ in CASES])
def test_expected_ids_exist(kb, path, case):
    for entry_id in [i for i in [case["expected"], *case.get("also_acceptable", [])] if i.startswith("RT-")]:
        assert kb.get(entry_id) is not None, f"{path.name}: no knowledge entry {entry_id}"


def _entry_ids(case: dict) -> list[str]:
    return [i for i in [case["expected"], *case.get("also_acceptable", [])] if i.startswith("RT-")]


# only the development cases labelled with a knowledge entry: the others name a structural
# diagnosis or a raise site, which bench/bench_explain_accuracy.py scores. A test case's label is
# what its thread established; whether an entry's patterns find it is what the bench measures,
# so it is not made to pass here.
HELD_OUT = (set(INDEX["test"]) | set(INDEX.get("test_previous", [])) | set(INDEX.get("test_fourth", []))
            | set(INDEX.get("test_fifth", [])))
ENTRY_CASES = [(p, c) for p, c in CASES if _entry_ids(c) and p.stem not in HELD_OUT
               and p.stem not in set(INDEX.get("uncovered", []))]
UNCOVERED = [(p, c) for p, c in CASES if p.stem in set(INDEX.get("uncovered", []))]


@pytest.mark.parametrize("path,case", ENTRY_CASES, ids=[p.stem for p, _ in ENTRY_CASES])
def test_expected_entry_has_a_symptom_in_the_text(kb, path, case):
    """Ranking quality is measured by bench/bench_explain_accuracy.py; here only that the
    expected entry can be found at all (a symptom of it occurs on some line of the text)."""
    ids = _entry_ids(case)
    lines = case["text"].splitlines()
    for entry_id in ids:
        patterns = [compile_pattern(s.pattern) for s in kb.get(entry_id).symptoms]
        if any(p.search(line) for line in lines for p in patterns):
            return
    pytest.fail(f"{path.name}: none of {ids} has a symptom that matches the text")


@pytest.mark.parametrize("path,case", UNCOVERED, ids=[p.stem for p, _ in UNCOVERED])
def test_an_uncovered_case_is_still_uncovered(kb, path, case):
    """index.json's `uncovered` names development cases no symptom of their entry matches yet;
    once one does, the case leaves the list and the check above applies to it again."""
    lines = case["text"].splitlines()
    for entry_id in _entry_ids(case):
        patterns = [compile_pattern(s.pattern) for s in kb.get(entry_id).symptoms]
        assert not any(p.search(line) for line in lines for p in patterns), \
            f"{path.name}: {entry_id} matches now: take it out of index.json's `uncovered`"


def _runtime_entries() -> list[dict]:
    out = []
    for f in sorted(RUNTIME_KB.glob("*.yaml")):
        out.extend(yaml.safe_load(f.read_text(encoding="utf-8")) or [])
    return out


def test_runtime_entries_cite_no_reserved_thread():
    for entry in _runtime_entries():
        blob = yaml.safe_dump({k: entry.get(k) for k in ("refs", "examples", "explain", "myth")})
        assert not reserved_urls_in(blob), f"{entry['id']} cites a reserved thread"


def test_examples_are_not_copied_from_the_corpus():
    """Entry examples are written for the entry, not pasted from the corpus: otherwise the
    benchmark would grade the knowledge base on its own training data. A single fixed library
    message may of course read the same as a report; a stretch of several lines may not."""
    corpus = [" ".join(case["text"].split()) for _, case in CASES]
    for entry in _runtime_entries():
        for example in entry.get("examples", {}).get("match", []):
            if not isinstance(example, str):
                continue
            flat = " ".join(example.split())
            lines = [ln for ln in example.splitlines() if ln.strip()]
            if len(lines) < 2 and len(flat) < 250:
                continue   # one fixed library message may read the same as a report
            if re.match(r"^[\w.]+(Error|Exception|Warning): ", flat) and 'File "' not in example:
                continue   # one raised message, however long or over several lines, likewise
            for text in corpus:
                assert flat not in text, f"{entry['id']}: example copied from the corpus: {flat[:80]}"


def test_runtime_entries_are_runtime_and_prefixed():
    for entry in _runtime_entries():
        assert entry["id"].startswith("RT-"), entry["id"]
        assert entry["area"] == "runtime", entry["id"]
        assert entry.get("refs"), entry["id"]
