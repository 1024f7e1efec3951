"""The per-file scan: one pass over the records, strict parse first, diagnosis on failure.

`scan_jsonl_range` is the hot loop for JSONL (a byte range, so `--jobs` can split a file);
`scan_elements` and `scan_rows` feed JSON-array elements and CSV/Parquet rows through the
same per-record checks. Results carry lines relative to their range; the caller shifts them.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

import orjson

from doctor.probes import limits
from doctor.probes.dataset import content, llamafactory, prefilter, preference, reader, syntax
from doctor.probes.dataset.hits import Hits
from doctor.probes.dataset.reader import ArrayElement, ArrayTrouble, OverlongLine, line_length
from doctor.probes.dataset.rowmemory import RowMemory
from doctor.probes.dataset.schema import CHAT_FORMATS, KTO_LABELS, MESSAGES, PREFERENCE, RecordSchema, UNKNOWN, classify
from doctor.probes.dataset.tokens import TokenMeter, TokenStats
from doctor.probes.limits import MAX_NESTING, nests_deeper

BLANK_LINE = "DATA-JSON-BLANK-LINE"
INVALID_UTF8 = "DATA-FILE-INVALID-UTF8"
MULTILINE = "DATA-JSON-MULTILINE"
NOT_OBJECT = "DATA-JSON-NOT-OBJECT"
DUPLICATE = "DATA-ROW-DUPLICATE"
LONG_ROW = "DATA-ROW-LONG"
LINE_TOO_LONG = "DATA-LINE-TOO-LONG"
SCHEMA_UNKNOWN = "DATA-SCHEMA-UNKNOWN"

# A pretty-printed object is joined back from at most this many lines / bytes.
MULTILINE_MAX_LINES = 2000
MULTILINE_MAX_BYTES = 4 << 20
# Past this many distinct rows the duplicate check stops remembering new rows: about 100 bytes
# a row, so memory stays bounded whatever the file's size (reported as a fact when reached).
DUPLICATE_MEMORY_ROWS = 500_000
FIRST_LINES_PER_SCHEMA = 3
LENIENT_OBJECT_MAX_BYTES = 16 << 20


@dataclass
class ScanSettings:
    """The picklable part of the options a worker needs."""

    cap: int = 20
    long_row_bytes: int = 100_000
    tokenizer: str | None = None
    max_seq_length: int | None = None
    response_part: str | None = None
    duplicate_memory_rows: int = DUPLICATE_MEMORY_ROWS
    fast_path: bool = True       # batches at C speed; off, every row goes through `record`
    max_line_bytes: int = limits.DATASET_LINE_MAX_BYTES   # a longer JSONL line is skipped unread


@dataclass
class ChunkResult:
    lines: int = 0                  # physical lines read
    rows: int = 0                   # records read (parsed or not), blank lines excluded
    parsed: int = 0                 # records that parsed strictly or leniently
    unreadable: int = 0             # records that could not be read at all
    hits: Hits = field(default_factory=Hits)
    schema_counts: Counter[str] = field(default_factory=Counter)
    schema_first: dict[str, list[int]] = field(default_factory=dict)
    schema_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)   # per format: the
    # columns that decided it, on the first row in that format
    seen: RowMemory = field(default_factory=lambda: RowMemory(DUPLICATE_MEMORY_ROWS))
    tokens: TokenStats | None = None
    max_row_bytes: int = 0

    @property
    def duplicate_memory_full(self) -> bool:
        return self.seen.full


class _Checker:
    """Per-record checks shared by every reader; owns the chunk's result."""

    def __init__(self, settings: ScanSettings) -> None:
        self.s = settings
        self.r = ChunkResult(hits=Hits(settings.cap), seen=RowMemory(settings.duplicate_memory_rows, settings.cap))
        self.meter: TokenMeter | None = None
        if settings.tokenizer:
            from doctor.probes.dataset.tokens import load_tokenizer
            bundle = load_tokenizer(settings.tokenizer)
            self.meter = TokenMeter(bundle, settings.max_seq_length, settings.response_part, self.r.hits)
        self._schemas: dict[tuple[str, ...], RecordSchema] = {}

    def schema_of(self, obj: dict[str, Any]) -> RecordSchema:
        keys = tuple(obj)
        schema = self._schemas.get(keys)
        if schema is None:
            schema = self._schemas[keys] = classify(keys)
        return schema

    def record(self, obj: Any, line: int, raw: bytes) -> None:
        """All content checks on one parsed record; `raw` is its text as bytes."""
        r = self.r
        hits = r.hits
        if obj.__class__ is not dict:
            hits.add(NOT_OBJECT, line, 1, found=type(obj).__name__)
            return
        schema = self.schema_of(obj)
        name = schema.name
        r.schema_counts[name] += 1
        if name not in r.schema_columns:
            r.schema_columns[name] = schema.decided_by
        if r.schema_counts[name] <= FIRST_LINES_PER_SCHEMA:
            r.schema_first.setdefault(name, []).append(line)
        if name == UNKNOWN:
            hits.add(SCHEMA_UNKNOWN, line, 1, keys=", ".join(obj) or "(none)")
        else:
            if name == PREFERENCE:
                preference.check_preference(obj, schema, line, raw, hits)
            else:
                content.check_fields(obj, schema, line, raw, hits)
            if schema.chat_field is not None:
                content.check_chat(obj, schema, line, raw, hits)
        if prefilter.suspect(raw):
            content.check_text(obj, schema, line, raw, hits)
        size = len(raw)
        if size > r.max_row_bytes:
            r.max_row_bytes = size
        if size > self.s.long_row_bytes:
            hits.add(LONG_ROW, line, None, bytes=size, limit=self.s.long_row_bytes)
        # Duplicates are found at the end (`finish`), from the hashes of every row.
        r.seen.add(hash(raw if raw.endswith(b"\n") else raw + b"\n"), line)
        if self.meter is not None:
            self.meter.add(line, obj, name)

    def batch(self, rows: list[bytes], first_line: int) -> bool:
        """Check a batch of raw lines at C speed when it is uniform and clean.

        Returns False, having changed nothing, when anything needs a closer look; the caller
        then checks the batch row by row with `record`, which reports exactly the same things.
        """
        try:
            first = orjson.loads(rows[0])
        except orjson.JSONDecodeError:
            return False
        if first.__class__ is not dict:
            return False
        schema = self.schema_of(first)
        if schema.name == UNKNOWN or schema.missing:
            return False
        keep: list[Any] | None = [] if self.meter is not None else None
        # Parsed a slice at a time and dropped, so the objects stay in the CPU cache while they
        # are checked; only the token meter needs them afterwards.
        for at in range(0, len(rows), PARSE_SLICE):
            try:
                objs = list(map(orjson.loads, rows[at:at + PARSE_SLICE]))
            except orjson.JSONDecodeError:
                return False
            if not _same_clean_shape(objs, first, schema):
                return False
            if keep is not None:
                keep += objs
        r = self.r
        longest = max(map(len, rows))
        if longest > self.s.long_row_bytes:
            return False
        # Clean: commit the batch.
        if not rows[-1].endswith(b"\n"):
            rows = [*rows[:-1], rows[-1] + b"\n"]
        r.seen.add_batch(list(map(hash, rows)), first_line)
        r.max_row_bytes = max(r.max_row_bytes, longest)
        count = r.schema_counts[schema.name]
        r.schema_counts[schema.name] = count + len(rows)
        r.schema_columns.setdefault(schema.name, schema.decided_by)
        if count < FIRST_LINES_PER_SCHEMA:
            firsts = r.schema_first.setdefault(schema.name, [])
            firsts.extend(range(first_line, first_line + FIRST_LINES_PER_SCHEMA - count)[:len(rows)])
        for index in sorted(prefilter.suspect_rows(rows)):
            content.check_text(orjson.loads(rows[index]), schema, first_line + index, rows[index], r.hits)
        if self.meter is not None:   # the objects were kept for it
            for index, obj in enumerate(keep or ()):
                self.meter.add(first_line + index, obj, schema.name)
        return True

    def diagnosed(self, text: str, line: int, end_line: int | None = None, column: int = 1,
                  d: syntax.Diagnosis | None = None) -> syntax.Diagnosis:
        """Report every syntax issue of a record with its line and column; `column` is where
        the record starts on its first line (an array element may start mid-line)."""
        d = syntax.diagnose(text) if d is None else d
        self.report_issues(self.r.hits, text, d, line, end_line, column)
        return d

    @staticmethod
    def report_issues(hits: Hits, text: str, d: syntax.Diagnosis, line: int, end_line: int | None = None,
                      column: int = 1) -> None:
        firsts: dict[str, tuple[syntax.SyntaxIssue, int]] = {}
        for issue in [*d.issues, *([d.fatal] if d.fatal else [])]:
            seen = firsts.get(issue.entry_id)
            firsts[issue.entry_id] = (seen[0], seen[1] + 1) if seen else (issue, 1)
        for issue, count in firsts.values():  # one report per kind and record: its first place
            offset, col = syntax.line_col(text, issue.pos)
            hits.add(issue.entry_id, line + offset, col + (column - 1 if offset == 0 else 0), end_line=end_line,
                     detail=issue.detail, count=count, excerpt=_excerpt(text, issue.pos))

    def finish(self) -> ChunkResult:
        shown, count = self.r.seen.duplicates()
        for line, first in shown:
            self.r.hits.add(DUPLICATE, line, None, first_line=first)
        if count > len(shown):
            self.r.hits.counts[DUPLICATE] = self.r.hits.counts.get(DUPLICATE, 0) + count - len(shown)
        if self.meter is not None:
            self.meter.flush()
            self.r.tokens = self.meter.stats
        return self.r


