"""The regression corpus of real public datasets (fixtures/datasets/real): every error and
warning the doctor reports on each file is the one annotated in expected.json, no more and no
fewer, and every annotated file carries its license beside it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor import api
from doctor.probes.dataset import PROBE

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "datasets" / "real"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_the_corpus_holds_at_least_25_real_datasets_all_annotated() -> None:
    files = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and PROBE.finds(p))
    assert len(files) >= 25
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_dataset_gets_exactly_its_annotated_findings(name: str, knowledge_base) -> None:
    report = api.scan(data=[str(CORPUS / name)], env=False, kb=knowledge_base, baseline=False)
    found = sorted(f"{f.id}@{f.location.line if f.location else None}" for f in report.findings
                   if f.severity.value in ("error", "warning"))
    assert found == sorted(EXPECTED[name]["findings"])
    assert all(why for why in EXPECTED[name]["findings"].values())   # each one judged, with its reason


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_real_dataset_has_its_license_beside_it(name: str) -> None:
    owner, repo = name.split("/")[:2]
    folder = CORPUS / owner / repo
    assert [p for p in folder.iterdir() if p.name.upper().startswith(("LICENSE", "DATA_LICENSE"))]
