"""The time lines the folder benches print: the probe, its baseline and their ratio."""
from __future__ import annotations

import statistics


def print_times(unit: str, probe: str, times: list[float], baseline: str, base_times: list[float]) -> None:
    med, top = statistics.median(times), max(times)
    bmed, btop = statistics.median(base_times), max(base_times)
    print(f"time per {unit}, {probe}: median {med * 1000:.2f} ms, max {top * 1000:.2f} ms")
    print(f"time per {unit}, baseline {baseline}: median {bmed * 1000:.2f} ms, max {btop * 1000:.2f} ms")
    print(f"ratio probe / baseline: median {med / bmed:.1f}x, max {top / btop:.1f}x")
