"""`--fix` on real files: repaired copy + rejects, nothing lost, nothing changed twice."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.fixes.dataset import RepairOptions, repair_dataset
from doctor.fixes.journal import Journal
from doctor.probes.dataset import DatasetOptions, scan_dataset

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures/demo/data/train.jsonl"


def read_jsonl(path: Path) -> list:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def demo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "train.jsonl"
    shutil.copy(DEMO, target)
    return target


def test_fix_writes_a_repaired_copy_and_leaves_the_input_alone(tmp_path: Path) -> None:
    data = demo_copy(tmp_path)
    before = data.read_bytes()
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert data.read_bytes() == before
    fixed, rejects = tmp_path / "train.fixed.jsonl", tmp_path / "train.jsonl.rejects.jsonl"
    assert summary.output_path == str(fixed) and fixed.exists() and rejects.exists()
    assert summary.balanced and summary.input_rows == len(before.splitlines())
    assert summary.rejected_rows == 0 and summary.changed_rows == 2   # single quotes, trailing comma
    assert summary.actions["single quotes replaced by double quotes"] == 1
    assert summary.actions["trailing commas removed"] == 1
    obs = scan_dataset(str(fixed), DatasetOptions()).observations
    assert not {o.entry_id for o in obs if o.entry_id.startswith("DATA-JSON")}
    assert len(read_jsonl(fixed)) == summary.repaired_rows


def test_unrepairable_rows_go_to_rejects_with_line_and_reason(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"text": "ok"}\n{"text": "a"}{"text": "b"}\n\n{"text": "caf\xe9"}\n{"text": "cut\n[1, 2]\n')
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    rejects = read_jsonl(tmp_path / "d.jsonl.rejects.jsonl")
    assert [(r["line"], r["entry_id"]) for r in rejects] == [
        (2, "DATA-JSON-TWO-OBJECTS"), (4, "DATA-FILE-INVALID-UTF8"), (5, "DATA-JSON-UNTERMINATED"),
        (6, "DATA-JSON-NOT-OBJECT")]
    assert all(r["reason"] for r in rejects)
    assert rejects[1]["raw_base64"]  # the undecodable bytes are kept exactly
    assert read_jsonl(tmp_path / "d.fixed.jsonl") == [{"text": "ok"}]
    assert summary.blank_lines == 1 and summary.balanced
    assert summary.input_rows == 5 and summary.rejected_rows == 4


def test_running_fix_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    data = demo_copy(tmp_path)
    options = RepairOptions(journal_root=str(tmp_path / "j"))
    repair_dataset(str(data), options)
    first = (tmp_path / "train.fixed.jsonl").read_bytes()
    repair_dataset(str(data), options)
    assert (tmp_path / "train.fixed.jsonl").read_bytes() == first
    again = repair_dataset(str(tmp_path / "train.fixed.jsonl"), options)
    assert again.changed_rows == 0 and again.rejected_rows == 0
    assert (tmp_path / "train.fixed.fixed.jsonl").read_bytes() == first


def test_in_place_keeps_a_backup_that_undo_restores(tmp_path: Path) -> None:
    data = demo_copy(tmp_path)
    before = data.read_bytes()
    journal = tmp_path / "j"
    summary = repair_dataset(str(data), RepairOptions(in_place=True, journal_root=str(journal)))
    assert summary.wrote and summary.backup_path and Path(summary.backup_path).read_bytes() == before
    assert data.read_bytes() != before
    second = repair_dataset(str(data), RepairOptions(in_place=True, journal_root=str(journal)))
    assert not second.wrote   # nothing left to repair: the file is not rewritten
    Journal(journal).undo_last()
    assert data.read_bytes() == before


def test_unsafe_fixes_drop_duplicates_trim_and_convert_sharegpt(tmp_path: Path) -> None:
    data = demo_copy(tmp_path)
    safe = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    unsafe = repair_dataset(str(data), RepairOptions(unsafe_fixes=True, journal_root=str(tmp_path / "j")))
    assert unsafe.balanced and unsafe.rejected_rows == safe.rejected_rows + 1
    rejects = read_jsonl(tmp_path / "train.jsonl.rejects.jsonl")
    assert [r["entry_id"] for r in rejects] == ["DATA-ROW-DUPLICATE"]
    rows = read_jsonl(tmp_path / "train.fixed.jsonl")
    assert not [r for r in rows if "conversations" in r]
    converted = [r for r in rows if "messages" in r]
    assert [m["role"] for m in converted[0]["messages"]] == ["user", "assistant"]


def test_control_characters_and_crlf_in_values_are_cleaned(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a\\u0000b\\r\\nc\\rd\\te"}\n{"text": " keep spaces "}\n')
    repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert read_jsonl(tmp_path / "d.fixed.jsonl") == [{"text": "ab\nc\nd\te"}, {"text": " keep spaces "}]


def test_a_json_array_becomes_json_lines(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"text": "a"}, {"text": "b",}], indent=2))
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    fixed = tmp_path / "d.json.fixed.jsonl"
    assert [orjson.loads(line) for line in fixed.read_text().splitlines()] == [{"text": "a"}, {"text": "b"}]
    assert summary.balanced and summary.input_rows == 2


def test_a_csv_is_repaired_as_csv_with_every_row_kept_or_rejected_by_line(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(b'\xef\xbb\xbfinstruction,input,output\r\n"Say hi","","Hi\x07 there"\r\n'
                     b'007,x,"two\r\nlines"\r\n\r\nonly,two\r\n"Say hi","","Hi\x07 there"\r\n')
    before = data.read_bytes()
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert data.read_bytes() == before and summary.output_path == str(tmp_path / "d.fixed.csv")
    fixed = tmp_path / "d.fixed.csv"
    # Same format, same line ending, no BOM; "007" is still text, not the number 7.
    assert fixed.read_bytes() == (b'instruction,input,output\r\nSay hi,,Hi there\r\n007,x,"two\nlines"\r\n'
                                  b'Say hi,,Hi there\r\n')
    rejects = read_jsonl(tmp_path / "d.csv.rejects.jsonl")
    assert [(r["line"], r["entry_id"]) for r in rejects] == [(6, "DATA-CSV-FIELD-COUNT")]
    assert "2 fields, the header has 3" in rejects[0]["reason"] and json.loads(rejects[0]["text"]) == ["only", "two"]
    assert summary.balanced and (summary.input_rows, summary.changed_rows, summary.blank_lines) == (4, 3, 1)
    assert summary.actions["byte order mark removed"] == 1
    obs = scan_dataset(str(fixed), DatasetOptions()).observations
    assert not {o.entry_id for o in obs} & {"DATA-TEXT-CONTROL-CHARS", "DATA-TEXT-CRLF", "DATA-FILE-BOM"}
    again = repair_dataset(str(fixed), RepairOptions(journal_root=str(tmp_path / "j")))
    assert again.changed_rows == again.rejected_rows == 0
    assert (tmp_path / "d.fixed.fixed.csv").read_bytes() == fixed.read_bytes()
    unsafe = repair_dataset(str(data), RepairOptions(unsafe_fixes=True, journal_root=str(tmp_path / "j")))
    assert unsafe.balanced and unsafe.reasons["DATA-ROW-DUPLICATE"] == 1
    assert "line 7: duplicate of line 2" in unsafe.first_reason["DATA-ROW-DUPLICATE"]


def test_a_tsv_keeps_its_tabs_and_undecodable_rows_are_rejected_losslessly(tmp_path: Path) -> None:
    data = tmp_path / "d.tsv"
    data.write_bytes(b"text\tlabel\na, b\t1\ncaf\xe9\t2\n")
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert (tmp_path / "d.fixed.tsv").read_bytes() == b"text\tlabel\na, b\t1\n"
    rejects = read_jsonl(tmp_path / "d.tsv.rejects.jsonl")
    assert [(r["line"], r["entry_id"]) for r in rejects] == [(3, "DATA-FILE-INVALID-UTF8")]
    assert summary.balanced and summary.input_rows == 2


def test_a_parquet_file_is_repaired_in_place_with_its_schema_and_undo_restores_it(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["ok", "nul\x00here", "ok", "a\r\nb"], "n": [1, 2, 1, 3]}), data)
    before = data.read_bytes()
    journal = tmp_path / "j"
    summary = repair_dataset(str(data), RepairOptions(in_place=True, unsafe_fixes=True, journal_root=str(journal)))
    table = pq.read_table(data)
    assert table.schema.field("n").type == pa.int64()
    assert table.to_pylist() == [{"text": "ok", "n": 1}, {"text": "nulhere", "n": 2}, {"text": "a\nb", "n": 3}]
    rejects = read_jsonl(tmp_path / "d.parquet.rejects.jsonl")
    assert [(r["line"], r["entry_id"]) for r in rejects] == [(3, "DATA-ROW-DUPLICATE")]
    assert summary.balanced and summary.backup_path and Path(summary.backup_path).read_bytes() == before
    second = repair_dataset(str(data), RepairOptions(in_place=True, unsafe_fixes=True, journal_root=str(journal)))
    assert not second.wrote
    Journal(journal).undo_last()
    assert data.read_bytes() == before


def test_records_under_a_key_of_a_json_object_become_json_lines(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"version": "1.0", "data": [{"text": "a\u0007"}, {"text": "b"}]}, indent=2))
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert read_jsonl(tmp_path / "d.json.fixed.jsonl") == [{"text": "a"}, {"text": "b"}]
    assert summary.balanced and summary.input_rows == 2 and summary.changed_rows == 2
    assert any('under "data"' in action for action in summary.actions)
    obs = scan_dataset(str(tmp_path / "d.json.fixed.jsonl"), DatasetOptions()).observations
    assert not {o.entry_id for o in obs}


CELL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), min_size=1, max_size=15), unsafe=st.booleans())
def test_csv_repair_never_loses_a_row(tmp_path: Path, rows: list, unsafe: bool) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)                   # some rows have the wrong number of fields
    data = tmp_path / "p.csv"
    data.write_text(buf.getvalue(), encoding="utf-8", newline="")
    for stale in ("p.fixed.csv", "p.csv.rejects.jsonl"):
        (tmp_path / stale).unlink(missing_ok=True)
    expected = len([r for r in csv.reader(io.StringIO(buf.getvalue(), newline="")) if r]) - 1
    summary = repair_dataset(str(data), RepairOptions(unsafe_fixes=unsafe, journal_root=str(tmp_path / "j")))
    with open(tmp_path / "p.fixed.csv", newline="", encoding="utf-8") as f:
        fixed = [r for r in csv.reader(f) if r][1:]
    rejected = read_jsonl(tmp_path / "p.csv.rejects.jsonl") if (tmp_path / "p.csv.rejects.jsonl").exists() else []
    assert summary.balanced and summary.input_rows == expected
    assert len(fixed) + len(rejected) == expected


# --- property: repaired + rejected = input rows, and good rows survive unchanged ---------------

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
RECORD = st.fixed_dictionaries({"instruction": TEXT, "output": TEXT})
BREAK = st.sampled_from([None, None, "quotes", "comma", "comment", "nan", "glued", "cut", "bytes",
                         "blank", "pretty", "escape"])


def _render(record: dict, how: str | None) -> bytes:
    line = orjson.dumps(record)
    return {
        None: line,
        "quotes": line.replace(b'"instruction"', b"'instruction'"),
        "comma": line[:-1] + b",}",
        "comment": line + b" # note",
        "nan": line[:-1] + b', "score": NaN}',
        "glued": line + line,
        "cut": line[: len(line) // 2],
        "bytes": line.replace(b'"output":"', b'"output":"\xfe'),
        "blank": line + b"\n",
        "pretty": json.dumps(record, indent=2, ensure_ascii=False).encode(),
        "escape": line.replace(b'"output":"', b'"output":"x\\y'),
    }[how]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(RECORD, BREAK), min_size=1, max_size=20), unsafe=st.booleans())
def test_repair_never_loses_a_row(tmp_path: Path, rows: list, unsafe: bool) -> None:
    data = tmp_path / "p.jsonl"
    data.write_bytes(b"\n".join(_render(r, how) for r, how in rows) + b"\n")
    for stale in ("p.fixed.jsonl", "p.jsonl.rejects.jsonl"):
        (tmp_path / stale).unlink(missing_ok=True)
    summary = repair_dataset(str(data), RepairOptions(unsafe_fixes=unsafe, journal_root=str(tmp_path / "j")))
    fixed = read_jsonl(tmp_path / "p.fixed.jsonl")
    rejected = read_jsonl(tmp_path / "p.jsonl.rejects.jsonl")
    assert summary.balanced
    assert len(fixed) + len(rejected) == summary.input_rows == len(rows)
    if not unsafe:
        safe = [record for record, how in rows if how in (None, "quotes", "comma", "comment", "pretty", "blank")]
        assert all(record in fixed for record in safe)


def test_an_escape_that_may_be_python_is_left_to_a_person(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "C:\\\\Program Files (x86)\\\\app"}\n{"text": "path C:\\data"}\n'
                    '{"text": "bell \\x07 or C:\\x86"}\n')
    safe = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert read_jsonl(tmp_path / "d.fixed.jsonl") == [{"text": "C:\\Program Files (x86)\\app"},
                                                      {"text": "path C:\\data"}]
    assert [(r["line"], r["entry_id"]) for r in read_jsonl(tmp_path / "d.jsonl.rejects.jsonl")] == [
        (3, "DATA-JSON-BAD-ESCAPE")]
    unsafe = repair_dataset(str(data), RepairOptions(unsafe_fixes=True, journal_root=str(tmp_path / "j")))
    assert safe.balanced and unsafe.balanced and unsafe.rejected_rows == 0
    assert read_jsonl(tmp_path / "d.fixed.jsonl")[2] == {"text": "bell \\x07 or C:\\x86"}


@pytest.mark.parametrize("name, content", [("empty.csv", b""), ("header.csv", b"text,label\n"),
                                           ("empty.jsonl", b""), ("blank.jsonl", b"\n\n")])
def test_fix_on_a_file_without_rows_writes_empty_outputs_and_says_so(tmp_path: Path, name: str, content: bytes) -> None:
    data = tmp_path / name
    data.write_bytes(content)
    summary = repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j")))
    assert summary.balanced and summary.input_rows == 0 and summary.wrote
    assert Path(summary.output_path).read_bytes() == (b"text,label\n" if name == "header.csv" else b"")
    assert str(summary).startswith(f"0 rows read from {data}")


def test_the_summary_counts_in_words_a_person_reads(tmp_path: Path) -> None:
    data = tmp_path / "one.jsonl"
    data.write_bytes(b'{"text": "a"}\n\n')
    text = str(repair_dataset(str(data), RepairOptions(journal_root=str(tmp_path / "j"))))
    assert text.startswith(f"1 row read from {data}") and "1 blank line dropped" in text


def test_llamafactory_tool_roles_become_tool_calls_and_tool_messages(tmp_path: Path) -> None:
    call = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
    row = {"conversations": [{"from": "human", "value": "Weather in Paris?"}, {"from": "function_call", "value": call},
                             {"from": "observation", "value": "{\"sky\": \"clear\"}"},
                             {"from": "gpt", "value": "Clear skies."}], "tools": "[]"}
    data = tmp_path / "glaive.jsonl"
    data.write_text(json.dumps(row) + "\n")
    summary = repair_dataset(str(data), RepairOptions(unsafe_fixes=True, journal_root=str(tmp_path / "j")))
    assert summary.balanced
    (out,) = read_jsonl(tmp_path / "glaive.fixed.jsonl")
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert out["messages"][1]["tool_calls"] == [{"type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Paris"}}}]
    from doctor.probes.dataset import scan_dataset
    assert scan_dataset(str(tmp_path / "glaive.fixed.jsonl")).observations == []
