"""The dataset check: `unsloth-doctor scan --data PATH`.

`scan_dataset` reads a JSONL, JSON-array, CSV or Parquet file in one streaming pass and
returns facts (rows, format, token percentiles) and located observations whose ids are the
entries of knowledge/dataset.yaml. Wording and severity live there, not here.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from doctor import progress
from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation
from doctor.probes import limits
from doctor.probes.base import ProbeResult
from doctor.probes.dataset.columns import first_columns
from doctor.probes.dataset import jobs, observe, reader, scan
from doctor.probes.dataset.jobs import split_ranges
from doctor.probes.dataset.scan import ChunkResult, ScanSettings
from doctor.probes.dataset.tokens import TokenizerProblem
from doctor.results.words import counted

__all__ = ["DatasetOptions", "scan_dataset", "split_ranges"]

ARRAY_AS_JSONL = "DATA-JSON-ARRAY-AS-JSONL"
FILE_UNREADABLE = "DATA-FILE-UNREADABLE"
CSV_FIELD_COUNT = "DATA-CSV-FIELD-COUNT"
NEEDS_EXTRA = "DATA-FILE-NEEDS-EXTRA"
TOKENIZER_UNUSABLE = "DATA-TOKENIZER-UNUSABLE"
RECORDS_UNDER_KEY = "DATA-JSON-RECORDS-UNDER-KEY"
T = TypeVar("T")
# A .json file holding one object is parsed whole (it cannot be streamed); past this size the
# file is read line by line instead, and its lines are diagnosed.
JSON_OBJECT_MAX_BYTES = 64 << 20


@dataclass
class DatasetOptions:
    tokenizer: str | None = None
    max_seq_length: int | None = None
    response_part: str | None = None
    jobs: int = 1
    progress: bool = False
    cap: int = 20                       # separate observations per problem before a summary
    long_row_bytes: int = 100_000
    jobs_min_bytes: int = 64 << 20      # smaller files are not worth the process start-up
    fast_path: bool = True              # off: check every row one by one (same findings, slower)
    max_line_bytes: int = limits.DATASET_LINE_MAX_BYTES   # a longer JSONL line is skipped unread


def _settings(options: DatasetOptions, tokenizer: str | None) -> ScanSettings:
    return ScanSettings(cap=options.cap, long_row_bytes=options.long_row_bytes, tokenizer=tokenizer,
                        max_seq_length=options.max_seq_length, response_part=options.response_part,
                        fast_path=options.fast_path, max_line_bytes=options.max_line_bytes)


def _scan_jsonl(path: str, options: DatasetOptions, settings: ScanSettings) -> ChunkResult:
    size = os.path.getsize(path)
    if options.jobs > 1 and size >= options.jobs_min_bytes:
        result = jobs.scan_in_parallel(path, options.jobs, settings)
        if result is not None:
            return result
    with _progress(path, size, options) as update:
        return scan.scan_jsonl_range(path, 0, None, settings, update)


def _progress(path: str, size: int, options: DatasetOptions) -> Any:
    """A progress bar for a file that takes a while: a big one, or one whose tokens are measured."""
    slow = size > (8 << 20) or (options.tokenizer is not None and size > (256 << 10))
    if not slow:
        return nullcontext(None)
    verb = "measuring tokens in" if options.tokenizer else "checking"
    return progress.bar(f"{verb} {_shown_path(path)}", size, wanted=options.progress)


def _shown_path(path: str) -> str:
    """The path as the user would type it: relative to the working folder when under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:   # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def _ticking(items: Iterable[T], tick: Callable[[int], None], every: int = 4096) -> Iterator[T]:
    """The same items, calling `tick(count)` after every `every` of them (to move a progress bar)."""
    count = 0
    for count, item in enumerate(items, start=1):
        yield item
        if count % every == 0:
            tick(count)
    tick(count)


def _scan_file(path: str, kind: str, options: DatasetOptions, settings: ScanSettings,
               extra: list[Observation]) -> ChunkResult:
    size = os.path.getsize(path)
    if kind == "parquet" or kind == "csv":
        first_line = 1 if kind == "parquet" else 2  # CSV line 1 is the header
        ragged: list[reader.RaggedRow] = []
        with _progress(path, size, options) as update:
            read = [0]   # bytes, as far as the reader's batches tell

            def done(fraction: float) -> None:
                read[0] = int(size * fraction)
            rows = reader.iter_table_rows(path, kind, ragged=ragged, on_batch=done if update else None)
            if update is not None:
                rows = _ticking(rows, lambda count: update(read[0], count))
            result = scan.scan_rows(rows, settings, first_line)
        if kind == "csv":
            _relocate_csv_rows(path, result, first_line)
        for row in ragged:
            result.rows += 1
            result.unreadable += 1
            result.hits.add(CSV_FIELD_COUNT, row.line, None, expected=row.expected, actual=row.actual,
                            excerpt=row.text)
        return result
    first = reader.first_significant_byte(path)
    if kind == "json" and first == b"{" and os.path.getsize(path) <= JSON_OBJECT_MAX_BYTES:
        whole = reader.read_json_object(path)
        if whole is not None:
            key, rows = whole
            if key is not None:
                extra.append(Observation(RECORDS_UNDER_KEY, Location(path, 1, 1), {
                    "path": path, "line": 1, "key": key, "count": len(rows)}))
            return scan.scan_rows(rows, settings, 1)
        lenient = scan.scan_lenient_object(path, settings)
        if lenient is not None:
            result, key, count = lenient
            if key is not None:
                extra.append(Observation(RECORDS_UNDER_KEY, Location(path, 1, 1), {
                    "path": path, "line": 1, "key": key, "count": count}))
            return result
    if first == b"[":
        if kind == "jsonl":
            extra.append(Observation(ARRAY_AS_JSONL, Location(path, 1, 1), {"path": path, "line": 1}))
        with open(path, "rb") as f, _progress(path, size, options) as update:
            items = reader.iter_array_elements(f)
            if update is not None:
                items = _ticking(items, lambda rows: update(f.tell(), rows))
            return scan.scan_elements(items, settings)
    return _scan_jsonl(path, options, settings)


