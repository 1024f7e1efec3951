"""Environment scan vs PyTorch's collect_env, each as a whole process, in the same environment.

    python bench/bench_env_scan.py [-n 15] [--python PATH]

Runs `python -m doctor scan` (the environment scan, no --deep) and
`python -m torch.utils.collect_env` N times each, interleaved so both see the same machine
load, and prints the medians and their ratio. Goal: scan median <= 0.4 s and >= 5x faster.
`--also-probe` adds the bare probe (`collect_environment()` in a fresh interpreter) as a
third row, to separate the probe from the CLI's own start-up.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, done.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=15, help="runs of each command (default 15)")
    ap.add_argument("--python", default=sys.executable, help="interpreter of the environment to scan")
    ap.add_argument("--also-probe", action="store_true", help="also time collect_environment() alone")
    args = ap.parse_args()

    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    commands = {
        "unsloth-doctor scan": [args.python, "-m", "doctor", "scan"],
        "torch.utils.collect_env": [args.python, "-m", "torch.utils.collect_env"],
    }
    if args.also_probe:
        commands["collect_environment() only"] = [
            args.python, "-c", "from doctor.probes.env import collect_environment; collect_environment()"]
    # one untimed run each: warm the page cache, and fail early if a command cannot run
    for name, cmd in commands.items():
        _, rc = timed(cmd, env)
        if rc not in (0, 1):  # scan exits 1 when it finds errors; that is a result, not a failure
            print(f"{name} exited {rc}; is torch installed in {args.python}?", file=sys.stderr)
            return 2
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.n):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, env)[0])

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.n} runs each, {os.cpu_count()} CPUs, load average {load:.2f}, python {args.python}")
    for name, ts in times.items():
        print(f"  {name:28s} median {statistics.median(ts):.3f} s   min {min(ts):.3f} s   max {max(ts):.3f} s")
    scan = statistics.median(times["unsloth-doctor scan"])
    base = statistics.median(times["torch.utils.collect_env"])
    print(f"  ratio collect_env / scan: {base / scan:.1f}x   (goal: scan <= 0.400 s and >= 5x)")
    if shutil.which("nvidia-smi") is None:
        print("  note: no nvidia-smi here, so collect_env skips its GPU queries; on a GPU host it is slower")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