def _same_clean_shape(objs: list[Any], first: dict[str, Any], schema: RecordSchema) -> bool:
    """Every object has exactly `first`'s keys and clean required fields (the fast path's test).

    Same key set: the same number of keys, and each has all of `first`'s keys (itemgetter
    raises KeyError otherwise). A row that is not an object fails the same way: len() of a
    number, or a string key on a list or str, raises TypeError.
    """
    try:
        if set(map(len, objs)) != {len(first)}:
            return False
        if schema.name not in CHAT_FORMATS and schema.chat_field is not None:
            return False   # ranking and KTO rows around a conversation: the row-by-row path
        if schema.name in CHAT_FORMATS:
            if not _clean_conversations(objs, schema):
                return False
        else:
            # str.strip returns a str unchanged when there is nothing to strip, "" when it is
            # blank, and raises TypeError on anything but a str: one pass checks both.
            for name in schema.required:
                if name in KTO_LABELS:   # a bool, not text
                    if not all(type(value) is bool for value in map(itemgetter(name), objs)):
                        return False
                elif not all(map(str.strip, map(itemgetter(name), objs))):
                    return False
        for name in schema.optional:
            if name in first:
                any(map(str.isspace, map(itemgetter(name), objs)))   # TypeError if not a str
        others = [key for key in first if key not in schema.required and key not in schema.optional]
        if others:
            all(map(itemgetter(*others, *others), objs))   # KeyError if absent; a tuple is true
    except (TypeError, KeyError):
        return False
    return True


