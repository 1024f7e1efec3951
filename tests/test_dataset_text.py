"""Mojibake, U+FFFD and unfilled template placeholders, found the same way in every field and
every file kind: raw or escaped JSON, JSONL rows checked in fast batches or one by one, JSON
arrays, CSV and Parquet."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.dataset import DatasetOptions, scan_dataset
from doctor.probes.dataset.textchecks import mojibake_at, placeholder_at

# UTF-8 text decoded as Windows-1252 (the common case) and as Latin-1 (C1 controls survive).
GARBLED = ["the cafÃ© opens", "she doesnâ€™t know", "ä¸­æ–‡ text", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "ðŸ˜€ smile",
           "na\u00c3\u00afve", "it\u00e2\u0080\u0099s latin-1", "Ã¼ber", "NÂ°5"]
CLEAN = ["the café opens", "she doesn’t know", "中文 text", "Привет", "😀 smile", "„Spaß“ in Zürich",
         "São Paulo – “quoted”", "Ça va? À bientôt!", "x ± 2°C, 5 × 3", "Øresund Æble"]


@pytest.mark.parametrize("text", GARBLED)
def test_mis_decoded_text_is_mojibake(text: str) -> None:
    assert mojibake_at(text) is not None


@pytest.mark.parametrize("text", CLEAN)
def test_correct_text_is_not_mojibake(text: str) -> None:
    assert mojibake_at(text) is None


def _rows(text: str, n: int = 300) -> list[dict[str, str]]:
    # Many clean rows around the garbled one: the fast batch path checks them, not row by row.
    rows = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(n)]
    rows[137] = {"instruction": "question 137", "input": "", "output": text}
    return rows


def _write(tmp_path: Path, name: str, rows: list[dict[str, str]], ensure_ascii: bool = False) -> Path:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows, ensure_ascii=ensure_ascii, indent=1), encoding="utf-8")
    else:
        import pyarrow as pa
        table = pa.Table.from_pylist(rows)
        if name.endswith(".csv"):
            import pyarrow.csv as pacsv
            pacsv.write_csv(table, str(path))
        else:
            import pyarrow.parquet as pq
            pq.write_table(table, str(path))
    return path


KINDS = [("data.jsonl", False), ("data.jsonl", True), ("data.json", False), ("data.json", True),
         ("data.csv", False), ("data.parquet", False)]


@pytest.mark.parametrize("text", ["she doesnâ€™t know", "ä¸­æ–‡", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "it\u00e2\u0080\u0099s"])
@pytest.mark.parametrize("name,ensure_ascii", KINDS)
def test_mojibake_is_found_in_every_file_kind(tmp_path: Path, text: str, name: str, ensure_ascii: bool) -> None:
    rows = _rows(text)
    found = [o for o in scan_dataset(str(_write(tmp_path, name, rows, ensure_ascii))).observations
             if o.entry_id == "DATA-TEXT-MOJIBAKE"]
    assert len(found) == 1 and found[0].values["field"] == "output"


@pytest.mark.parametrize("name,ensure_ascii", KINDS)
def test_replacement_char_is_found_in_every_file_kind(tmp_path: Path, name: str, ensure_ascii: bool) -> None:
    found = [o for o in scan_dataset(str(_write(tmp_path, name, _rows("lost \ufffd\ufffd char"), ensure_ascii))).observations
             if o.entry_id == "DATA-TEXT-REPLACEMENT-CHAR"]
    assert len(found) == 1 and found[0].values["count"] == 2


def test_fast_and_row_by_row_paths_find_the_same_text_problems(tmp_path: Path) -> None:
    rows = _rows("she doesnâ€™t know")
    rows[10]["output"] = "I am {{name}}, made by {{author}}."
    rows[20]["instruction"] = "\ufffd"
    path = _write(tmp_path, "data.jsonl", rows)
    fast = scan_dataset(str(path)).observations
    slow = scan_dataset(str(path), DatasetOptions(fast_path=False)).observations
    assert [(o.entry_id, o.location.line) for o in fast] == [(o.entry_id, o.location.line) for o in slow]
    assert {o.entry_id for o in fast} == {"DATA-TEXT-MOJIBAKE", "DATA-TEXT-PLACEHOLDER", "DATA-TEXT-REPLACEMENT-CHAR"}


@pytest.mark.parametrize("text,slot", [
    ("Hello! I am {{name}}, an AI assistant developed by {{author}}.", "{{name}}"),
    ("Summarize the following article: {article}", "{article}"),
    ("Translate {source_text} into French.", "{source_text}"),
    ("{{ user_name }} asked a question", "{{ user_name }}"),
])
def test_unfilled_placeholders(text: str, slot: str) -> None:
    assert placeholder_at(text) == slot


@pytest.mark.parametrize("text", [
    "Use print(f'{name}') to show it.",                         # code
    "string = 'This is a {placeholder1}.'\nplaceholder1 = 'cat'",  # code about templates
    "```html\n<p>{{ message }}</p>\n```",                         # a template quoted as code
    "$\\frac{abc}{def}$ and x^{two}",                            # LaTeX
    "the sequence {x_n} converges",                              # math notation
    '{"name": "get_time", "arguments": {}}',                     # JSON
    "the set {1, 2, 3} and {}",                                  # literals
    "{% for item in items %}{{ item }}{% endfor %}",             # Jinja source
])
def test_braces_that_are_not_placeholders(text: str) -> None:
    assert placeholder_at(text) is None


def test_placeholders_on_many_rows_are_one_finding_with_the_count(tmp_path: Path) -> None:
    rows = [{"instruction": f"Who are you? ({i})", "input": "", "output": "I am {{name}}."} for i in range(30)]
    found = [o for o in scan_dataset(str(_write(tmp_path, "data.jsonl", rows))).observations]
    assert [o.entry_id for o in found] == ["DATA-TEXT-PLACEHOLDER"]
    assert found[0].values["count"] == 30 and found[0].values["first_lines"] == [1, 2, 3]


def test_placeholders_are_not_looked_for_in_files_of_unknown_format(tmp_path: Path) -> None:
    rows = [{"name": "judge", "prompt_template": "[Question]\n{question}\n[Answer]\n{answer}"}] * 2
    ids = {o.entry_id for o in scan_dataset(str(_write(tmp_path, "data.jsonl", rows))).observations}
    assert "DATA-TEXT-PLACEHOLDER" not in ids and "DATA-SCHEMA-UNKNOWN" in ids
