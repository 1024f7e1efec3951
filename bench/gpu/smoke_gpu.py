"""Run the smoke test once, cold, and keep everything it produced for bench/results/.

    python bench/gpu/smoke_gpu.py OUT_DIR [label]

Writes OUT_DIR/smoke-<label>.json (the report, with wall-clock time of the whole command,
unsloth import included) and OUT_DIR/smoke-<label>-child.log (what Unsloth printed).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.console import Console  # noqa: E402

from doctor.api import load_knowledge  # noqa: E402
from doctor.report.jsonout import smoke_to_dict  # noqa: E402
from doctor.report.smoke import render_console  # noqa: E402
from doctor.smoketest.runner import SmokeOptions, run_smoke  # noqa: E402


def main(out: Path, label: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    keep = Path(tempfile.mkdtemp(prefix="smoke-keep-"))
    report = run_smoke(SmokeOptions(timeout=480, keep=str(keep)), load_knowledge())
    wall = time.perf_counter() - START
    data = smoke_to_dict(report)
    data["wall_seconds_command"] = round(wall, 2)
    data["log_tail"] = report.log_tail
    (out / f"smoke-{label}.json").write_text(json.dumps(data, indent=2, default=str))
    if label == "cold" and (keep / "child.log").exists():  # $OUT brings back 8 files at most
        shutil.copy(keep / "child.log", out / f"smoke-{label}-child.log")
    render_console(report, Console(width=110))
    print(f"smoke {label}: ok={report.ok} wall={wall:.1f}s peak_gpu_mib={report.facts.get('smoke.peak_gpu_mib')}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "cold"))
