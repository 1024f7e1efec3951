"""How long the smoke test takes, against the floor it cannot beat: a bare `import unsloth`.

    python bench/bench_smoke.py [--python PATH]

Both run as fresh child processes in the same run (same caches, same machine). The ratio says
how much the doctor's stages (build, load, LoRA, train, generate, save, reload) add on top of
Unsloth's own import; the per-stage table says where the time goes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doctor.api import load_knowledge  # noqa: E402
from doctor.smoketest.runner import SmokeOptions, child_env, run_smoke  # noqa: E402


def bare_import(python: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", "import unsloth; from unsloth import FastLanguageModel"], env=child_env(),
                   capture_output=True, check=True, timeout=600)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    baseline = bare_import(args.python)
    report = run_smoke(SmokeOptions(python=args.python, timeout=600), load_knowledge())
    if not report.ok:
        print("smoke failed:", [(s.name, s.detail) for s in report.stages if not s.ok])
        return 1
    print(f"{'stage':<10} {'seconds':>8}")
    for s in report.stages:
        print(f"{s.name:<10} {s.seconds:>8.2f}{'  (skipped)' if s.skipped else ''}")
    print(f"{'startup':<10} {report.facts['smoke.seconds_startup']:>8.2f}  (interpreter start, result reading)")
    print(f"device: {report.facts.get('smoke.device')}  attention: {report.facts.get('smoke.attention')}")
    print(f"baseline 'import unsloth' child: {baseline:.2f} s")
    print(f"smoke test, whole:               {report.seconds:.2f} s")
    print(f"ratio smoke / bare import: {report.seconds / baseline:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
