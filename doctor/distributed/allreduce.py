"""A real all-reduce over every rank and over pairs of ranks: checked result, bus bandwidth.

Called only on the `scan --distributed` path, with torch already imported by gather.py. Each
rank contributes rank+1, so a correct SUM is known in advance; a wrong sum means a broken
transport, not a slow one. Pairs run one after the other in 2-rank sub-groups (every rank
creates every sub-group, as torch.distributed requires), so each pair's time is its own link.
"""
from __future__ import annotations

import time
from typing import Any

from doctor.distributed.bandwidth import bus_bandwidth, pairs_for

# Message sizes: large enough that bandwidth, not latency, dominates; small enough for a CPU CI.
GPU_BYTES = 64 * 1024 * 1024
CPU_BYTES = 8 * 1024 * 1024
ITERS, WARMUP = 5, 1


def _sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(dist: Any, torch: Any, group: Any, members: list[int], rank: int, device: Any, nbytes: int) -> dict[str, Any]:
    """One checked all-reduce then timed ones, on a group this rank belongs to."""
    numel = nbytes // 4
    t = torch.full((numel,), float(rank + 1), dtype=torch.float32, device=device)
    dist.all_reduce(t, group=group)
    _sync(torch, device)
    expected = float(sum(m + 1 for m in members))
    # Small exact integers in float32: any difference is a transport error, not rounding.
    wrong = int((t != expected).sum().item())
    got = float(t[0].item()) if wrong == 0 else float(t[(t != expected).nonzero()[0]].item())
    t.zero_()   # timed runs reduce zeros: the values stay finite however many iterations run
    for _ in range(WARMUP):
        dist.all_reduce(t, group=group)
    _sync(torch, device)
    dist.barrier(group=group, **({"device_ids": [device.index]} if device.type == "cuda" else {}))
    start = time.perf_counter()
    for _ in range(ITERS):
        dist.all_reduce(t, group=group)
    _sync(torch, device)
    elapsed = torch.tensor([(time.perf_counter() - start) / ITERS], dtype=torch.float64, device=device)
    # The slowest member sets the pace, as in nccl-tests.
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX, group=group)
    seconds = float(elapsed.item())
    algbw, busbw = bus_bandwidth(numel * 4, seconds, len(members))
    return {"ok": wrong == 0, "expected": expected, "got": got, "wrong_elements": wrong, "seconds": seconds,
            "bytes": numel * 4, "algbw_gbps": algbw, "busbw_gbps": busbw}


def run_allreduce_suite(dist: Any, torch: Any, backend: str, device: Any, rank: int, world: int,
                        hosts: list[str], timeout: Any) -> dict[str, Any]:
    """Every rank calls this; every rank gets back the same result (gathered at the end)."""
    nbytes = GPU_BYTES if device.type == "cuda" else CPU_BYTES
    group = None
    if backend == "nccl":
        group = dist.new_group(backend="nccl", timeout=timeout)
    world_run = _run(dist, torch, group, list(range(world)), rank, device, nbytes)
    world_run["ranks"] = world
    mine: list[dict[str, Any]] = []
    if world > 2:
        for a, b in pairs_for(world):
            sub = dist.new_group([a, b], backend=backend, timeout=timeout)
            if rank in (a, b):
                run = _run(dist, torch, sub, [a, b], rank, device, nbytes)
                if rank == a:
                    mine.append({"pair": [a, b], "hosts": [hosts[a], hosts[b]], **run})
            dist.barrier()
    else:
        # with two ranks the world all-reduce is the one pair
        mine = [{"pair": [0, 1], "hosts": hosts[:2], **world_run}] if world == 2 and rank == 0 else []
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, {"world": world_run, "pairs": mine})
    pairs = sorted((p for part in gathered for p in part["pairs"]), key=lambda p: p["pair"])
    # each rank checked its own copy of the sum: the world result is right only if all were
    bad = [r for r, part in enumerate(gathered) if not part["world"]["ok"]]
    world_run = {**world_run, "ok": not bad, "wrong_ranks": bad}
    if bad:
        world_run["got"] = gathered[bad[0]]["world"]["got"]
    return {"backend": backend, "world": world_run, "pairs": pairs}
