"""Time to a checked all-reduce verdict on this machine: `scan --gpus`'s own local ranks against
the baseline `torchrun --nproc-per-node N -m doctor scan --distributed` (same ranks, same suite),
in one run, alternating.

    python bench/bench_local_ranks.py --nproc 2 --repeat 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from doctor.distributed.local_ranks import run_local_ranks

ROOT = Path(__file__).resolve().parents[1]


def ours(n: int) -> tuple[float, bool]:
    start = time.perf_counter()
    result = run_local_ranks(n, 60)
    return time.perf_counter() - start, bool((result.get("world") or {}).get("ok"))


def torchrun(n: int) -> tuple[float, bool]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
                           "-m", "doctor", "scan", "--distributed", "--no-env", "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"})
    return time.perf_counter() - start, '"dist.allreduce.ok": true' in done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"scan --gpus local ranks": [], "torchrun scan --distributed": []}
    for _ in range(args.repeat):
        for label, fn in (("scan --gpus local ranks", ours), ("torchrun scan --distributed", torchrun)):
            seconds, ok = fn(args.nproc)
            assert ok, label
            times[label].append(seconds)
    base = statistics.median(times["torchrun scan --distributed"])
    for label, values in times.items():
        med = statistics.median(values)
        print(f"{label:30s} median {med:6.2f} s  ({', '.join(f'{v:.2f}' for v in values)})  ratio {med / base:.2f}")


if __name__ == "__main__":
    main()
