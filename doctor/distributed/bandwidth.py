"""All-reduce results as facts and observations; pure, so `kb test` runs it without torch.

Bus bandwidth follows nccl-tests (doc/PERFORMANCE.md): algbw = bytes / time, and for an
all-reduce busbw = algbw * 2(n-1)/n, which makes numbers for different rank counts comparable
with the hardware's link speed.
"""
from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from doctor.findings import Evidence, Observation

# A pair this far below the median pair is a slow link (a PCIe hop, a socket fallback, a bad NIC).
SLOW_PAIR_RATIO = 0.25


def bus_bandwidth(nbytes: int, seconds: float, n: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s for one all-reduce of `nbytes` over `n` ranks taking `seconds`."""
    if seconds <= 0 or n < 1:
        return 0.0, 0.0
    algbw = nbytes / seconds / 1e9
    return algbw, algbw * 2 * (n - 1) / n


def pairs_for(world: int, limit: int = 28) -> list[tuple[int, int]]:
    """Every pair of ranks up to `limit` pairs (8 ranks), else each rank with its ring neighbour."""
    every = [(a, b) for a in range(world) for b in range(a + 1, world)]
    if len(every) <= limit:
        return every
    return sorted({tuple(sorted((r, (r + 1) % world))) for r in range(world)})  # type: ignore[misc]


def allreduce_facts(result: Mapping[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {"dist.allreduce.backend": result.get("backend")}
    world = result.get("world") or {}
    if world:
        facts["dist.allreduce.ok"] = bool(world.get("ok"))
        if world.get("busbw_gbps") is not None:
            facts["dist.allreduce.busbw_gbps"] = round(world["busbw_gbps"], 3)
    for pair in result.get("pairs", []):
        a, b = pair["pair"]
        if pair.get("busbw_gbps") is not None:
            facts[f"dist.pair.{a}-{b}.busbw_gbps"] = round(pair["busbw_gbps"], 3)
    return facts


def _wrong(run: Mapping[str, Any], label: str) -> Observation:
    return Observation("DIST-ALLREDUCE-WRONG", values={
        "group": label, "expected": run.get("expected"), "got": run.get("got"),
        "backend": run.get("backend", "")})


def allreduce_observations(result: Mapping[str, Any]) -> list[Observation]:
    out: list[Observation] = []
    backend = result.get("backend", "")
    if result.get("error"):
        out.append(Observation("DIST-ALLREDUCE-FAILED", values={"backend": backend, "error": result["error"]}))
        return out
    world = result.get("world") or {}
    if world and not world.get("ok"):
        out.append(_wrong({**world, "backend": backend}, f"all {world.get('ranks')} ranks"))
    pairs: Sequence[Mapping[str, Any]] = result.get("pairs", [])
    for pair in pairs:
        if not pair.get("ok"):
            out.append(_wrong({**pair, "backend": backend}, f"ranks {pair['pair'][0]} and {pair['pair'][1]}"))
    speeds = [p["busbw_gbps"] for p in pairs if p.get("ok") and p.get("busbw_gbps")]
    if len(speeds) >= 3:
        median = statistics.median(speeds)
        for pair in pairs:
            bw = pair.get("busbw_gbps")
            if pair.get("ok") and bw is not None and bw < SLOW_PAIR_RATIO * median:
                a, b = pair["pair"]
                hosts = pair.get("hosts") or ["?", "?"]
                out.append(Observation("DIST-SLOW-PAIR", values={
                    "pair": f"{a}-{b}", "hosts": " and ".join(dict.fromkeys(hosts)), "busbw": f"{bw:.2f}",
                    "median": f"{median:.2f}", "backend": backend},
                    evidence=tuple(Evidence("observation", f"ranks {p['pair'][0]}-{p['pair'][1]}",
                                            f"{p.get('busbw_gbps', 0):.2f} GB/s") for p in pairs)))
    return out


def summary_line(result: Mapping[str, Any]) -> str:
    if result.get("error"):
        return f"all-reduce failed ({result.get('backend')})"
    world = result.get("world") or {}
    ok = "result checked" if world.get("ok") else "WRONG result"
    parts = [f"{ok}, {world.get('ranks')} ranks, busbw {world.get('busbw_gbps', 0):.2f} GB/s ({result.get('backend')})"]
    for pair in result.get("pairs", []):
        a, b = pair["pair"]
        parts.append(f"ranks {a}-{b}: {pair.get('busbw_gbps', 0):.2f} GB/s")
    return "; ".join(parts)