def _clean_conversations(objs: list[dict[str, Any]], schema: RecordSchema) -> bool:
    """Every conversation is a non-empty list of turns with known roles in a good order and
    non-blank text. Raises KeyError/TypeError on any other shape (the caller falls back).

    Done over all turns of all rows at once (C loops), and the role order once per distinct
    sequence of roles: a dataset repeats a handful of them."""
    messages = schema.name == MESSAGES
    convos = list(map(itemgetter("messages" if messages else "conversations"), objs))
    if set(map(type, convos)) != {list} or not all(convos):
        return False
    text = itemgetter("content" if messages else "value")
    if not all(map(str.strip, map(text, chain.from_iterable(convos)))):
        return False
    role = itemgetter("role" if messages else "from")
    sequences = set(map(tuple, map(partial(map, role), convos)))
    if any(r.__class__ is not str for sequence in sequences for r in sequence):
        return False
    if not messages and any(r not in content.ROLE_ALIASES for sequence in sequences for r in sequence):
        return False   # a role standardize_sharegpt cannot map: said once per row, row by row
    if any(column in objs[0] for column, _ in llamafactory.MEDIA_MARKERS):
        return False   # <image>/<video>/<audio> markers are counted row by row
    findings = content.role_findings
    return not any(findings(schema.name, sequence) for sequence in sequences)