def _relocate_csv_rows(path: str, result: ChunkResult, first_line: int) -> None:
    """Give CSV findings the line their record starts on: until here a finding's line is the
    record's number + first_line, which is wrong after a value that spans lines."""
    hits = [hit for shown in result.hits.shown.values() for hit in shown]
    wanted = {line - first_line for hit in hits for line in (hit.line, hit.values.get("first_line"))
              if isinstance(line, int)}
    wanted |= {line - first_line for lines in result.schema_first.values() for line in lines}
    where = reader.csv_record_lines(path, wanted)
    if all(where.get(n, n + first_line) == n + first_line for n in wanted):
        return
    for hit in hits:
        if hit.line is not None:
            hit.line = where.get(hit.line - first_line, hit.line)
        if isinstance(hit.values.get("first_line"), int):
            hit.values["first_line"] = where.get(hit.values["first_line"] - first_line, hit.values["first_line"])
    for name, lines in result.schema_first.items():
        result.schema_first[name] = [where.get(line - first_line, line) for line in lines]


def scan_dataset(path: str, options: DatasetOptions | None = None) -> ProbeResult:
    """Check one dataset file; never raises for a bad file, says what is wrong instead."""
    options = options or DatasetOptions()
    facts = FactCollector(f"dataset:{path}")
    kind = reader.kind_of(path)
    facts.set("dataset.path", path)
    facts.set("dataset.format", kind)
    observations: list[Observation] = []
    tokenizer = options.tokenizer
    if tokenizer:
        try:
            from doctor.probes.dataset.tokens import load_tokenizer
            load_tokenizer(tokenizer)
        except TokenizerProblem as err:   # a missing package gets its install command
            observations.append(Observation(NEEDS_EXTRA if err.missing_package else TOKENIZER_UNUSABLE,
                                            err.where or Location(tokenizer), {"path": tokenizer, "detail": str(err)}))
            tokenizer = None
    settings = _settings(options, tokenizer)
    try:
        if not os.path.isfile(path):
            raise OSError(f"{path} is a folder, not a dataset file" if os.path.isdir(path)
                          else f"no such file: {path}")
        result = _scan_file(path, kind, options, settings, observations)
    except reader.MissingExtra as err:
        observations.append(Observation(NEEDS_EXTRA, Location(path), {"path": path, "detail": str(err)}))
        return ProbeResult(facts.freeze(), observations,
                           [AreaStatus("dataset", f"Dataset {path}", "not read", ran=False, path=path)])
    except (OSError, ValueError) as err:  # unreadable file, or pyarrow refusing a broken table
        observations.append(Observation(FILE_UNREADABLE, Location(path),
                                        {"path": path, "detail": f"{type(err).__name__}: {err}"}))
        return ProbeResult(facts.freeze(), observations,
                           [AreaStatus("dataset", f"Dataset {path}", "not read", ran=False, path=path)])
    observations.extend(observe.observations(path, result, kind))
    observations.extend(observe.file_level(path, result, facts, kind, options.max_seq_length))
    dominant = result.schema_counts.most_common(1)[0][0] if result.schema_counts else "none"
    schema = "mixed" if len(result.schema_counts) > 1 else dominant
    facts.set("dataset.lines", result.lines)
    facts.set("dataset.rows", result.rows)
    facts.set("dataset.parsed_rows", result.parsed)
    facts.set("dataset.unreadable_rows", result.unreadable)
    facts.set("dataset.schema", schema)
    facts.set("dataset.schema_counts", dict(result.schema_counts))
    facts.set("dataset.duplicates", result.hits.counts.get(scan.DUPLICATE, 0))
    facts.set("dataset.max_row_bytes", result.max_row_bytes)
    facts.set("dataset.problem_counts", dict(result.hits.counts))
    facts.set("dataset.columns", first_columns(path, kind))   # what a script's dataset_text_field must name
    # the count of findings is the console's, from the findings it shows under this line
    facts.set("dataset.schema_columns", {name: list(cols) for name, cols in result.schema_columns.items()})
    columns = result.schema_columns.get(dominant, ())
    detail = f"{counted(result.rows, 'row')}, {schema}" + (f" by {'/'.join(columns)}"
                                                            if columns and schema != "mixed" else "")
    area = AreaStatus("dataset", f"Dataset {path}", detail, path=path)
    return ProbeResult(facts.freeze(), observations, [area])
