"""`--fix` for CSV/TSV and Parquet files: the value repairs of JSON files, written back in
the file's own format, so a training script that loads `NAME.csv` loads `NAME.fixed.csv`.

A table has no syntax to mend, so the repairs are the values' (control characters, CR/CRLF
inside values; trimming and dropping duplicates with --unsafe-fixes). CSV goes through the
standard library's reader and writer, every cell read as text, so nothing is re-typed ("007"
stays "007"); Parquet keeps its schema and goes through pyarrow. Every input row is written
or rejected (with its line, or row number for Parquet, and the reason), never lost.
"""
from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO

import orjson

from doctor.fixes.dataset_model import RepairOptions, RepairSummary
from doctor.fixes.values import clean_value
from doctor.probes.dataset import reader
from doctor.results.words import counted

PARQUET_BATCH_ROWS = 4096


def _reject(rej: BinaryIO | None, summary: RepairSummary, line: int, reason: str, entry_id: str,
            row: Any, where: str = "line") -> None:
    summary.rejected_rows += 1
    summary.reasons[entry_id] += 1
    summary.first_reason.setdefault(entry_id, f"{where} {line}: {reason}")
    if rej is not None:
        text = orjson.dumps(row, default=str).decode()
        rej.write(orjson.dumps({"line": line, "reason": reason, "entry_id": entry_id, "text": text}) + b"\n")


def _duplicate_of(seen: dict[int, int], key: int, line: int) -> int | None:
    first = seen.setdefault(key, line)
    return None if first == line else first


# -- CSV / TSV ----------------------------------------------------------------------------------

def _line_terminator(path: str) -> str:
    with open(path, "rb") as f:
        head = f.readline()
    return "\r\n" if head.endswith(b"\r\n") else "\n"


def write_csv(path: str, out: BinaryIO | None, rej: BinaryIO | None, options: RepairOptions,
              summary: RepairSummary) -> None:
    """Repair a CSV/TSV file row by row; `out`/`rej` None is a dry run (count only)."""
    with open(path, "rb") as raw:
        if raw.read(3) == b"\xef\xbb\xbf":
            summary.actions["byte order mark removed"] += 1
    # surrogateescape: undecodable bytes survive reading, so the row can be rejected, not lost.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        text = None if out is None else io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            _repair_csv_rows(reader.csv_reader(f, path), text, rej, options.unsafe_fixes, summary,
                             reader.csv_delimiter(path), _line_terminator(path))
        finally:
            if text is not None:
                text.flush()
                text.detach()   # the caller's atomic writer closes the file, not this wrapper


def _repair_csv_rows(rows: Any, text: io.TextIOWrapper | None, rej: BinaryIO | None, unsafe: bool,
                     summary: RepairSummary, delimiter: str, terminator: str) -> None:
    writer = csv.writer(text, delimiter=delimiter, lineterminator=terminator) if text is not None else None
    header = next(rows, None)
    if header is None:
        return
    if writer is not None:
        writer.writerow(header)
    seen: dict[int, int] = {}
    line = rows.line_num + 1
    for record in rows:
        start, line = line, rows.line_num + 1
        if not record:
            summary.blank_lines += 1
            continue
        summary.input_rows += 1
        if len(record) != len(header):
            _reject(rej, summary, start, f"{counted(len(record), 'field')}, the header has {len(header)}; "
                    "a delimiter or quote inside a value is not quoted", "DATA-CSV-FIELD-COUNT", record)
            continue
        try:
            "".join(record).encode("utf-8")
        except UnicodeEncodeError:
            _reject(rej, summary, start, "invalid UTF-8; re-encode the file as UTF-8", "DATA-FILE-INVALID-UTF8",
                    [c.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for c in record])
            continue
        fixed = [clean_value(value, unsafe, summary.actions) for value in record]
        if unsafe:
            first = _duplicate_of(seen, hash(tuple(fixed)), start)
            if first is not None:
                _reject(rej, summary, start, f"duplicate of line {first} (dropped with --unsafe-fixes)",
                        "DATA-ROW-DUPLICATE", dict(zip(header, record)))
                continue
        summary.repaired_rows += 1
        summary.changed_rows += fixed != record
        if writer is not None:
            writer.writerow(fixed)


# -- Parquet ------------------------------------------------------------------------------------

class _KeepOpen:
    """The atomic writer's file as pyarrow sees it: pyarrow closes its sink, the caller must."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def tell(self) -> int:
        return self._f.tell()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._f.flush()
        self.closed = True


def write_parquet(path: str, out: BinaryIO | None, rej: BinaryIO | None, options: RepairOptions,
                  summary: RepairSummary) -> None:
    """Repair a Parquet file a batch at a time, keeping its schema; rows count from 1."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise reader.MissingExtra("repairing Parquet files needs pyarrow, which is not installed (the doctor's "
                                 "'data' extra installs it)") from err
    source = pq.ParquetFile(path)
    schema = source.schema_arrow
    writer = pq.ParquetWriter(_KeepOpen(out), schema) if out is not None else None
    seen: dict[int, int] = {}
    number = 0
    try:
        for batch in source.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            kept = []
            for row in batch.to_pylist():
                number += 1
                summary.input_rows += 1
                fixed = clean_value(row, options.unsafe_fixes, summary.actions)
                if options.unsafe_fixes:
                    key = hash(orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS, default=str))
                    first = _duplicate_of(seen, key, number)
                    if first is not None:
                        _reject(rej, summary, number, f"duplicate of row {first} (dropped with --unsafe-fixes)",
                                "DATA-ROW-DUPLICATE", row, where="row")
                        continue
                summary.repaired_rows += 1
                summary.changed_rows += fixed != row
                kept.append(fixed)
            if writer is not None and kept:
                writer.write_table(pa.Table.from_pylist(kept, schema=schema))
    finally:
        if writer is not None:
            writer.close()