def _excerpt(text: str, pos: int, width: int = 40) -> str:
    """The text around a position, on one line, to show as evidence."""
    start, end = max(0, pos - width), pos + width
    snippet = text[start:end].replace("\n", "\\n").replace("\t", "\\t")
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


def _decode(raw: bytes, line: int, file_offset: int, hits: Hits) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        col = len(raw[:err.start].decode("utf-8", "replace")) + 1
        hits.add(INVALID_UTF8, line, col, byte_offset=file_offset + err.start,
                 byte=f"0x{raw[err.start]:02X}")
        return None


BATCH_ROWS = 256   # rows read, hashed and pre-filtered together
PARSE_SLICE = 64   # rows parsed and checked together (their objects stay in the CPU cache)
READ_PIECE = 1 << 20   # in a file that may hold a line past the cap, the most read at a time


class _LineSource:
    """Lines of one byte range of a file, with push-back for lines read ahead.

    Where the file is large enough to hold a line longer than `max_line`, lines are read at
    most READ_PIECE bytes at a time: a longer line comes in pieces, which `next` joins, and
    past `max_line` it keeps none of them and returns an `OverlongLine` instead. So memory
    stays bounded however long a line is."""

    def __init__(self, f: Any, start: int, end: int | None, max_line: int = limits.DATASET_LINE_MAX_BYTES) -> None:
        f.seek(start)
        self._file = f
        self._max = max_line
        self._piece = min(READ_PIECE, max_line + 1)
        # A readline with a size costs ~50 ns a line more: only where a line could pass the cap.
        self._capped = os.fstat(f.fileno()).st_size - start > max_line
        self._lines: Iterator[bytes] = iter(partial(f.readline, self._piece), b"") if self._capped else iter(f)
        self._pushed: list[bytes] = []
        self.offset = start                 # file offset of the next unread line
        self.limit = end if end is not None else float("inf")
        self.exhausted = False

    def _is_piece(self, raw: bytes) -> bool:
        """The line goes on after this: a full read that did not reach its end."""
        return len(raw) == self._piece and not raw.endswith(b"\n")

    def next(self) -> bytes | None:
        if self._pushed:
            raw = self._pushed.pop()
        elif self.offset >= self.limit or self.exhausted:
            return None
        else:
            raw = next(self._lines, None)
            if raw is None:
                self.exhausted = True
                return None
        if self._capped and self._is_piece(raw):
            raw = self._whole_line(raw)
        self.offset += line_length(raw)
        return raw

    def _whole_line(self, first: bytes) -> bytes:
        """The line that starts with this piece, or an OverlongLine once it passes the cap
        (its later pieces are read and dropped)."""
        parts: list[bytes] | None = [first]
        size, piece = len(first), first
        while self._is_piece(piece):
            piece = self._pushed.pop() if self._pushed else next(self._lines, b"")
            size += len(piece)
            if parts is not None:
                parts.append(piece)
                if size > self._max + 1:   # the cap, plus the line's own newline
                    parts = None
        if parts is None or size - piece.endswith(b"\n") > self._max:
            return OverlongLine(first[:OverlongLine.HEAD], size)
        return b"".join(parts)

    def push_back(self, lines: list[bytes]) -> None:
        self.offset -= sum(map(line_length, lines))
        self._pushed.extend(reversed(lines))

    def batch(self, n: int) -> list[bytes]:
        """Up to n whole lines that start inside the range (none when lines were pushed back)."""
        if self._pushed or self.exhausted or self.offset >= self.limit:
            return []
        rows = list(islice(self._lines, n))
        if len(rows) < n:
            self.exhausted = True
        end = self._file.tell()  # a binary file knows where its lines end: no pass over them
        if self._capped and rows and max(map(len, rows)) == self._piece:
            end = self._hold_long_lines(rows, end)
        room = self.limit - self.offset
        if end - self.offset > room:  # the range ends inside this batch: keep lines that start in it
            size = 0
            for keep, row in enumerate(rows):
                if size >= room:
                    rows = rows[:keep]
                    break
                size += len(row)
            self.exhausted = True
            self._pushed.clear()   # what was held starts past the range
            end = self.offset + size
        self.offset = end
        return rows

    def _hold_long_lines(self, rows: list[bytes], end: int) -> int:
        """Cut the batch before its first line longer than one read, and keep that line and
        the lines after it that start inside the range for `next`. Returns where `rows` ends."""
        first = next((i for i, row in enumerate(rows) if self._is_piece(row)), None)
        if first is None:
            return end
        held = rows[first:]
        del rows[first:]
        end -= sum(map(len, held))
        at, kept, continues = end, 0, False
        for row in held:
            if not continues and at >= self.limit:   # a line that starts past the range
                self.exhausted = True
                break
            kept += 1
            at += len(row)
            continues = self._is_piece(row)
        self._pushed.extend(reversed(held[:kept]))
        return end


