"""`--jobs N` splits a file by byte ranges at line starts and must report exactly what one
process reports: the same findings at the same lines, duplicates across the split included."""
from __future__ import annotations

import json
from pathlib import Path

from doctor.probes.dataset import DatasetOptions, scan_dataset, split_ranges


def build(path: Path, rows: int = 6000) -> Path:
    lines = [json.dumps({"instruction": f"question {i}", "input": "", "output": f"answer {i}"})
             for i in range(rows)]
    lines[10] = "{'instruction': 'q', 'output': 'single quotes'}"
    lines[rows // 2 + 7] = lines[3]                      # duplicate across the split
    lines[rows - 5] = json.dumps({"instruction": "q", "input": "", "output": ""})
    pretty = json.dumps({"instruction": "spread", "output": "over lines"}, indent=2)
    lines.insert(rows // 2 - 2, pretty)
    path.write_text("\n".join(lines) + "\n")
    return path


def summary(result) -> tuple:
    located = sorted((o.entry_id, o.location.line, o.location.column, o.location.end_line)
                     for o in result.observations)
    keys = ("dataset.rows", "dataset.lines", "dataset.schema_counts", "dataset.duplicates",
            "dataset.problem_counts")
    return located, {k: result.facts[k] for k in keys}


def test_two_jobs_report_what_one_process_reports(tmp_path: Path) -> None:
    path = build(tmp_path / "big.jsonl")
    one = scan_dataset(str(path), DatasetOptions(jobs=1))
    two = scan_dataset(str(path), DatasetOptions(jobs=2, jobs_min_bytes=0))
    three = scan_dataset(str(path), DatasetOptions(jobs=3, jobs_min_bytes=0))
    assert summary(one) == summary(two) == summary(three)
    found = {(o.entry_id, o.location.line) for o in one.observations}
    assert ("DATA-ROW-DUPLICATE", 6000 // 2 + 7 + 1 + 4) in found   # after the 4-line object
    assert ("DATA-JSON-MULTILINE", 6000 // 2 - 1) in found


def test_ranges_start_at_record_lines_and_cover_the_file(tmp_path: Path) -> None:
    path = build(tmp_path / "big.jsonl")
    data = path.read_bytes()
    for jobs in (2, 3, 7):
        ranges = split_ranges(str(path), jobs)
        assert ranges[0][0] == 0 and ranges[-1][1] is None
        for (start, end), (next_start, _) in zip(ranges, ranges[1:]):
            assert end == next_start
            assert data[next_start - 1:next_start] == b"\n" and data[next_start:next_start + 1] == b"{"
