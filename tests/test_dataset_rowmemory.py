"""The duplicate check's memory: duplicates found at the end, in line order, with the line of
the first occurrence; bounded by its capacity; the same after a trip through a worker."""
from __future__ import annotations

import pickle
from pathlib import Path

import orjson

from doctor.probes.dataset import scan
from doctor.probes.dataset.jobs import merge_chunks
from doctor.probes.dataset.rowmemory import RowMemory
from doctor.probes.dataset.scan import ScanSettings


def test_duplicates_name_the_first_line_whether_rows_came_in_batches_or_one_by_one() -> None:
    memory = RowMemory(capacity=100)
    memory.add_batch([10, 20, 30], first_line=1)        # lines 1-3
    memory.add(20, 4)
    memory.add_batch([40, 10, 10], first_line=5)        # lines 5-7
    memory.add(50, 9)                                    # line 8 was blank: not a row
    assert memory.duplicates() == ([(4, 2), (6, 1), (7, 1)], 3)
    assert memory.index() == {10: 1, 20: 2, 30: 3, 40: 5, 50: 9}
    assert not memory.full


def test_a_clean_memory_reports_nothing_and_never_builds_the_index() -> None:
    memory = RowMemory(capacity=1000)
    for start in range(1, 900, 100):
        memory.add_batch(list(range(start, start + 100)), first_line=start)
    assert memory.duplicates() == ([], 0) and memory._index is None


def test_past_capacity_rows_are_checked_against_the_remembered_ones_but_not_remembered() -> None:
    memory = RowMemory(capacity=3)
    memory.add_batch([1, 2, 3, 4, 1], first_line=1)     # 4 and the second 1 come after it filled
    memory.add_batch([4, 2], first_line=6)              # 4 was never remembered; 2 was
    assert memory.full and len(memory) == 3
    assert memory.duplicates() == ([(5, 1), (7, 2)], 2)


def test_only_the_first_duplicates_are_listed_the_rest_counted_so_memory_stays_bounded() -> None:
    memory = RowMemory(capacity=4, keep=3)
    memory.add_batch([1, 2, 1, 2], first_line=1)          # 2 in the remembered region
    memory.add_batch([1] * 1000, first_line=5)            # 1000 after it filled
    shown, count = memory.duplicates()
    assert shown == [(3, 1), (4, 2), (5, 1)] and count == 1002
    assert len(memory._late) <= 3


def test_the_memory_survives_pickling_as_a_worker_sends_it_back() -> None:
    memory = RowMemory(capacity=10)
    memory.add_batch([7, 8, 9], first_line=1)
    back = pickle.loads(pickle.dumps(memory))
    other = RowMemory(capacity=10)
    other.add_batch([9, 7, 5], first_line=1)
    assert back.common(other) == {7, 9}
    assert back.index() == {7: 1, 8: 2, 9: 3}


def test_a_split_scan_links_a_duplicate_to_the_earlier_range(tmp_path: Path) -> None:
    rows = [orjson.dumps({"text": f"row {i}"}) + b"\n" for i in range(600)]
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(rows[:300]) + rows[5] + b"".join(rows[300:]))    # line 301 repeats 6
    cut = sum(map(len, rows[:250]))
    parts = [scan.scan_jsonl_range(str(data), 0, cut, ScanSettings()),
             scan.scan_jsonl_range(str(data), cut, None, ScanSettings())]
    merged = merge_chunks(parts)
    whole = scan.scan_jsonl_range(str(data), 0, None, ScanSettings())
    assert merged.hits.counts == whole.hits.counts == {scan.DUPLICATE: 1}
    assert [(h.line, h.values) for h in merged.hits.shown[scan.DUPLICATE]] == \
           [(h.line, h.values) for h in whole.hits.shown[scan.DUPLICATE]] == [(301, {"first_line": 6})]


def test_a_small_memory_gives_the_same_findings_on_the_fast_path_and_row_by_row(tmp_path: Path) -> None:
    rows = [orjson.dumps({"instruction": f"q{i % 700}", "output": "a"}) + b"\n" for i in range(1000)]
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(rows))
    found = []
    for fast in (True, False):
        r = scan.scan_jsonl_range(str(data), 0, None, ScanSettings(duplicate_memory_rows=500, fast_path=fast, cap=10_000))
        found.append((r.seen.full, r.hits.counts, [(h.line, h.values) for h in r.hits.shown[scan.DUPLICATE]]))
    assert found[0] == found[1]
    full, counts, shown = found[0]
    # Rows 701-1000 repeat rows 1-300; all of those were remembered (the first 500 were).
    assert full and counts == {scan.DUPLICATE: 300} and shown[0] == (701, {"first_line": 1})
