"""Every broken JSON line is reported at its own line and column, with the cause named.

The files are real files written by the tests; the property test mutates valid records in
the ways people break JSONL and checks that each broken record is found where it is.
"""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.probes.dataset import DatasetOptions, scan_dataset

OPTS = DatasetOptions(cap=100_000)


def scan_text(tmp_path: Path, text: str | bytes, name: str = "data.jsonl") -> list:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return scan_dataset(str(path), OPTS).observations


def located(observations: list) -> set[tuple[str, int | None, int | None]]:
    return {(o.entry_id, o.location.line, o.location.column) for o in observations}


GOOD = '{"instruction": "Say hi", "input": "", "output": "hi"}'


@pytest.mark.parametrize("bad, entry, column", [
    ("{'instruction': 'a', 'output': 'b'}", "DATA-JSON-SINGLE-QUOTES", 2),
    ('{"instruction": "a", "output": "b",}', "DATA-JSON-TRAILING-COMMA", 35),
    ('{"instruction": "a", "output": "b"} // note', "DATA-JSON-COMMENT", 37),
    ('{"instruction": "a", "input": NaN, "output": "b"}', "DATA-JSON-NAN", 31),
    ('{"instruction": "a", "input": Infinity, "output": "b"}', "DATA-JSON-NAN", 31),
    ('{"instruction": "a", "output": "b", "ok": True}', "DATA-JSON-PYTHON-LITERAL", 43),
    ('{"instruction": "copy C:\\data", "output": "b"}', "DATA-JSON-BAD-ESCAPE", 25),
    ('{"instruction": "a\tb", "output": "c"}', "DATA-JSON-RAW-CONTROL-CHAR", 19),
    ('{"instruction": "a", "output": "b"}{"instruction": "c", "output": "d"}', "DATA-JSON-TWO-OBJECTS", 36),
    ('{"instruction": "a", "output": "b', "DATA-JSON-UNTERMINATED", 32),
    ('{"instruction" "a", "output": "b"}', "DATA-JSON-INVALID", 16),
    ('"just a string"', "DATA-JSON-NOT-OBJECT", 1),
])
def test_each_syntax_problem_is_named_at_its_line_and_column(tmp_path: Path, bad: str, entry: str,
                                                             column: int) -> None:
    found = located(scan_text(tmp_path, f"{GOOD}\n{GOOD.replace('hi', 'yo')}\n{bad}\n"))
    assert (entry, 3, column) in found
    assert not [f for f in found if f[1] in (1, 2)]


def test_bom_blank_line_and_invalid_utf8_with_byte_offset(tmp_path: Path) -> None:
    first = "\ufeff" + GOOD + "\n"
    broken = b'{"instruction": "caf\xe9", "output": "b"}\n'
    data = first.encode() + b"\n" + broken
    obs = scan_text(tmp_path, data)
    found = located(obs)
    assert ("DATA-FILE-BOM", 1, 1) in found
    assert ("DATA-JSON-BLANK-LINE", 2, 1) in found
    assert ("DATA-FILE-INVALID-UTF8", 3, 21) in found
    utf8 = next(o for o in obs if o.entry_id == "DATA-FILE-INVALID-UTF8")
    assert utf8.values["byte_offset"] == len(first.encode()) + 1 + broken.index(b"\xe9")


def test_a_pretty_printed_object_is_one_record_spanning_its_lines(tmp_path: Path) -> None:
    pretty = json.dumps({"instruction": "a", "output": "b"}, indent=2)
    obs = scan_text(tmp_path, f"{GOOD}\n{pretty}\n{GOOD.replace('hi', 'yo')}\n")
    multi = [o for o in obs if o.entry_id == "DATA-JSON-MULTILINE"]
    assert [(o.location.line, o.location.end_line) for o in multi] == [(2, 5)]
    assert {o.entry_id for o in obs} == {"DATA-JSON-MULTILINE"}  # the rows inside are not "invalid"


