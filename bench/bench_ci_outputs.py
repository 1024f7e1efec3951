"""The CI outputs on a folder of real material: does code scanning accept the SARIF (every
result at a file and line; a notebook's at a line of cell source in the raw .ipynb), and what
do SARIF and the HTML report cost against the JSON report of the same scan.

    python bench/bench_ci_outputs.py FOLDER     (run from the folder that holds FOLDER)

Each format is one whole `python -m doctor` process, run 3 times in turns (the median is kept),
on the same folder with --no-env; the baseline is `scan --format json`, timed in the same run.
"""
from __future__ import annotations

import collections
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.sarif import validate_sarif_text  # noqa: E402  (the tests' own checker)

RUNS = 3


def timed(commands: dict[str, list[str]]) -> dict[str, float]:
    """Median seconds per command, the commands taking turns in each round (so a busy
    moment of the machine falls on all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, args in commands.items():
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "doctor", *args], capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    folder = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        sarif_file, html_file = Path(tmp) / "doctor.sarif", Path(tmp) / "report.html"
        seconds = timed({
            "json": ["scan", folder, "--no-env", "--format", "json", "--fail-on", "never"],
            "sarif": ["scan", folder, "--no-env", "--format", "sarif", "--output", str(sarif_file), "--fail-on", "never"],
            "html": ["report", folder, "--no-env", "--format", "html", "--output", str(html_file)]})
        json_s, sarif_s, html_s = seconds["json"], seconds["sarif"], seconds["html"]
        doc = validate_sarif_text(sarif_file.read_text(encoding="utf-8"), Path("."))
        results = doc["runs"][0]["results"]
        html_kib = html_file.stat().st_size / 1024
    files = sorted({r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results})
    print(f"folder: {folder}")
    print(f"SARIF: {len(results)} results in {len(files)} files; all accepted (schema, a file and line each, "
          f"notebook lines in cell source)")
    for (rule, level), n in sorted(collections.Counter((r["ruleId"], r["level"]) for r in results).items()):
        print(f"  {rule} [{level}]: {n}")
    print(f"time, median of {RUNS} whole processes: json {json_s:.2f} s (baseline), sarif {sarif_s:.2f} s "
          f"({sarif_s / json_s:.2f}x), report --format html {html_s:.2f} s ({html_s / json_s:.2f}x), page {html_kib:.0f} KiB")
    print(json.dumps({"results": len(results), "json_s": round(json_s, 3), "sarif_s": round(sarif_s, 3),
                      "html_s": round(html_s, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
