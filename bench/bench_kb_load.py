"""Knowledge-base load time: validated from YAML (cache miss) against the cached copy.

Each measurement is a fresh process with its own empty state folder (miss) or the folder the
first run filled (hit). Prints medians and the ratio.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

CODE = "from doctor.kb import load_knowledge; load_knowledge()"


def run(state: str) -> float:
    env = {**os.environ, "UNSLOTH_DOCTOR_STATE": state}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", CODE], check=True, env=env)
    return time.perf_counter() - t


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    base = statistics.median(_timed([sys.executable, "-c", "import doctor.kb"]) for _ in range(n))
    misses = [run(tempfile.mkdtemp(prefix="kb-miss-")) for _ in range(n)]
    warm = tempfile.mkdtemp(prefix="kb-hit-")
    run(warm)
    hits = [run(warm) for _ in range(n)]
    miss, hit = statistics.median(misses), statistics.median(hits)
    print(f"{n} runs each, whole processes")
    print(f"  baseline import doctor.kb    median {base:.3f} s")
    print(f"  load, cache miss (validate)  median {miss:.3f} s")
    print(f"  load, cache hit              median {hit:.3f} s")
    print(f"  ratio miss / hit: {miss / hit:.1f}x; load cost over the import: miss {miss - base:.3f} s, hit {hit - base:.3f} s")
    return 0


def _timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())
