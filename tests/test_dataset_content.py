"""Format detection and content checks on real files: fields, chat shape, text hygiene."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.probes.dataset import DatasetOptions, scan_dataset
from doctor.probes.dataset.schema import classify

ROOT = Path(__file__).resolve().parent.parent


def write_rows(tmp_path: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def ids_at(path: Path, **options) -> set[tuple[str, int | None]]:
    result = scan_dataset(str(path), DatasetOptions(**options))
    return {(o.entry_id, o.location.line) for o in result.observations}


@pytest.mark.parametrize("keys, schema", [
    (("instruction", "input", "output"), "alpaca"),
    (("instruction", "output"), "alpaca"),
    (("text",), "text"),
    (("prompt", "completion"), "prompt-completion"),
    (("messages",), "messages"),
    (("conversations",), "sharegpt"),
    (("prompt", "chosen", "rejected"), "preference"),
    (("chosen", "rejected"), "preference"),
    (("question", "answer"), "unknown"),
])
def test_formats_are_told_apart_by_their_keys(keys: tuple, schema: str) -> None:
    assert classify(keys).name == schema


def test_a_mixed_file_is_reported_with_counts_and_first_lines(tmp_path: Path) -> None:
    alpaca = {"instruction": "a", "input": "", "output": "b"}
    share = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    rows = [dict(alpaca, output=f"b{i}") for i in range(5)] + [share, dict(alpaca, output="z")]
    result = scan_dataset(str(write_rows(tmp_path, rows)))
    mixed = [o for o in result.observations if o.entry_id == "DATA-SCHEMA-MIXED"]
    assert len(mixed) == 1
    assert mixed[0].values["schemas"] == ("alpaca (instruction, input, output): 6 rows (first at lines 1, 2, 3); "
                                          "sharegpt (conversations): 1 row (line 6)")
    assert result.facts["dataset.schema"] == "mixed"
    assert result.facts["dataset.schema_counts"] == {"alpaca": 6, "sharegpt": 1}


def test_field_problems_name_the_field_and_line(tmp_path: Path) -> None:
    rows = [
        {"instruction": "ok", "input": "", "output": "fine"},
        {"instruction": "no output", "input": ""},
        {"instruction": "null input", "input": None, "output": "x"},
        {"instruction": "number", "input": "", "output": 4},
        {"instruction": "blank", "input": "", "output": "   "},
        {"text": ""},
        {"prompt": "p", "completion": None},
    ]
    found = ids_at(write_rows(tmp_path, rows))
    assert {("DATA-FIELD-MISSING", 2), ("DATA-FIELD-NULL", 3), ("DATA-FIELD-TYPE", 4),
            ("DATA-FIELD-EMPTY", 5), ("DATA-FIELD-EMPTY", 6), ("DATA-FIELD-NULL", 7)} <= found
    assert not {f for f in found if f[1] == 1 and f[0] != "DATA-SCHEMA-MIXED"}


def test_alpaca_without_input_is_fine(tmp_path: Path) -> None:
    """The seed says input is required; it is not."""
    found = ids_at(write_rows(tmp_path, [{"instruction": "a", "output": "b"}]))
    assert not {f for f in found if f[0].startswith("DATA-FIELD")}


def test_chat_shape_problems(tmp_path: Path) -> None:
    def msgs(*turns):
        return {"messages": [{"role": r, "content": c} for r, c in turns]}
    rows = [
        msgs(("system", "s"), ("user", "q"), ("assistant", "a")),            # fine
        msgs(("human", "q"), ("gpt", "a")),                                  # ShareGPT roles
        msgs(("user", "q"), ("user", "q2"), ("assistant", "a")),             # not alternating
        msgs(("user", "q"), ("system", "s"), ("assistant", "a")),            # system later
        msgs(("user", "q")),                                                 # no assistant
        msgs(("user", "q"), ("assistant", "")),                              # empty answer
        msgs(("user", "<|im_start|>user\nq<|im_end|>"), ("assistant", "a")), # template tokens
        {"conversations": [{"from": "customer", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {"messages": ["q", "a"]},
    ]
    found = ids_at(write_rows(tmp_path, rows))
    assert {("DATA-CHAT-SHAREGPT-ROLES", 2), ("DATA-CHAT-NOT-ALTERNATING", 3),
            ("DATA-CHAT-SYSTEM-NOT-FIRST", 4), ("DATA-CHAT-NO-ASSISTANT", 5),
            ("DATA-CHAT-EMPTY-TURN", 6), ("DATA-CHAT-TEMPLATE-TOKENS", 7),
            ("DATA-CHAT-ROLE-UNKNOWN", 8), ("DATA-CHAT-BAD-TURN", 9)} <= found
    assert not {f for f in found if f[1] == 1 and f[0] != "DATA-SCHEMA-MIXED"}


def test_text_hygiene(tmp_path: Path) -> None:
    rows = [
        {"text": "clean text, café 数据 “quotes”"},
        {"text": "nul\u0000 and bell\u0007"},
        {"text": "lost char \ufffd here"},
        {"text": "the cafÃ© doesnâ€™t open"},
        {"text": "windows\r\nline"},
        {"instruction": "[INST] do it [/INST]", "output": "ok"},
    ]
    found = ids_at(write_rows(tmp_path, rows))
    assert {("DATA-TEXT-CONTROL-CHARS", 2), ("DATA-TEXT-REPLACEMENT-CHAR", 3),
            ("DATA-TEXT-MOJIBAKE", 4), ("DATA-TEXT-CRLF", 5), ("DATA-CHAT-TEMPLATE-TOKENS", 6)} <= found
    assert not {f for f in found if f[1] == 1 and f[0] != "DATA-SCHEMA-MIXED"}


def test_duplicates_and_long_rows(tmp_path: Path) -> None:
    rows = [{"text": "a"}, {"text": "b"}, {"text": "a"}, {"text": "x" * 500}, {"text": "a"}]
    result = scan_dataset(str(write_rows(tmp_path, rows)), DatasetOptions(long_row_bytes=200))
    dups = [(o.location.line, o.values["first_line"]) for o in result.observations
            if o.entry_id == "DATA-ROW-DUPLICATE"]
    assert dups == [(3, 1), (5, 1)]
    assert [o.location.line for o in result.observations if o.entry_id == "DATA-ROW-LONG"] == [4]
    assert result.facts["dataset.duplicates"] == 2


def test_the_batched_fast_path_and_row_by_row_agree(tmp_path: Path) -> None:
    """A big clean block goes through the fast path; one bad row sends it row by row.
    Both must report the same things at the same lines."""
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(5000)]
    rows[4100] = {"instruction": "q", "input": "", "output": "nul\u0001"}
    rows[4200] = dict(rows[10])
    clean = write_rows(tmp_path, rows, "clean.jsonl")
    found = ids_at(clean)
    assert found == {("DATA-TEXT-CONTROL-CHARS", 4101), ("DATA-ROW-DUPLICATE", 4201)}
    broken = tmp_path / "broken.jsonl"
    broken.write_text(clean.read_text().replace('"output": "a4300"', "'output': 'a4300'"))
    assert ids_at(broken) == found | {("DATA-JSON-SINGLE-QUOTES", 4301)}


def test_csv_and_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    csv = tmp_path / "data.csv"
    csv.write_text('instruction,input,output\n"Say hi","",hi\n"Add","2+2",\n')
    assert ("DATA-FIELD-NULL", 3) in ids_at(csv) or ("DATA-FIELD-EMPTY", 3) in ids_at(csv)
    table = pa.table({"instruction": ["a", "b", "a"], "output": ["x", "", "x"]})
    pq.write_table(table, tmp_path / "data.parquet")
    found = ids_at(tmp_path / "data.parquet")
    assert {("DATA-FIELD-EMPTY", 2), ("DATA-ROW-DUPLICATE", 3)} <= found


def test_a_ragged_csv_row_is_located_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    csv = tmp_path / "data.csv"
    csv.write_text('instruction,input,output\n"Say hi","","two\nlines"\nan, unquoted comma,x,y\n'
                   '"Add","2+2",4\n"Add","2+2",4\n')
    result = scan_dataset(str(csv))
    found = {(o.entry_id, o.location.line) for o in result.observations}
    assert ("DATA-CSV-FIELD-COUNT", 4) in found          # line 4: after a value spread over 2 lines
    assert ("DATA-ROW-DUPLICATE", 6) in found             # its first line is 5
    assert [o.values["first_line"] for o in result.observations if o.entry_id == "DATA-ROW-DUPLICATE"] == [5]
    assert "DATA-FILE-UNREADABLE" not in {entry for entry, _ in found}
    assert result.facts["dataset.rows"] == 4 and result.facts["dataset.unreadable_rows"] == 1


def test_bad_inputs_become_findings_not_tracebacks(tmp_path: Path) -> None:
    missing = scan_dataset(str(tmp_path / "nope.jsonl"))
    assert [o.entry_id for o in missing.observations] == ["DATA-FILE-UNREADABLE"]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    assert [o.entry_id for o in scan_dataset(str(tmp_path / "bad.parquet")).observations] == [
        "DATA-FILE-UNREADABLE"]
    (tmp_path / "empty.jsonl").write_text("\n")
    assert "DATA-FILE-EMPTY" in {o.entry_id for o in scan_dataset(str(tmp_path / "empty.jsonl")).observations}


def test_the_demo_patient_shows_its_problems() -> None:
    result = scan_dataset(str(ROOT / "fixtures/demo/data/train.jsonl"))
    ids = {o.entry_id for o in result.observations}
    assert {"DATA-JSON-SINGLE-QUOTES", "DATA-JSON-TRAILING-COMMA", "DATA-FIELD-EMPTY",
            "DATA-ROW-DUPLICATE", "DATA-SCHEMA-MIXED", "DATA-SCHEMA-SHAREGPT"} <= ids
    assert 25 <= result.facts["dataset.rows"] <= 35


def test_the_probe_imports_no_heavy_framework(tmp_path: Path) -> None:
    path = write_rows(tmp_path, [{"messages": [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": "a"}]}])
    code = (
        "import sys\n"
        "from doctor.probes.dataset import scan_dataset, DatasetOptions\n"
        f"scan_dataset({str(path)!r}, DatasetOptions(tokenizer={str(ROOT / 'fixtures/datasets/tokenizers/tiny-chatml')!r}))\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'unsloth', 'bitsandbytes') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_json_object_with_records_under_a_key(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": 2, "data": [
        {"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}]}, indent=2))
    result = scan_dataset(str(path))
    found = {(o.entry_id, o.location.line) for o in result.observations}
    assert found == {("DATA-JSON-RECORDS-UNDER-KEY", 1), ("DATA-FIELD-EMPTY", 2)}
    assert result.facts["dataset.rows"] == 2


def test_the_fast_path_for_conversations_finds_what_row_by_row_finds(tmp_path: Path) -> None:
    def convo(i: int, *turns: tuple[str, str]) -> dict:
        return {"messages": [{"role": r, "content": c} for r, c in turns] or
                [{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"},
                 {"role": "assistant", "content": f"a{i}"}]}
    rows = [convo(i) for i in range(3000)]
    rows[700] = convo(0, ("user", "q"), ("user", "q again"), ("assistant", "a"))
    rows[1500] = convo(0, ("user", "q"), ("assistant", "  "))
    rows[2100] = convo(0, ("system", ""), ("user", "q"), ("assistant", "fine: empty system"))
    rows[2900] = convo(0, ("human", "q"), ("gpt", "a"))
    found = ids_at(write_rows(tmp_path, rows))
    assert found == {("DATA-CHAT-NOT-ALTERNATING", 701), ("DATA-CHAT-EMPTY-TURN", 1501),
                     ("DATA-CHAT-SHAREGPT-ROLES", 2901)}
