"""The environment probe of two checkouts, in the same run: what a change costs.

    python bench/bench_env_probe_ab.py BASELINE_CHECKOUT [CHECKOUT] [-n 15]

Each checkout's `collect_environment()` is timed warm (in one process, after a first call)
and as a fresh process, interleaved so both see the same load; prints medians and the ratio
CHECKOUT / BASELINE (default CHECKOUT: this one).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM = ("import time\nfrom doctor.probes.env import collect_environment\ncollect_environment()\n"
        "ts = []\nfor _ in range(7):\n    t = time.perf_counter(); collect_environment(); ts.append(time.perf_counter() - t)\n"
        "print(sorted(ts)[3])\n")
COLD = "from doctor.probes.env import collect_environment; collect_environment()"


def run(root: str, code: str, cwd: str) -> float:
    env = {**os.environ, "PYTHONPATH": root}
    t = time.perf_counter()
    # from an empty folder: `python -c` puts the working folder first on sys.path
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    took = time.perf_counter() - t
    return float(out) if out.strip() else took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("baseline")
    ap.add_argument("checkout", nargs="?", default=str(ROOT))
    ap.add_argument("-n", type=int, default=15)
    args = ap.parse_args()
    roots = {"baseline": args.baseline, "checkout": args.checkout}
    warm: dict[str, list[float]] = {k: [] for k in roots}
    cold: dict[str, list[float]] = {k: [] for k in roots}
    with tempfile.TemporaryDirectory() as empty:
        for _ in range(args.n):
            for name, root in roots.items():
                warm[name].append(run(root, WARM, empty))
                cold[name].append(run(root, COLD, empty))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.n} runs each, {os.cpu_count()} CPUs, load average {load:.2f}")
    for label, table in (("warm call", warm), ("fresh process", cold)):
        b, c = statistics.median(table["baseline"]), statistics.median(table["checkout"])
        print(f"  {label:14s} baseline median {b * 1000:.1f} ms   checkout median {c * 1000:.1f} ms   "
              f"ratio {c / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
