"""All-reduce bus bandwidth as `scan --distributed` measures it, against a named baseline.

    python bench/bench_allreduce.py [--nproc 2] [--mib 1 4 16 64]

Starts torchrun with --nproc ranks (gloo on CPUs, NCCL when every rank has a GPU) running the
doctor's own measurement (doctor/distributed/allreduce.py: one checked all-reduce, then timed
ones; busbw = algbw * 2(n-1)/n as nccl-tests define it). Baseline, in the same run on rank 0's
device: a one-process copy of the same buffer (`dst.copy_(src)`), i.e. the memory bandwidth a
perfect zero-cost transport could not beat by much. Prints busbw / copy bandwidth per size.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_bandwidth(torch, device, nbytes: int, iters: int = 10) -> float:
    """GB/s of dst.copy_(src), counting the bytes once (as algbw counts the message once)."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        dst.copy_(src)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return nbytes / ((time.perf_counter() - start) / iters) / 1e9


def worker(sizes_mib: list[int]) -> None:
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.distributed as dist

    from doctor.distributed import allreduce
    from doctor.distributed.gather import runtime_facts

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    runtime = runtime_facts(torch, local)
    device = torch.device(runtime["device"])
    dist.init_process_group("gloo")
    on_gpu = [None] * world
    dist.all_gather_object(on_gpu, device.type == "cuda")
    backend = "nccl" if all(on_gpu) else "gloo"
    if backend == "gloo":
        device = torch.device("cpu")   # gloo between a CUDA and a CPU tensor never completes
    group = dist.new_group(backend="nccl") if backend == "nccl" else None
    rows = []
    for mib in sizes_mib:
        run = allreduce._run(dist, torch, group, list(range(world)), rank, device, mib * 1024 * 1024)
        base = copy_bandwidth(torch, device, mib * 1024 * 1024) if rank == 0 else 0.0
        rows.append({"mib": mib, "ok": run["ok"], "seconds": run["seconds"], "algbw": run["algbw_gbps"],
                     "busbw": run["busbw_gbps"], "copy": base})
    if rank == 0:
        print(json.dumps({"backend": backend, "world": world, "device": runtime.get("device_name", "cpu"), "rows": rows}))
    dist.destroy_process_group()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--mib", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.mib)
        return 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.nproc),
           __file__, "--worker", "--mib", *map(str, args.mib)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(line)
    print(f"all-reduce, {result['world']} ranks, {result['backend']} on {result['device']}")
    print("baseline: one-process dst.copy_(src) of the same buffer on rank 0's device")
    print(f"{'MiB':>6} {'ok':>4} {'time ms':>9} {'algbw GB/s':>11} {'busbw GB/s':>11} {'copy GB/s':>10} {'busbw/copy':>11}")
    for r in result["rows"]:
        ratio = r["busbw"] / r["copy"] if r["copy"] else float("nan")
        print(f"{r['mib']:>6} {str(r['ok']):>4} {r['seconds'] * 1e3:>9.2f} {r['algbw']:>11.3f} {r['busbw']:>11.3f} "
              f"{r['copy']:>10.2f} {ratio:>11.3f}")
    return 0 if all(r["ok"] for r in result["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