def test_an_unclosed_object_does_not_swallow_the_lines_after_it(tmp_path: Path) -> None:
    obs = scan_text(tmp_path, '{"instruction": "a",\n' + GOOD + "\n" + GOOD.replace("hi", "yo") + "\n")
    assert ("DATA-JSON-UNTERMINATED", 1) in {(o.entry_id, o.location.line) for o in obs}
    assert not [o for o in obs if o.location.line in (2, 3) and o.entry_id.startswith("DATA-JSON")]


def test_a_json_array_in_a_jsonl_file_is_named_and_its_elements_still_checked(tmp_path: Path) -> None:
    text = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": ""}\n]\n'
    found = {(o.entry_id, o.location.line) for o in scan_text(tmp_path, text)}
    assert ("DATA-JSON-ARRAY-AS-JSONL", 1) in found
    assert ("DATA-FIELD-EMPTY", 3) in found
    assert not {f for f in scan_text(tmp_path, text, "data.json") if f.entry_id == "DATA-JSON-ARRAY-AS-JSONL"}


def test_a_repeated_problem_is_listed_up_to_the_cap_then_counted(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join("{'text': 'row %d'}\n" % i for i in range(50)))
    obs = scan_dataset(str(path), DatasetOptions(cap=20)).observations
    single = [o for o in obs if o.entry_id == "DATA-JSON-SINGLE-QUOTES"]
    more = [o for o in obs if o.entry_id == "DATA-MORE-LINES"]
    assert [o.location.line for o in single] == list(range(1, 21))
    assert [(m.values["entry"], m.values["count"], m.values["more"]) for m in more] == [
        ("DATA-JSON-SINGLE-QUOTES", 50, 30)]


# --- property: mutate valid records, every broken one is found at its line --------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
RECORD = st.fixed_dictionaries({"instruction": TEXT.filter(lambda s: s.strip() != ""),
                                "input": TEXT, "output": TEXT.filter(lambda s: s.strip() != "")})


def _mutate(kind: str, record: dict) -> bytes:
    line = orjson.dumps(record)
    if kind == "single_quotes":
        return line.replace(b'"instruction"', b"'instruction'")
    if kind == "trailing_comma":
        return line[:-1] + b",}"
    if kind == "comment":
        return line + b" // checked"
    if kind == "nan":
        return line.replace(b'"input":', b'"nan": NaN, "input":')
    if kind == "bad_escape":
        return line.replace(b'"output":"', b'"output":"C:\\data ')
    if kind == "raw_tab":
        return line.replace(b'"output":"', b'"output":"\t')
    if kind == "two_objects":
        return line + line
    if kind == "truncated":
        return line[: line.index(b'"output"') + 11]
    if kind == "bad_utf8":
        return line.replace(b'"output":"', b'"output":"\xff')
    raise AssertionError(kind)


MUTATIONS = ["single_quotes", "trailing_comma", "comment", "nan", "bad_escape", "raw_tab",
             "two_objects", "truncated", "bad_utf8"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, min_size=1, max_size=25, unique_by=lambda r: orjson.dumps(r)),
       plan=st.lists(st.sampled_from([None, *MUTATIONS]), min_size=25, max_size=25))
def test_every_mutated_line_is_reported_at_its_line(tmp_path: Path, records: list, plan: list) -> None:
    lines, broken = [], {}
    for number, (record, kind) in enumerate(zip(records, plan), start=1):
        if kind is None:
            lines.append(orjson.dumps(record))
        else:
            lines.append(_mutate(kind, record))
            broken[number] = kind
    obs = scan_text(tmp_path, b"\n".join(lines) + b"\n")
    syntax_lines = {o.location.line for o in obs
                    if o.entry_id.startswith(("DATA-JSON-", "DATA-FILE-"))}
    assert syntax_lines == set(broken), (broken, sorted(located(obs)))
