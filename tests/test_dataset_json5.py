"""JSON5-isms in .json arrays, .json objects and .jsonl rows: each at its line and column,
since strict parsers and datasets' JSON loader reject the whole file for any of them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.dataset import scan_dataset


def located(path: Path) -> list[tuple[str, int | None, int | None]]:
    return [(o.entry_id, o.location.line, o.location.column) for o in scan_dataset(str(path)).observations]


def test_trailing_comma_after_the_last_element_of_an_array(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": "d"},\n]\n')
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())
    assert located(path) == [("DATA-JSON-TRAILING-COMMA", 3, 38)]
    assert scan_dataset(str(path)).facts["dataset.rows"] == 2


def test_trailing_comma_on_the_closing_line_of_a_one_line_array(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[{"text": "é a"}, {"text": "b"},]')
    assert located(path) == [("DATA-JSON-TRAILING-COMMA", 1, 32)]


def test_a_clean_array_has_no_syntax_finding(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"text": "a, b,"}, {"text": "]"}], indent=2))
    assert located(path) == []


def test_comments_between_elements_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[\n  // first\n  {"text": "a"},\n  {"text": "b"}\n  /* end */\n]\n')
    result = scan_dataset(str(path))
    assert [(o.entry_id, o.location.line, o.location.column) for o in result.observations] == [
        ("DATA-JSON-COMMENT", 2, 3), ("DATA-JSON-COMMENT", 5, 3)]
    assert result.facts["dataset.rows"] == 2


def test_an_indented_element_reports_its_real_column(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('[\n    {"instruction": "c", "output": "d", "x": NaN}\n]\n')
    text = path.read_text().splitlines()[1]
    assert located(path) == [("DATA-JSON-NAN", 2, text.index("NaN") + 1)]


def test_a_json_object_file_with_json5_isms_is_read_for_its_records(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"data": [\n  {"instruction": "a", "output": "b",},\n'
                    '  {\'instruction\': "c", "output": "d"}  // hand-made\n]}\n')
    found = located(path)
    assert ("DATA-JSON-TRAILING-COMMA", 2, 37) in found
    assert ("DATA-JSON-SINGLE-QUOTES", 3, 4) in found
    assert ("DATA-JSON-COMMENT", 3, 40) in found
    ids = {f[0] for f in found}
    assert "DATA-SCHEMA-UNKNOWN" not in ids and "DATA-JSON-MULTILINE" not in ids
    assert scan_dataset(str(path)).facts["dataset.schema"] == "alpaca"


def test_jsonl_rows_report_each_json5_ism_at_its_column(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a",}\n{"text": \'b\'}\n{"text": "c"} // note\n')
    assert located(path) == [("DATA-JSON-TRAILING-COMMA", 1, 13), ("DATA-JSON-SINGLE-QUOTES", 2, 10),
                             ("DATA-JSON-COMMENT", 3, 15)]


def test_the_repair_reads_past_a_comma_after_the_last_element(tmp_path: Path) -> None:
    from doctor.fixes.dataset import RepairOptions, repair_dataset

    path = tmp_path / "data.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": "b"},\n]\n')
    summary = repair_dataset(str(path), RepairOptions(journal_root=str(tmp_path / "j")))
    assert summary.balanced and summary.input_rows == 2
    assert summary.actions["comma after the array's last element dropped"] == 1
    fixed = tmp_path / "data.json.fixed.jsonl"
    assert [json.loads(line) for line in fixed.read_text().splitlines()] == [{"text": "a"}, {"text": "b"}]
    assert scan_dataset(str(fixed)).observations == []