def scan_jsonl_range(path: str, start: int, end: int | None, settings: ScanSettings,
                     progress: Callable[[int, int], None] | None = None) -> ChunkResult:
    """Check the JSONL lines that start in [start, end) of the file; lines count from 1.
    `progress` is told the byte offset reached and the rows read so far."""
    checker = _Checker(settings)
    r = checker.r
    line = 0
    with open(path, "rb", buffering=1 << 20) as f:
        src = _LineSource(f, start, end, settings.max_line_bytes)
        while True:
            rows = src.batch(BATCH_ROWS)
            if rows:
                if settings.fast_path and checker.batch(rows, line + 1):
                    line += len(rows)
                    r.rows += len(rows)
                    r.parsed += len(rows)
                    if progress is not None:
                        progress(src.offset, r.rows)
                    continue
                src.push_back(rows)   # something to look at: row by row
                for _ in range(len(rows)):
                    raw = src.next()
                    if raw is None:
                        break
                    line = _one_line(checker, src, raw, line + 1)
                continue
            raw = src.next()
            if raw is None:
                break
            line = _one_line(checker, src, raw, line + 1)
        r.lines = line
    if progress is not None:
        progress(src.offset, r.rows)
    return checker.finish()


def _one_line(checker: _Checker, src: _LineSource, raw: bytes, line: int) -> int:
    """Check one line (or an object spread from it over more lines); returns the last line used."""
    r = checker.r
    hits = r.hits
    if type(raw) is OverlongLine:
        r.rows += 1
        r.unreadable += 1
        hits.add(LINE_TOO_LONG, line, 1, size=limits.human_bytes(raw.size),
                 limit=limits.human_bytes(checker.s.max_line_bytes), excerpt=raw.decode("utf-8", "replace"))
        return line
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        r.rows += 1
        r.parsed += 1
        checker.record(obj, line, raw)
        return line
    # Slow path: say exactly what is wrong with this line.
    if not raw.strip():
        hits.add(BLANK_LINE, line, 1)
        return line
    r.rows += 1
    text = _decode(raw, line, src.offset - len(raw), hits)
    if text is None:
        r.unreadable += 1
        return line
    text = text.rstrip("\r\n")
    if reader.opens_unclosed(text):
        whole, taken = reader.join_spread_object(text, src.next, MULTILINE_MAX_LINES, MULTILINE_MAX_BYTES)
        if whole is None:
            src.push_back(taken)
        else:
            end_line = line + len(taken)
            jd = checker.diagnosed(whole, line, end_line)
            hits.add(MULTILINE, line, 1, end_line=end_line, span=len(taken) + 1)
            if jd.fatal is None:
                r.parsed += 1
                checker.record(jd.value, line, whole.encode())
            else:
                r.unreadable += 1
            return end_line
    d = checker.diagnosed(text, line)
    if d.fatal is None:
        r.parsed += 1
        checker.record(d.value, line, raw)
    else:
        r.unreadable += 1
    return line


