"""The knowledge base loads, rejects bad entries at their line, and agrees with jsonschema."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from doctor.kb import KnowledgeError, load_knowledge
from doctor.kb.schema import json_schema
from doctor.kb.yamlnodes import load_with_marks

GOOD = textwrap.dedent("""\
    - id: ENV-TEST-DRIVER
      title: Driver too old for this torch
      severity: error
      category: cuda-torch-mismatch
      area: env
      when:
        all:
          - {fact: torch.cuda_build, present: true}
          - {fact: nvml.driver_cuda, version_lt: {fact: torch.cuda_build}}
      explain: PyTorch wants CUDA {torch.cuda_build}; the driver gives {nvml.driver_cuda}.
      refs: [unsloth/_gpu_init.py:209]
      examples:
        match: [{facts: {torch.cuda_build: "12.8", nvml.driver_cuda: "12.2"}}]
        no_match: [{facts: {torch.cuda_build: "12.8", nvml.driver_cuda: "13.0"}}]
""")


def write(tmp_path: Path, text: str, name: str = "k.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_real_knowledge_base_loads_and_validates_against_jsonschema() -> None:
    kb = load_knowledge()
    assert len(kb) > 0
    validator = jsonschema.Draft202012Validator(json_schema())
    for entry in kb.entries:
        errors = list(validator.iter_errors([dict(entry.raw)]))
        assert not errors, f"{entry.id}: {errors[0].message}"


def test_published_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_good_entry_loads(tmp_path: Path) -> None:
    kb = load_knowledge([write(tmp_path, GOOD)])
    entry = kb.get("ENV-TEST-DRIVER")
    assert entry is not None and entry.line == 1 and entry.fires_in_scan


@pytest.mark.parametrize("bad, line, col, words", [
    (GOOD.replace("severity: error", "severity: fatal"), 3, 13, "not one of"),
    (GOOD.replace("version_lt:", "verison_lt:"), 9, 34, "did you mean 'version_lt'"),
    (GOOD.replace("  refs: [unsloth/_gpu_init.py:209]\n", ""), 1, 3, "missing required key 'refs'"),
    (GOOD.replace("id: ENV-TEST-DRIVER", "id: lower-case"), 1, 7, "does not match the pattern"),
    (GOOD.replace("{fact: torch.cuda_build, present: true}",
                  "{fact: torch.cuda_build, version_in: 'not a spec'}"), 8, 46, "PEP 440"),
])
def test_bad_entry_is_reported_at_its_line_and_column(tmp_path: Path, bad: str, line: int, col: int, words: str) -> None:
    path = write(tmp_path, bad)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge([path])
    rendered = str(info.value)
    assert f"k.yaml:{line}:{col}:" in rendered, rendered
    assert words in rendered


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge([write(tmp_path, "- id: X\n  title: [unclosed\n")])
    assert "k.yaml:3:1: YAML syntax" in str(info.value)


def test_backtracking_regex_and_lookaround_refused(tmp_path: Path) -> None:
    bad = GOOD.replace("  explain:", '  symptoms: ["(?=driver)x"]\n  explain:')
    with pytest.raises(KnowledgeError) as info:
        load_knowledge([write(tmp_path, bad)])
    assert "lookahead" in str(info.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, GOOD, "a.yaml")
    b = write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge([a, b])
    assert "duplicate id ENV-TEST-DRIVER" in str(info.value)


def test_marks_track_nested_values() -> None:
    data, marks = load_with_marks("a:\n  b:\n    - x\n    - {c: 1}\n")
    assert data == {"a": {"b": ["x", {"c": 1}]}}
    assert marks[("a", "b", 1, "c")].line == 4


def test_every_entry_cites_a_source() -> None:
    for entry in load_knowledge().entries:
        assert entry.refs and all(len(r) >= 8 for r in entry.refs), entry.id


def test_schema_json_is_serialisable() -> None:
    assert json.loads(json.dumps(json_schema()))["$defs"]["entry"]["required"]


def test_a_reference_to_an_undefined_entry_is_reported(tmp_path: Path) -> None:
    bad = GOOD.replace("  refs: [unsloth/_gpu_init.py:209]\n",
                       "  refs: [unsloth/_gpu_init.py:209]\n  explains: [ENV-NOT-THERE]\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge([write(tmp_path, bad)])
    assert "ENV-TEST-DRIVER refers to ENV-NOT-THERE, which no entry defines" in str(info.value)


def test_no_knowledge_text_writes_a_plural_as_s_in_brackets(knowledge_base) -> None:
    """"1 tensor(s)" reads badly: `{count|tensor|tensors}` gives the right form. Quotes of
    other tools' messages ("Error(s) in loading state_dict") are theirs and stay."""
    import re

    for entry in knowledge_base.entries:
        for text in (entry.title, entry.explain or "", *(f.text for f in entry.fixes)):
            assert not re.search(r"[a-z]\(s\)", text.replace("Error(s)", "")), f"{entry.id}: {text}"
