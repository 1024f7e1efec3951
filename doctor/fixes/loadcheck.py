"""Load a repaired dataset the way training will, before saying it is repaired.

`datasets.load_dataset("json")` (datasets 4.8.5, packaged_modules/json/json.py:183-245)
reads JSON Lines in chunks with pyarrow's JSON reader (`pyarrow.json.read_json`) and
concatenates the chunks into one table; Parquet goes through pyarrow's Parquet reader, CSV
through pandas in chunks of 10,000 rows (packaged_modules/csv/csv.py:64), each made an Arrow
table. A
copy that parses line by line can still fail there: a field that is a string in one place and
a number in another, an integer past 64 bits. The same reader is run here, chunk by chunk in
bounded memory, and every chunk's schema must unify with the others as one table needs.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Iterator

CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class LoadCheck:
    ok: bool | None          # None: not checked (pyarrow is not installed)
    detail: str              # the reader's complaint, or what was read

    def line(self, path: str) -> str:
        if self.ok is None:
            return f"{path}: not loaded as training would ({self.detail})"
        if self.ok:
            return f"{path} loads as training reads it ({self.detail})"
        return f"{path} still fails to load as training reads it: {self.detail}"


def load_like_training(path: str, kind: str) -> LoadCheck:
    """kind: jsonl (also a repaired .json: the copy is JSON Lines), csv or parquet."""
    try:
        import pyarrow as pa
    except ImportError:
        return LoadCheck(None, "pyarrow is not installed; pip install pyarrow")
    if kind == "csv":
        try:
            import pandas  # noqa: F401  (datasets reads CSV with it)
        except ImportError:
            return LoadCheck(None, "pandas, which datasets reads CSV with, is not installed")
    try:
        tables = {"parquet": _parquet_batches, "csv": _csv_batches}.get(kind, _jsonl_batches)(path)
        rows, schema = 0, None
        for batch_rows, batch_schema in tables:
            rows += batch_rows
            schema = batch_schema if schema is None else pa.unify_schemas([schema, batch_schema])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError) as err:
        detail = _first_line(str(err))
        if "changed from" in detail:
            detail += (" (datasets 4.8.5 stores such a field as JSON text instead, "
                       "packaged_modules/json/json.py:249: no longer the type it was written as)")
        return LoadCheck(False, detail)
    columns = len(schema.names) if schema is not None else 0
    return LoadCheck(True, f"{rows} {'row' if rows == 1 else 'rows'}, {columns} "
                           f"{'column' if columns == 1 else 'columns'}, one schema")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


_ROW = re.compile(r"\bin row (\d+)")


def _jsonl_batches(path: str) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.json as paj

    before = 0   # rows of the chunks already read: arrow counts rows from 0 in each chunk
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            if not chunk:
                return
            chunk += f.readline()   # whole lines, as datasets reads them
            if not chunk.strip():
                continue
            # one block for the chunk: a record is never split, as datasets retries to ensure
            try:
                table = paj.read_json(io.BytesIO(chunk), read_options=paj.ReadOptions(block_size=len(chunk) + 1))
            except pa.ArrowInvalid as err:   # "in row 2" of this chunk -> the file's line
                raise pa.ArrowInvalid(_ROW.sub(lambda m: f"on line {before + int(m.group(1)) + 1}", str(err))) from err
            before += table.num_rows
            yield table.num_rows, table.schema


def _parquet_batches(path: str) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=65536):
        yield batch.num_rows, batch.schema


def _csv_batches(path: str) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pandas as pd

    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    try:
        for frame in pd.read_csv(path, sep=delimiter, chunksize=10_000):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            yield table.num_rows, table.schema
    except (ValueError, pd.errors.ParserError) as err:
        raise OSError(str(err)) from err
