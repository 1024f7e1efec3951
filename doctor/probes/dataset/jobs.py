"""`--jobs N`: split a JSONL file into byte ranges at record starts, scan them in N processes,
and join the results in file order as if one process had read the whole file."""
from __future__ import annotations

import multiprocessing
import os
from dataclasses import replace
from itertools import chain
from typing import BinaryIO, Iterable

from doctor.probes.dataset import scan, workers
from doctor.probes.dataset.rowmemory import RowMemory
from doctor.probes.dataset.scan import ChunkResult, ScanSettings


def split_ranges(path: str, jobs: int) -> list[tuple[int, int | None]]:
    """Byte ranges at line boundaries, each starting at a line that opens a record."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, jobs):
            f.seek(max(cuts[-1], size * k // jobs))
            _skip_line(f)  # finish the line we landed in
            for _ in range(10_000):  # prefer a line that starts an object (not a pretty-printed middle)
                here = f.tell()
                head = f.readline(4096)
                if not head.endswith(b"\n"):
                    _skip_line(f)
                if not head or head.lstrip()[:1] == b"{":
                    break
            if here < size and here > cuts[-1]:
                cuts.append(here)
    ends: list[int | None] = [*cuts[1:], None]
    return list(zip(cuts, ends))


def _skip_line(f: BinaryIO) -> None:
    """Read to the end of the current line a MiB at a time: a line may be any length."""
    while True:
        chunk = f.readline(1 << 20)
        if not chunk or chunk.endswith(b"\n"):
            return


def scan_in_parallel(path: str, jobs: int, settings: ScanSettings) -> ChunkResult | None:
    """The file scanned by `jobs` processes, or None when it does not split into ranges."""
    ranges = split_ranges(path, jobs)
    if len(ranges) < 2:
        return None
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # The duplicate memory is shared out, so all ranges together stay within it.
    share = replace(settings, duplicate_memory_rows=settings.duplicate_memory_rows // len(ranges))
    (start, end), rest = ranges[0], ranges[1:]
    tasks = [(path, a, b, share) for a, b in rest]
    with workers.started(multiprocessing.get_context(method), _scan_range, tasks) as parts:
        # The other ranges start in workers; this process scans the first one meanwhile, so
        # N jobs are N processes and the first range's result never has to be pickled.
        first = scan.scan_jsonl_range(path, start, end, share)
        # Row hashes are comparable across processes only when they share the hash seed (fork).
        return merge_chunks(chain([first], parts), same_hash_seed=method == "fork")


def _scan_range(args: tuple[str, int, int | None, ScanSettings]) -> ChunkResult:
    return scan.scan_jsonl_range(*args)


def merge_chunks(parts: Iterable[ChunkResult], same_hash_seed: bool = True) -> ChunkResult:
    """Join range results in file order, shifting their lines and linking duplicates."""
    out: ChunkResult | None = None
    shift = 0
    earlier: list[tuple[RowMemory, int]] = []  # each range's rows, with its line shift
    for part in parts:
        if out is None:
            out = ChunkResult(hits=scan.Hits(part.hits.cap))
        out.hits.merge_shifted(part.hits, shift)
        out.rows += part.rows
        out.parsed += part.parsed
        out.unreadable += part.unreadable
        out.max_row_bytes = max(out.max_row_bytes, part.max_row_bytes)
        out.seen.full |= part.seen.full
        for name, count in part.schema_counts.items():
            out.schema_counts[name] += count
            out.schema_columns.setdefault(name, part.schema_columns.get(name, ()))
            firsts = out.schema_first.setdefault(name, [])
            room = scan.FIRST_LINES_PER_SCHEMA - len(firsts)
            firsts.extend(line + shift for line in part.schema_first.get(name, [])[:max(0, room)])
        if same_hash_seed:
            # Rows of this range that an earlier range already holds: set operations in C,
            # then a Python step only for the (few) duplicates themselves.
            reported: set[int] = set()
            for seen, seen_shift in earlier:
                for key in seen.common(part.seen) - reported:
                    out.hits.add(scan.DUPLICATE, part.seen.index()[key] + shift, None,
                                 first_line=seen.index()[key] + seen_shift)
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
