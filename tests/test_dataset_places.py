"""Places that mean something in each format: Parquet rows (it has no lines), CSV lines
without a character column, JSON Lines line and column."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from doctor import api
from doctor.report.groups import group_findings

pa = pytest.importorskip("pyarrow")

ROWS = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""},
        {"instruction": "e\x07x", "output": "f"}, {"instruction": "a", "output": "b"},
        {"instruction": None, "output": "h"}]


def test_parquet_findings_name_rows_and_fields(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    findings = {f.id: f for f in api.scan([str(path)], env=False).findings}
    assert set(findings) >= {"DATA-FIELD-EMPTY", "DATA-FIELD-NULL", "DATA-ROW-DUPLICATE", "DATA-TEXT-CONTROL-CHARS"}
    for finding in findings.values():
        assert not re.search(r"\b[Ll]ines?\b|\bcolumn \d|byte-for-byte", finding.message), finding.message
        assert str(finding.location).endswith(f"train.parquet row {finding.location.row}")
    assert findings["DATA-FIELD-EMPTY"].message.startswith('Row 2: "output" is empty')
    assert findings["DATA-ROW-DUPLICATE"].message.startswith("Row 4 repeats row 1 exactly")
    assert findings["DATA-FIELD-NULL"].location.row == 5


def test_many_parquet_rows_are_listed_as_rows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist([{"instruction": f"q{i}", "output": ""} for i in range(5)]), path)
    groups = group_findings(api.scan([str(path)], env=False).findings)
    assert groups[0].places() == "rows 1, 2, 3 (+2 more)"


def test_csv_findings_have_lines_but_no_character_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('instruction,output\na,b\n"multi\nline",\nc,d\n')
    findings = [f for f in api.scan([str(path)], env=False).findings if f.id == "DATA-FIELD-EMPTY"]
    assert len(findings) == 1
    assert findings[0].location.line == 3 and findings[0].location.column is None   # the record starts on line 3
    assert findings[0].message.startswith('Line 3: "output" is empty')


def test_jsonl_keeps_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": ""}\n')
    finding = next(f for f in api.scan([str(path)], env=False).findings if f.id == "DATA-FIELD-EMPTY")
    assert re.match(r'Line 2, column \d+: "output" is empty', finding.message)
    assert finding.location.row is None and finding.location.column
