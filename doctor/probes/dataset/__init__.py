"""The dataset probe: `unsloth-doctor scan --data PATH`.

`scan_dataset` reads a JSONL, JSON-array, CSV or Parquet file in one streaming pass and
returns facts (rows, format, token percentiles) and located observations whose ids are the
entries of knowledge/dataset.yaml. Wording and severity live there, not here.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Evidence, Location, Observation
from doctor.probes.base import ProbeResult, example_runner
from doctor.probes.dataset import reader, scan
from doctor.probes.dataset.scan import ChunkResult, ScanSettings
from doctor.probes.dataset.schema import SHAREGPT
from doctor.probes.dataset.tokens import TokenizerProblem, percentile, recommend_max_seq_length

__all__ = ["DatasetOptions", "scan_dataset"]

MORE_LINES = "DATA-MORE-LINES"
SCHEMA_MIXED = "DATA-SCHEMA-MIXED"
SCHEMA_SHAREGPT = "DATA-SCHEMA-SHAREGPT"
ARRAY_AS_JSONL = "DATA-JSON-ARRAY-AS-JSONL"
FILE_UNREADABLE = "DATA-FILE-UNREADABLE"
FILE_EMPTY = "DATA-FILE-EMPTY"
NEEDS_EXTRA = "DATA-FILE-NEEDS-EXTRA"
TOKENIZER_UNUSABLE = "DATA-TOKENIZER-UNUSABLE"
TOKEN_STATS = "DATA-TOKENS-STATS"
RECORDS_UNDER_KEY = "DATA-JSON-RECORDS-UNDER-KEY"
# A .json file holding one object is parsed whole (it cannot be streamed); past this size the
# file is read line by line instead, and its lines are diagnosed.
JSON_OBJECT_MAX_BYTES = 64 << 20

REPO_ROOT = Path(__file__).resolve().parents[3]


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


def _settings(options: DatasetOptions, tokenizer: str | None) -> ScanSettings:
    return ScanSettings(cap=options.cap, long_row_bytes=options.long_row_bytes, tokenizer=tokenizer,
                        max_seq_length=options.max_seq_length, response_part=options.response_part)


def split_ranges(path: str, jobs: int) -> list[tuple[int, int | None]]:
    """Byte ranges at line boundaries, each starting at a line that opens a record."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, jobs):
            f.seek(max(cuts[-1], size * k // jobs))
            f.readline()  # finish the line we landed in
            for _ in range(10_000):  # prefer a line that starts an object (not a pretty-printed middle)
                here = f.tell()
                head = f.readline()
                if not head or head.lstrip()[:1] == b"{":
                    break
            if here < size and here > cuts[-1]:
                cuts.append(here)
    ends: list[int | None] = [*cuts[1:], None]
    return list(zip(cuts, ends))


def _scan_jsonl(path: str, options: DatasetOptions, settings: ScanSettings) -> ChunkResult:
    size = os.path.getsize(path)
    jobs = max(1, options.jobs)
    if jobs > 1 and size >= options.jobs_min_bytes:
        ranges = split_ranges(path, jobs)
        if len(ranges) > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            # The duplicate memory is shared out, so all ranges together stay within it.
            share = replace(settings, duplicate_memory_rows=settings.duplicate_memory_rows // len(ranges))
            with multiprocessing.get_context(method).Pool(len(ranges)) as pool:
                # imap keeps file order and lets each part be merged as it arrives.
                parts = pool.imap(_scan_range, [(path, start, end, share) for start, end in ranges])
                return merge_chunks(parts, same_hash_seed=method == "fork")
    with _progress(path, size, options) as update:
        return scan.scan_jsonl_range(path, 0, None, settings, update)


def _scan_range(args: tuple[str, int, int | None, ScanSettings]) -> ChunkResult:
    return scan.scan_jsonl_range(*args)


def _progress(path: str, size: int, options: DatasetOptions) -> Any:
    """A rich progress bar on stderr, only when asked, on a terminal, for a big file."""
    if not (options.progress and sys.stderr.isatty() and size > (8 << 20)):
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    @contextmanager
    def bar() -> Any:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=Console(stderr=True), transient=True) as prog:
            task = prog.add_task(f"checking {Path(path).name}", total=size)
            yield lambda done: prog.update(task, completed=done)
    return bar()


def merge_chunks(parts: Iterable[ChunkResult], same_hash_seed: bool = True) -> ChunkResult:
    """Join range results in file order, shifting their lines and linking duplicates."""
    out: ChunkResult | None = None
    shift = 0
    earlier: list[tuple[dict[int, int], int]] = []   # each range's row hashes, with its line shift
    for part in parts:
        if out is None:
            out = ChunkResult(hits=scan.Hits(part.hits.cap))
        out.hits.merge_shifted(part.hits, shift)
        out.rows += part.rows
        out.parsed += part.parsed
        out.unreadable += part.unreadable
        out.max_row_bytes = max(out.max_row_bytes, part.max_row_bytes)
        out.duplicate_memory_full |= part.duplicate_memory_full
        for name, count in part.schema_counts.items():
            out.schema_counts[name] += count
            firsts = out.schema_first.setdefault(name, [])
            room = scan.FIRST_LINES_PER_SCHEMA - len(firsts)
            firsts.extend(line + shift for line in part.schema_first.get(name, [])[:max(0, room)])
        if same_hash_seed:
            # Rows of this range that an earlier range already holds: set operations in C,
            # then a Python step only for the (few) duplicates themselves.
            reported: set[int] = set()
            for seen, seen_shift in earlier:
                for key in (seen.keys() & part.seen.keys()) - reported:
                    out.hits.add(scan.DUPLICATE, part.seen[key] + shift, None, first_line=seen[key] + seen_shift)
                    reported.add(key)
            earlier.append((part.seen, shift))
        if part.tokens is not None:
            if out.tokens is None:
                out.tokens = type(part.tokens)()
            out.tokens.merge(part.tokens)
        shift += part.lines
    assert out is not None, "a split scan has at least one range"
    out.lines = shift
    return out


def _scan_file(path: str, kind: str, options: DatasetOptions, settings: ScanSettings,
               extra: list[Observation]) -> ChunkResult:
    if kind == "parquet" or kind == "csv":
        first_line = 1 if kind == "parquet" else 2  # CSV line 1 is the header
        return scan.scan_rows(reader.iter_table_rows(path, kind), settings, first_line)
    first = reader.first_significant_byte(path)
    if kind == "json" and first == b"{" and os.path.getsize(path) <= JSON_OBJECT_MAX_BYTES:
        whole = reader.read_json_object(path)
        if whole is not None:
            key, rows = whole
            if key is not None:
                extra.append(Observation(RECORDS_UNDER_KEY, Location(path, 1, 1), {
                    "path": path, "line": 1, "key": key, "count": len(rows)}))
            return scan.scan_rows(rows, settings, 1)
    if first == b"[":
        if kind == "jsonl":
            extra.append(Observation(ARRAY_AS_JSONL, Location(path, 1, 1), {"path": path, "line": 1}))
        with open(path, "rb") as f:
            return scan.scan_elements(reader.iter_array_elements(f), settings)
    return _scan_jsonl(path, options, settings)


def _observations(path: str, result: ChunkResult) -> list[Observation]:
    out: list[Observation] = []
    hits = result.hits
    for entry_id, shown in hits.shown.items():
        for hit in sorted(shown, key=lambda h: (h.line or 0, h.column or 0)):
            values = {"path": path, "line": hit.line, "column": hit.column, **hit.values}
            if hit.end_line is not None:
                values["end_line"] = hit.end_line
            excerpt = values.pop("excerpt", None)
            evidence = (Evidence("line", f"{path}:{hit.line}", excerpt, path, hit.line),) if excerpt else ()
            out.append(Observation(entry_id, Location(path, hit.line, hit.column, hit.end_line), values,
                                   evidence))
        total = hits.counts[entry_id]
        if total > len(shown):
            first = min((h.line for h in shown if h.line is not None), default=None)
            out.append(Observation(MORE_LINES, Location(path, first), {
                "path": path, "entry": entry_id, "count": total, "shown": len(shown),
                "more": total - len(shown), "first_line": first}))
    return out


def _describe_schemas(result: ChunkResult) -> str:
    parts = []
    for name, count in result.schema_counts.most_common():
        firsts = result.schema_first.get(name, [])
        where = "line" if len(firsts) == 1 else "lines"
        parts.append(f"{name}: {count} row{'s' if count != 1 else ''} "
                     f"({'first at ' if count > len(firsts) else ''}{where} {', '.join(map(str, firsts))})")
    return "; ".join(parts)


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
        except TokenizerProblem as err:
            observations.append(Observation(TOKENIZER_UNUSABLE, Location(tokenizer),
                                            {"path": tokenizer, "detail": str(err)}))
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
                           [AreaStatus("dataset", f"Dataset {Path(path).name}", "not read", ran=False)])
    except (OSError, ValueError) as err:  # unreadable file, or pyarrow refusing a broken table
        observations.append(Observation(FILE_UNREADABLE, Location(path),
                                        {"path": path, "detail": f"{type(err).__name__}: {err}"}))
        return ProbeResult(facts.freeze(), observations,
                           [AreaStatus("dataset", f"Dataset {Path(path).name}", "not read", ran=False)])
    observations.extend(_observations(path, result))
    observations.extend(_file_level(path, result, facts))
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
    problems = sum(result.hits.counts.values())
    detail = f"{result.rows} rows, {schema}" + (f", {problems} problems" if problems else "")
    area = AreaStatus("dataset", f"Dataset {Path(path).name}", detail)
    return ProbeResult(facts.freeze(), observations, [area])


def _file_level(path: str, result: ChunkResult, facts: FactCollector) -> list[Observation]:
    out: list[Observation] = []
    if result.rows == 0:
        out.append(Observation(FILE_EMPTY, Location(path), {"path": path}))
    if len(result.schema_counts) > 1:
        first = min(line for lines in result.schema_first.values() for line in lines)
        out.append(Observation(SCHEMA_MIXED, Location(path, first), {
            "path": path, "line": first, "schemas": _describe_schemas(result),
            "count": len(result.schema_counts)}))
    if result.schema_counts.get(SHAREGPT):
        line = result.schema_first[SHAREGPT][0]
        out.append(Observation(SCHEMA_SHAREGPT, Location(path, line), {
            "path": path, "line": line, "count": result.schema_counts[SHAREGPT]}))
    stats = result.tokens
    if stats is not None and stats.measured:
        values: dict[str, Any] = {"path": path, "rows": stats.measured}
        for q in (50, 90, 95, 99):
            values[f"p{q}"] = percentile(stats.lengths, q)
            facts.set(f"dataset.tokens.p{q}", values[f"p{q}"])
        values["max"] = max(stats.lengths)
        values["recommended"] = recommend_max_seq_length(stats.lengths)
        values["truncated"] = stats.truncated
        values["truncated_share"] = f"{100 * stats.truncated / stats.measured:.1f}%"
        facts.set("dataset.tokens.max", values["max"])
        facts.set("dataset.tokens.measured_rows", stats.measured)
        facts.set("dataset.tokens.truncated_rows", stats.truncated)
        facts.set("dataset.tokens.truncated_share", round(stats.truncated / stats.measured, 6))
        facts.set("dataset.tokens.recommended_max_seq_length", values["recommended"])
        out.append(Observation(TOKEN_STATS, Location(path), values))
    if result.duplicate_memory_full:
        facts.set("dataset.duplicates.checked_rows", scan.DUPLICATE_MEMORY_ROWS)
    return out


# -- kb test: run this probe on an entry's example input ---------------------------------------

_OPTION_NAMES = {f.name for f in fields(DatasetOptions)}


def _example_options(raw: dict[str, Any]) -> DatasetOptions:
    values = {k: v for k, v in raw.items() if k in _OPTION_NAMES}
    tok = values.get("tokenizer")
    if tok and not Path(tok).is_dir() and (REPO_ROOT / tok).is_dir():
        values["tokenizer"] = str(REPO_ROOT / tok)
    return DatasetOptions(**values)


@contextmanager
def _without(packages: list[str]) -> Iterator[None]:
    """Make `import NAME` fail for these packages, the way Python does for a missing one
    (a None entry in sys.modules), so an example can show the message for an absent extra."""
    saved = {name: mod for name, mod in sys.modules.items()
             if any(name == p or name.startswith(p + ".") for p in packages)}
    try:
        for name in [*packages, *saved]:
            sys.modules[name] = None  # type: ignore[assignment]
        yield
    finally:
        for name in [*packages, *saved]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _runner(suffix: str) -> Callable[[str, dict[str, Any]], list[Observation]]:
    def run(text: str, options: dict[str, Any]) -> list[Observation]:
        options = dict(options or {})
        blocked = list(options.pop("without_packages", []))
        encoding = options.pop("encoding", "utf-8")  # e.g. cp1252, to write bytes that are not UTF-8
        with tempfile.TemporaryDirectory() as tmp, _without(blocked):
            target = Path(tmp) / f"example{suffix}"
            target.write_bytes(text.encode(encoding))
            return scan_dataset(str(target), _example_options(options)).observations
    return run


example_runner("dataset.jsonl")(_runner(".jsonl"))
example_runner("dataset.json")(_runner(".json"))
example_runner("dataset.csv")(_runner(".csv"))
example_runner("dataset.parquet")(_runner(".parquet"))
