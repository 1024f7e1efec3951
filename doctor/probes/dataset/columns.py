"""The column names of a dataset file, from its first record (JSONL), header (CSV/TSV) or
schema (Parquet): what a script's `dataset_text_field` is checked against."""
from __future__ import annotations

from pathlib import Path

from doctor.probes.dataset import reader

MAX_COLUMNS = 200
_FIRST_LINES = 1000   # blank or unreadable lines skipped before giving up


def first_columns(path: str | Path, kind: str) -> list[str] | None:
    """The columns, or None when the file does not say (JSON arrays, unreadable files)."""
    try:
        if kind == "jsonl":
            return _jsonl_columns(path)
        if kind == "csv":
            with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
                header = next(reader.csv_reader(f, path), None)
            return header[:MAX_COLUMNS] if header else None
        if kind == "parquet":
            import pyarrow.parquet as pq
            return list(pq.read_schema(str(path)).names)[:MAX_COLUMNS]
    except (OSError, ValueError, ImportError):
        return None
    return None


def _jsonl_columns(path: str | Path) -> list[str] | None:
    import orjson

    with open(path, "rb") as f:
        for _, line in zip(range(_FIRST_LINES), f):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            return [str(k) for k in obj][:MAX_COLUMNS] if isinstance(obj, dict) else None
    return None
