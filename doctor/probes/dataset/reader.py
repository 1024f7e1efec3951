"""Streaming readers for the dataset files people hand to Unsloth.

JSONL is read line by line by the scanner itself (its hot loop). This module covers the rest:
a JSON array file (split into elements without loading the whole file), and CSV and Parquet
through pyarrow, an optional extra. Each reader yields records one at a time, so memory stays
constant in the file's size.
"""
from __future__ import annotations

import os
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

CHUNK = 1 << 20

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
JSON_SUFFIXES = (".json",)
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES


class MissingExtra(Exception):
    """An optional dependency needed for this file type is not installed."""


@dataclass(frozen=True)
class ArrayElement:
    line: int          # 1-based line where the element starts
    end_line: int
    raw: bytes
    column: int = 1    # 1-based column (characters) where it starts on its first line


@dataclass(frozen=True)
class ArrayTrouble:
    """The array itself is broken at this place (never closed, text after its end, or a
    comma after its last element); `entry` names the knowledge entry when it is not the
    reader's default (unterminated or invalid)."""

    line: int
    detail: str
    column: int | None = None
    entry: str | None = None


TRAILING_COMMA = "DATA-JSON-TRAILING-COMMA"   # syntax.TRAILING_COMMA (not imported: start-up cost)


def kind_of(path: str | Path) -> str:
    name = str(path).lower()
    for kind, suffixes in (("jsonl", JSONL_SUFFIXES), ("json", JSON_SUFFIXES),
                           ("csv", CSV_SUFFIXES), ("parquet", PARQUET_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return "jsonl"


def first_significant_byte(path: str | Path) -> bytes:
    """The first byte that is not whitespace or a BOM: b'[' means a JSON array file."""
    with open(path, "rb") as f:
        head = f.read(CHUNK)
        while head:
            text = head.lstrip(b" \t\r\n")
            if text.startswith(b"\xef\xbb\xbf"):
                text = text[3:].lstrip(b" \t\r\n")
            if text:
                return text[:1]
            head = f.read(CHUNK)
    return b""


_OUTSIDE = re.compile(rb'["\[\]{},\n]')
_INSIDE = re.compile(rb'["\\\n]')
_NON_SPACE = re.compile(rb"\S")


def iter_array_elements(f: BinaryIO) -> Iterator[ArrayElement | ArrayTrouble]:
    """Split a top-level JSON array into its elements' raw bytes, reading a chunk at a time.

    Only brackets, braces, commas, quotes and newlines are looked at; each element is then
    parsed (and diagnosed) on its own, so a broken element does not hide the rest.
    """
    buf = f.read(CHUNK)
    eof = not buf
    pos = 0
    line = 1
    if buf.startswith(b"\xef\xbb\xbf"):
        pos = 3
    # Find the opening bracket.
    while True:
        m = _NON_SPACE.search(buf, pos)
        if m:
            break
        line += buf.count(b"\n", pos)
        buf, pos = f.read(CHUNK), 0
        if not buf:
            return
    line += buf.count(b"\n", pos, m.start())
    if buf[m.start():m.start() + 1] != b"[":
        yield ArrayTrouble(line, "the file does not start with '['")
        return
    pos = m.start() + 1
    depth = 0
    in_string = False
    seg_start, seg_line = pos, line
    base = 0                                       # file offset of buf[0]
    line_start = buf.rfind(b"\n", 0, m.start()) + 1   # file offset where the current line starts
    last_comma: tuple[int, int] | None = None      # (line, column) of the comma before this segment

    def column_at(offset: int) -> int:
        """1-based column in characters of a file offset on the current line (bytes when the
        line's start is no longer in the buffer)."""
        if line_start >= base:
            return len(buf[line_start - base:offset - base].decode("utf-8", "replace")) + 1
        return offset - line_start + 1

    def element(end: int) -> ArrayElement | None:
        raw = buf[seg_start:end]
        stripped = raw.lstrip()
        if not stripped.strip():
            return None
        lead = len(raw) - len(stripped)
        start_line = seg_line + raw.count(b"\n", 0, lead)
        at = seg_start + lead
        nl = buf.rfind(b"\n", 0, at)
        if nl >= 0:
            column = len(buf[nl + 1:at].decode("utf-8", "replace")) + 1
        else:
            column = column_at(base + at)
        body = stripped.rstrip()
        return ArrayElement(start_line, start_line + body.count(b"\n"), body, column)

    while True:
        m = (_INSIDE if in_string else _OUTSIDE).search(buf, pos)
        if m is None:
            if eof:
                tail = element(len(buf))
                if tail:
                    yield tail
                yield ArrayTrouble(line, "the array is never closed with ']'")
                return
            chunk = f.read(CHUNK)
            eof = not chunk
            base += seg_start
            buf = buf[seg_start:] + chunk
            pos -= seg_start
            seg_start = 0
            continue
        ch = m.group()
        pos = m.end()
        if ch == b"\n":
            line += 1
            line_start = base + pos
        elif in_string:
            if ch == b"\\":
                pos += 1
            else:
                in_string = False
        elif ch == b'"':
            in_string = True
        elif ch in b"[{":
            depth += 1
        elif ch in b"]}":
            if depth == 0:
                item = element(pos - 1)
                if item:
                    yield item
                elif last_comma is not None:
                    # [a, b,] : json.load, orjson and datasets' loader all refuse the file
                    yield ArrayTrouble(last_comma[0], "after the array's last element",
                                       column=last_comma[1], entry=TRAILING_COMMA)
                rest = buf[pos:] + f.read()
                extra = rest.strip()
                if extra:
                    yield ArrayTrouble(line + rest[: len(rest) - len(rest.lstrip())].count(b"\n"),
                                       "there is text after the closing ']'")
                return
            depth -= 1
        elif ch == b"," and depth == 0:
            item = element(pos - 1)
            if item:
                yield item
            last_comma = (line, column_at(base + pos - 1))
            seg_start, seg_line = pos, line


def read_json_object(path: str | Path) -> tuple[str | None, list[Any]] | None:
    """A .json file that is one object: its records (the longest list of objects under a key,
    as load_dataset(..., field=KEY) reads them), or the object itself as the only record.
    None when the file does not parse, so the caller diagnoses it line by line."""
    import orjson

    try:
        obj = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError:
        return None
    return records_of_object(obj)


def records_of_object(obj: Any) -> tuple[str | None, list[Any]] | None:
    """The records of a parsed JSON object (see read_json_object); None for a non-object."""
    if type(obj) is not dict:
        return None
    lists = [(len(v), k) for k, v in obj.items()
             if type(v) is list and v and all(type(x) is dict for x in v) and not _is_conversation(k, v)]
    if lists:
        key = max(lists)[1]
        return key, obj[key]
    return None, [obj]


_TURN_KEYS = ({"role", "content"}, {"from", "value"})


def _is_conversation(key: str, items: list[Any]) -> bool:
    """A list of turns under "messages"/"conversations": the object is one conversation (one
    record), not a list of records."""
    return key in ("messages", "conversations") and all(
        any(keys <= x.keys() for keys in _TURN_KEYS) for x in items[:100])


@dataclass(frozen=True)
class RaggedRow:
    """A CSV row whose field count differs from the header's (pyarrow would refuse the file)."""

    line: int | None
    expected: int
    actual: int
    text: str


def iter_table_rows(path: str | Path, kind: str, batch_size: int = 4096,
                    ragged: list[RaggedRow] | None = None,
                    on_batch: Callable[[float], None] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a CSV or Parquet file as dicts, a batch at a time, through pyarrow.

    CSV rows with the wrong number of fields are skipped and, when `ragged` is given, added
    to it with their line (found by the standard csv module: pyarrow does not know the line
    once values may hold line breaks). `on_batch` is told the fraction read after each batch."""
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq
        else:
            import pyarrow.csv as pacsv
    except ImportError as err:
        raise MissingExtra(
            f"reading {kind.upper()} files needs pyarrow, which is not installed (the doctor's "
            "'data' extra installs it)") from err
    skipped: list[RaggedRow] = []
    delimiter = csv_delimiter(path)
    with ExitStack() as stack:
        if kind == "parquet":
            table = pq.ParquetFile(str(path))
            total = max(1, table.metadata.num_rows)
            batches = table.iter_batches(batch_size=batch_size)
            done = 0

            def fraction(batch: Any) -> float:
                nonlocal done
                done += batch.num_rows
                return done / total
        else:
            def skip(row: Any) -> str:
                skipped.append(RaggedRow(row.number, row.expected_columns, row.actual_columns, row.text))
                return "skip"
            parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                       invalid_row_handler=skip if ragged is not None else None)
            source = stack.enter_context(open(path, "rb"))
            size = max(1, os.path.getsize(path))
            batches = pacsv.open_csv(source, parse_options=parse)

            def fraction(batch: Any) -> float:
                return min(1.0, source.tell() / size)
        for batch in batches:
            yield from batch.to_pylist()
            if on_batch is not None:
                on_batch(fraction(batch))
    if skipped and ragged is not None:
        ragged.extend(locate_ragged_rows(path) or skipped)


def csv_delimiter(path: str | Path) -> str:
    return "\t" if str(path).lower().endswith(".tsv") else ","


def csv_reader(f: Any, path: str | Path) -> Any:
    """The standard csv module's reader for this file's delimiter, allowing long fields
    (training texts are often past the module's 128 KiB default)."""
    import csv
    import sys

    csv.field_size_limit(min(sys.maxsize, 1 << 31))
    return csv.reader(f, delimiter=csv_delimiter(path))


def csv_records(path: str | Path) -> Iterator[tuple[int, list[str], int]]:
    """(line it starts on, fields, header's field count) for each non-blank record after the
    header, read by the standard csv module (which knows lines; pyarrow does not)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        rows = csv_reader(f, path)
        header = next(rows, None)
        if header is None:
            return
        line = rows.line_num + 1
        for record in rows:
            start, line = line, rows.line_num + 1
            if record:
                yield start, record, len(header)


def locate_ragged_rows(path: str | Path, limit: int = 200) -> list[RaggedRow]:
    """Rows whose field count differs from the header's, with the line each starts on."""
    return [RaggedRow(start, width, len(record), csv_delimiter(path).join(record)[:limit])
            for start, record, width in csv_records(path) if len(record) != width]


def csv_record_lines(path: str | Path, wanted: set[int]) -> dict[int, int]:
    """The line each wanted record starts on, records counted from 0 as pyarrow yields them
    (blank lines and rows of the wrong width are not records). A value may span lines, so
    the record's number plus one is not its line."""
    out: dict[int, int] = {}
    if not wanted:
        return out
    last = max(wanted)
    number = 0
    for start, record, width in csv_records(path):
        if len(record) != width:
            continue
        if number in wanted:
            out[number] = start
        if number >= last:
            break
        number += 1
    return out


class OverlongLine(bytes):
    """Stands for a JSONL line longer than the scanner's cap, skipped unread: its first bytes
    (to show) and `size`, the length of the whole line."""

    HEAD = 200
    size: int

    def __new__(cls, head: bytes, size: int) -> "OverlongLine":
        line = super().__new__(cls, head)
        line.size = size
        return line


def line_length(raw: bytes) -> int:
    """Bytes a line takes in the file (all of it, for an overlong one)."""
    return raw.size if type(raw) is OverlongLine else len(raw)


@dataclass(frozen=True)
class LineRecord:
    """One record of a JSONL file: a line, or an object pretty-printed over several lines."""

    line: int
    end_line: int
    raw: bytes          # without the final line break; lines of a spread object joined by \n
    blank: bool = False


def opens_unclosed(text: str) -> bool:
    """The line opens an object/array it does not close: maybe the start of a pretty-printed one."""
    from doctor.probes.dataset import syntax

    if not text.lstrip("\ufeff \t").startswith(("{", "[")):
        return False
    d = syntax.diagnose(text)
    return d.fatal is not None and d.fatal.entry_id == syntax.UNTERMINATED


def join_spread_object(first: str, next_line: Callable[[], bytes | None],
                       max_lines: int = 2000, max_bytes: int = 4 << 20) -> tuple[str | None, list[bytes]]:
    """Read lines after `first` until the object it opens parses: (joined text, lines taken).

    The text is None when no closing line makes it parse (a cut-off record, not a spread one);
    the caller then gives the taken lines back, to be read one by one.
    """
    from doctor.probes.dataset import syntax

    taken: list[bytes] = []
    parts = [first]
    used = 0
    while len(taken) < max_lines and used < max_bytes:
        raw = next_line()
        if raw is None:
            break
        taken.append(raw)
        if type(raw) is OverlongLine:
            break   # no object spreads over a line too long to read
        used += len(raw)
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            break
        parts.append(text)
        if text.lstrip().startswith(("}", "]")):
            d = syntax.diagnose("\n".join(parts))
            if d.fatal is None:
                return "\n".join(parts), taken
            if d.fatal.entry_id != syntax.UNTERMINATED:
                break  # it closed, but does not parse: not one spread object
    return None, taken


def iter_jsonl_records(f: BinaryIO) -> Iterator[LineRecord]:
    """Records of a JSONL file in order, joining an object spread over lines back into one.

    Used by the repair, which must see every line exactly once; the scanner has its own,
    faster loop for the common case.
    """
    import orjson

    pending: list[bytes] = []
    source = iter(f)
    line = 0

    def next_line() -> bytes | None:
        return pending.pop() if pending else next(source, None)

    while True:
        raw = next_line()
        if raw is None:
            return
        line += 1
        body = raw.rstrip(b"\r\n")
        if not body.strip():
            yield LineRecord(line, line, body, blank=True)
            continue
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body.decode("utf-8", "replace")
            if opens_unclosed(text):
                joined, taken = join_spread_object(text, next_line)
                if joined is not None:
                    yield LineRecord(line, line + len(taken), joined.encode("utf-8"))
                    line += len(taken)
                    continue
                pending.extend(reversed(taken))
        yield LineRecord(line, line, body)
