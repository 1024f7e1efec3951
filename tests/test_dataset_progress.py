"""The progress bar appears on a terminal's stderr for a big file, and nowhere else."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pty = pytest.importorskip("pty", reason="pseudo-terminals are a POSIX feature")

ROOT = Path(__file__).resolve().parent.parent


def big_file(path: Path, megabytes: int = 10) -> Path:
    """Over the bar's 8 MB threshold, in the format the suffix names."""
    count = (megabytes << 20) // 480 + 1
    rows = ({"instruction": "q" * 60, "input": str(i), "output": "a" * 400} for i in range(count))
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(list(rows), indent=1))
    elif path.suffix == ".csv":
        path.write_text("instruction,input,output\n" + "".join(f"{r['instruction']},{r['input']},{r['output']}\n"
                                                              for r in rows))
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(list(rows)), path, compression="none", use_dictionary=False)
    return path


CODE = ("from doctor.probes.dataset import scan_dataset, DatasetOptions\n"
        "r = scan_dataset({path!r}, DatasetOptions(progress=True))\n"
        "print('rows', r.facts['dataset.rows'])\n")


@pytest.mark.parametrize("name", ["big.jsonl", "big.json", "big.csv", "big.parquet"])
def test_progress_goes_to_a_terminal_stderr_only(tmp_path: Path, name: str) -> None:
    if not name.endswith(".jsonl"):
        pytest.importorskip("pyarrow")
    big_file(tmp_path / name)
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", CODE.format(path=name)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=child,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "100", "PYTHONPATH": str(ROOT)})
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0
    assert f"checking {name}".encode() in seen
    assert re.search(rb"[1-9][0-9.]*/[0-9.]+ MB", seen), "the bar never moved"
    assert re.search(rb"[1-9][0-9,]* rows", seen), "the rows were never counted"
    assert re.search(rb"[0-9]+ MB/s", seen)
    assert out.decode().strip().startswith("rows ")   # stdout stays clean for machines


def test_no_progress_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    path = big_file(tmp_path / "big.jsonl")
    done = subprocess.run([sys.executable, "-c", CODE.format(path=str(path))], cwd=ROOT,
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stderr == b""