def scan_elements(items: Iterable[ArrayElement | ArrayTrouble], settings: ScanSettings) -> ChunkResult:
    """Check the elements of a JSON array file."""
    checker = _Checker(settings)
    r = checker.r
    last = 0
    for item in items:
        if isinstance(item, ArrayTrouble):
            entry = item.entry or (syntax.UNTERMINATED if "never closed" in item.detail else syntax.INVALID)
            r.hits.add(entry, item.line, item.column, detail=item.detail, count=1)
            continue
        last = item.end_line
        try:
            obj = orjson.loads(item.raw)
        except orjson.JSONDecodeError:
            text = _decode(item.raw, item.line, 0, r.hits)
            if text is None:
                r.rows += 1
                r.unreadable += 1
                continue
            d = syntax.diagnose(text)
            if syntax.only_comments(d):   # a comment between elements: no record there
                checker.diagnosed(text, item.line, item.end_line, item.column, d.without_fatal())
                continue
            r.rows += 1
            checker.diagnosed(text, item.line, item.end_line, item.column, d)
            if d.fatal is not None:
                r.unreadable += 1
                continue
            obj = d.value
        else:
            r.rows += 1
        r.parsed += 1
        checker.record(obj, item.line, item.raw)
    r.lines = last
    return checker.finish()


def scan_lenient_object(path: str, settings: ScanSettings) -> tuple[ChunkResult, str | None, int] | None:
    """A .json file holding one object that strict parsers refuse (a trailing comma, a
    comment, single quotes...): each mistake at its line and column, then its records, read
    as the lenient parser meant them. None when even that parser cannot read one object
    (JSON Lines, or a broken file: the caller reads it line by line), or past
    LENIENT_OBJECT_MAX_BYTES (the lenient parser is pure Python, a few MB/s)."""
    if os.path.getsize(path) > LENIENT_OBJECT_MAX_BYTES:
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    d = syntax.diagnose(text)
    records = reader.records_of_object(d.value) if d.fatal is None else None
    if records is None:
        return None
    key, rows = records
    result = scan_rows(rows, settings, 1)
    _Checker.report_issues(result.hits, text, d, 1)
    return result, key, len(rows)


def scan_rows(rows: Iterable[dict[str, Any]], settings: ScanSettings, first_line: int) -> ChunkResult:
    """Check CSV/Parquet rows; row i is reported at line first_line + i."""
    checker = _Checker(settings)
    r = checker.r
    line = first_line - 1
    for line, row in enumerate(rows, start=first_line):
        r.rows += 1
        try:
            raw = orjson.dumps(row, default=str)
        except orjson.JSONEncodeError:
            if not nests_deeper(row):
                raise
            # orjson writes at most 254 levels; a record under a key of a .json object can nest
            # up to the 1024 it reads.
            r.unreadable += 1
            r.hits.add(syntax.TOO_DEEP, line, None, detail=f"this record nests more than {MAX_NESTING} "
                       "levels deep")
            continue
        r.parsed += 1
        checker.record(row, line, raw)
    r.lines = line
    return checker.finish()
