"""`unsloth-doctor kb test`, one pytest case per knowledge entry (the entry id is the test id)."""
from __future__ import annotations

import pytest

from doctor.api import load_knowledge
from doctor.selftest import run_examples

ENTRY_IDS = [e.id for e in load_knowledge()]


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_entry_behaves_as_its_examples_say(knowledge_base, entry_id: str) -> None:
    results = run_examples(knowledge_base, entry_id)
    assert results, f"{entry_id} has no examples"
    failed = [f"examples.{r.kind}[{r.index}]: {r.detail}" for r in results if not r.ok]
    assert failed == []
