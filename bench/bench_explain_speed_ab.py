"""`explain` as a whole process in two checkouts, run alternately on the same machine.

A shared machine's speed drifts within minutes, so one commit's figures from an earlier run
say little about another's: this runs each paste in an older checkout (the baseline) and in
this one, one after the other, N times, and prints both medians and their ratio.

Run: python bench/bench_explain_speed_ab.py OLD_CHECKOUT [--repeat 15]
(OLD_CHECKOUT: e.g. `git worktree add /tmp/old 71bf939`; both run with this interpreter.)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASTES = {
    "2 KB traceback": [str(ROOT / "fixtures" / "logs" / "plain_oom.log")],
    "transformers one-liner": ["ValueError: `torch_empty_cache_steps` must be an integer bigger than 0, got -1."],
    "unknown message": ["RuntimeError: Unsloth: a message no release of any package has ever raised anywhere"],
}


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path, help="a checkout of the baseline commit")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}   # users have bytecode
    base = statistics.median(timed([sys.executable, "-c", "pass"], ROOT, env) for _ in range(args.repeat))
    print(f"python -c pass: median {base:.3f} s")
    for name, paste in PASTES.items():
        cmd = [sys.executable, "-m", "doctor", "explain", *paste, "--format", "json", "--no-env"]
        for where in (args.old, ROOT):   # once each: caches and bytecode written
            timed(cmd, where, env)
        old, new = [], []
        for _ in range(args.repeat):
            old.append(timed(cmd, args.old, env))
            new.append(timed(cmd, ROOT, env))
        a, b = statistics.median(old), statistics.median(new)
        print(f"{name:24s} baseline {a:.3f} s   this checkout {b:.3f} s   ratio {b / a:.2f}   "
              f"({args.repeat} alternating runs each, median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
