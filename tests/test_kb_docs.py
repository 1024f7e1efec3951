"""`unsloth-doctor kb docs`: one page per knowledge entry and an index, and the reference
committed under docs/rules/ is the one the knowledge base generates today."""
from __future__ import annotations

import re
from pathlib import Path

from doctor.api import load_knowledge
from doctor.kb.docs import MARKER, pages
from tests.helpers.cli import ROOT, run_cli

REFERENCE = ROOT / "docs" / "rules"


def test_the_committed_rules_reference_is_current() -> None:
    expected = pages(load_knowledge().entries)
    committed = {p.name: p.read_text(encoding="utf-8") for p in REFERENCE.glob("*.md")}
    hint = "run 'python -m doctor kb docs docs/rules' and commit the result"
    assert sorted(committed) == sorted(expected), hint
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"{len(stale)} pages out of date ({', '.join(stale[:5])}): {hint}"


def test_every_link_of_the_reference_resolves_and_the_readme_links_it() -> None:
    generated = pages(load_knowledge().entries)
    for name, text in generated.items():
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert target in generated, f"{name} links to {target}"
    assert "docs/rules/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_kb_docs_writes_every_entry_and_removes_only_its_own_stale_pages(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    out.mkdir()
    (out / "GONE-ENTRY.md").write_text(MARKER + "\n\n# GONE-ENTRY: an entry since removed\n")
    (out / "notes.md").write_text("# my own notes\n")
    proc = run_cli("kb", "docs", str(out))
    assert proc.returncode == 0, proc.stderr
    kb = load_knowledge()
    assert f"Wrote {len(kb)} rule pages" in proc.stdout and "removed 1 page" in proc.stdout
    assert not (out / "GONE-ENTRY.md").exists() and (out / "notes.md").read_text() == "# my own notes\n"
    names = {p.stem for p in out.glob("*.md")} - {"README", "notes"}
    assert names == {e.id for e in kb.entries}
    entry = kb.entries[0]
    text = (out / f"{entry.id}.md").read_text()
    assert text.startswith(MARKER) and f"# {entry.id}: {entry.title}" in text and entry.refs[0] in text
    index = (out / "README.md").read_text()
    assert all(f"[{e.id}]({e.id}.md)" in index for e in kb.entries)
    file = tmp_path / "a-file"
    file.write_text("x")
    proc = run_cli("kb", "docs", str(file))
    assert proc.returncode == 2 and "is a file" in proc.stderr
