"""The console a person reads: clean files counted, one line per entry and file with its
explanation once, wrapped on a terminal and never in a pipe, counts and plurals that agree."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

from doctor.engine import fill
from doctor.findings import AreaStatus, Finding, Location, Severity
from doctor.report.console import write_report
from doctor.results.report import Report
from tests.helpers.cli import run_cli

FOLKLORE = "from unsloth import UnslothModel\n"
QUOTED_ROWS = 20


def _project(tmp_path: Path) -> Path:
    """Three clean scripts, one with folklore, and two train.jsonl in different folders, one
    with a single-quoted row on every line."""
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text("print('hello')\n")
    (tmp_path / "train.py").write_text(FOLKLORE)
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "one" / "train.jsonl").write_text(
        "".join(f"{{'instruction': 'q{i}', 'output': 'a{i}'}}\n" for i in range(QUOTED_ROWS)))
    (tmp_path / "two" / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    return tmp_path


def _scan(tmp_path: Path, *flags: str) -> str:
    r = run_cli("scan", "--no-env", ".", *flags, cwd=_project(tmp_path))
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def test_clean_files_are_counted_on_one_line_not_listed(tmp_path: Path) -> None:
    out = _scan(tmp_path)
    assert "[✓] 1 dataset, 3 scripts: nothing found" in out
    assert "no folklore found" not in out and "a.py" not in out
    assert "[✗] Script train.py (1 finding)" in out
    assert "    ✗ train.py:1:1  SCRIPT-UNSLOTH-MODEL-IMPORT  `UnslothModel` does not exist" in out


def test_an_entry_is_explained_once_per_file_with_its_places_on_one_line(tmp_path: Path) -> None:
    out = _scan(tmp_path)
    assert out.count("JSON only allows double quotes") == 1
    line = next(x for x in out.splitlines() if "DATA-JSON-SINGLE-QUOTES" in x)
    assert line.strip().startswith("✗ one/train.jsonl  DATA-JSON-SINGLE-QUOTES  Single-quoted strings")
    assert line.endswith(f"— lines 1, 2, 3 (+{QUOTED_ROWS - 3} more)")
    assert out.count("fix (safe, --fix): Write rows with json.dumps") == 1


def test_labels_carry_the_relative_path(tmp_path: Path) -> None:
    out = _scan(tmp_path, "--verbose")
    assert "Dataset one/train.jsonl" in out and "Dataset two/train.jsonl" in out


def test_verbose_keeps_every_paragraph_and_quiet_only_the_findings(tmp_path: Path) -> None:
    verbose = _scan(tmp_path, "--verbose")
    assert verbose.count("JSON only allows double quotes") == QUOTED_ROWS
    assert "[✓] Script a.py" in verbose
    quiet = _scan(tmp_path, "--quiet")
    assert "JSON only allows double quotes" not in quiet and "nothing found" not in quiet
    assert "fix" not in quiet.replace("--fix", "")
    assert "SCRIPT-UNSLOTH-MODEL-IMPORT" in quiet and "DATA-JSON-SINGLE-QUOTES" in quiet


def test_the_count_on_a_line_is_the_findings_below_it(tmp_path: Path) -> None:
    out = _scan(tmp_path)
    report = json.loads(_scan(tmp_path, "--format", "json"))
    in_file = sum(1 for f in report["findings"] if f["location"]["path"].endswith("one/train.jsonl"))
    head = next(x for x in out.splitlines() if x.startswith("[✗] Dataset one/train.jsonl"))
    assert head.endswith(f", {in_file} findings)"), head
    assert re.search(r"Doctor found \d+ errors?, \d+ warnings?, \d+ notes?\.", out)
    assert not re.search(r"\b1 (errors|warnings|notes|findings|rows|entries|fields)\b|\(s\)", out)


def test_concise_is_one_plain_line_per_finding(tmp_path: Path) -> None:
    out = _scan(tmp_path, "--format", "concise")
    report = json.loads(_scan(tmp_path, "--format", "json"))
    lines = out.splitlines()
    assert len(lines) == len(report["findings"])
    assert "\x1b[" not in out
    assert all(re.fullmatch(r"\S+:\d+(:\d+)?: [A-Z0-9-]+ \[(error|warning|info)\] .+", x) for x in lines), lines
    assert "train.py:1:1: SCRIPT-UNSLOTH-MODEL-IMPORT [error] `UnslothModel` does not exist" in lines
    assert "one/train.jsonl:20:2: DATA-JSON-SINGLE-QUOTES [error] Single-quoted strings (a Python dict, not JSON)" in lines


def test_a_pipe_is_never_wrapped(tmp_path: Path) -> None:
    deep = tmp_path / ("a" * 70) / ("b" * 70)
    deep.mkdir(parents=True)
    (deep / "train.jsonl").write_text("{'instruction': 'q', 'output': 'a'}\n")
    r = run_cli("scan", "--no-env", str(deep / "train.jsonl"), "--verbose", env={"COLUMNS": "60"})
    where = f"{deep / 'train.jsonl'}:1:2"
    assert any(where in line for line in r.stdout.splitlines()), r.stdout
    assert any(len(line) > 200 for line in r.stdout.splitlines())


def test_a_terminal_wraps_at_its_width_keeping_the_indent() -> None:
    from rich.console import Console

    message = " ".join(["word"] * 40)
    finding = Finding("DATA-X", "A title", Severity.WARNING, "data", "dataset", message,
                      location=Location("d/train.jsonl", 3, 1))
    report = Report(command="scan", findings=[finding],
                    areas=[AreaStatus("dataset", "Dataset d/train.jsonl", "1 row", path="d/train.jsonl")])
    buf = io.StringIO()
    write_report(report, Console(file=buf, width=50, soft_wrap=False, no_color=True, highlight=False))
    lines = buf.getvalue().splitlines()
    body = [x for x in lines if x.strip().startswith("word")]
    assert len(body) > 3 and all(len(x) <= 50 for x in lines)
    assert all(x.startswith("      word") for x in body)   # every wrapped line keeps the indent


def test_a_missing_value_in_parentheses_reads_unknown_once() -> None:
    assert fill("no driver ({nvml.error}) and {other}", {}) == "no driver (unknown) and (unknown)"


def test_run_explains_into_a_pipe_without_wrapping(tmp_path: Path) -> None:
    import sys

    deep = tmp_path / ("c" * 70) / ("d" * 70)
    deep.mkdir(parents=True)
    script = deep / "train_with_a_long_name.py"
    script.write_text("raise RuntimeError('CUDA error: device-side assert triggered')\n")
    r = run_cli("run", "--no-env", "--", sys.executable, str(script), env={"COLUMNS": "60"})
    assert r.returncode != 0
    assert any(f"{script}:1" in line for line in r.stderr.splitlines()), r.stderr
