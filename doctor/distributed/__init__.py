"""`scan --distributed`: the pre-flight for torchrun / accelerate launch / srun jobs.

Run on every rank by the launcher. Each rank probes its own environment (the same torch-free
probes as `scan`), joins a gloo process group, and all records are gathered; rank 0 compares
them, runs a checked all-reduce (NCCL when every rank has a GPU, else gloo) and returns the
result to be reported once. Other ranks return None and print nothing.

torch is imported only here, only when the process was started by a launcher with more than
one rank; the plain `scan` path never imports this package's torch modules.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from doctor.distributed.bandwidth import allreduce_facts, allreduce_observations, summary_line
from doctor.distributed.checks import cross_rank_observations, world_summary
from doctor.distributed.envchecks import launch_observations, start_observations
from doctor.distributed.launch_env import LaunchInfo, detect_launch
from doctor.distributed.rankinfo import collect_rank
from doctor.distributed.rank_only import rank_only_observations
from doctor.distributed.script_split import scan_script_paths
from doctor.facts import Facts
from doctor.findings import AreaStatus, Observation
from doctor.probes.base import ProbeResult
from doctor.results.words import counted

__all__ = ["DistributedOptions", "run_distributed_scan"]


@dataclass
class DistributedOptions:
    timeout_s: float = 120.0
    scripts: list[str] = field(default_factory=list)
    allreduce: bool = True
    kb: Any = None                      # the knowledge base, loaded once by the caller


def _environment() -> ProbeResult:
    from doctor.probes.env import collect_environment

    return collect_environment()


def _single(launch: LaunchInfo, env: ProbeResult, opts: DistributedOptions, obs: list[Observation]) -> ProbeResult:
    """Rank 0 alone: not launched, or the group could not be formed."""
    facts = {"dist.launcher": launch.launcher, "dist.world_size": launch.world_size, "dist.rank": launch.rank}
    area = AreaStatus("distributed", "Distributed: not under a multi-process launcher" if launch.world_size < 2
                      else f"Distributed: {launch.world_size} ranks could not meet", ran=launch.world_size > 1)
    return ProbeResult(facts=env.facts.merged(Facts(facts, {k: "launcher" for k in facts})),
                       observations=[*env.observations, *obs, *scan_script_paths(opts.scripts)],
                       areas=[*env.areas, area])


def run_distributed_scan(opts: DistributedOptions, environ: dict[str, str] | None = None) -> ProbeResult | None:
    environ = dict(os.environ if environ is None else environ)
    launch = detect_launch(environ)
    if launch.world_size < 2:
        return _single(launch, _environment(), opts, start_observations(environ))
    env = _environment()
    try:
        from doctor.distributed import gather
        torch, dist = gather.import_torch()
    except ImportError as exc:
        return None if launch.rank else _single(launch, env, opts, start_observations(environ, "torch", str(exc)))
    try:
        gather.join_group(dist, launch, opts.timeout_s)
    except gather.GroupError as exc:
        return None if launch.rank else _single(launch, env, opts, start_observations(environ, "rendezvous", str(exc)))
    try:
        record = collect_rank(launch, environ, _runtime(gather, torch, launch.local_rank), env.facts,
                              env.observations)
        records = gather.gather(dist, record, launch.world_size)
        result: dict[str, Any] = {}
        if opts.allreduce:
            result = _allreduce(gather, torch, dist, launch, records, opts.timeout_s)
    except Exception as exc:  # noqa: BLE001 - a rank that died mid-gather leaves the others timing out
        return None if launch.rank else _single(launch, env, opts, start_observations(
            environ, "rendezvous", f"gathering the ranks' facts: {type(exc).__name__}: {exc}"))
    finally:
        gather.leave_group(dist)
    if launch.rank != 0:
        return None
    return _report(env, records, result, opts)


def _runtime(gather: Any, torch: Any, local_rank: int) -> dict[str, Any]:
    # every rank must reach the gather: a CUDA error here is this rank's fact, not its exit
    try:
        return gather.runtime_facts(torch, local_rank)
    except Exception as exc:  # noqa: BLE001
        return {"torch": getattr(torch, "__version__", "?"), "device": "cpu", "cuda_error": f"{type(exc).__name__}: {exc}"}


def _allreduce(gather: Any, torch: Any, dist: Any, launch: LaunchInfo, records: list[dict[str, Any]],
               timeout_s: float) -> dict[str, Any]:
    from datetime import timedelta

    from doctor.distributed.allreduce import run_allreduce_suite

    nccl = gather.nccl_possible(records)
    if nccl:
        gather.prefer_blocking_wait()
    device = torch.device(gather.collective_device(records, launch.rank))
    hosts = [str(r.get("host")) for r in records]
    backend = "nccl" if nccl else "gloo"
    try:
        return run_allreduce_suite(dist, torch, backend, device, launch.rank, launch.world_size, hosts,
                                   timedelta(seconds=timeout_s))
    except Exception as exc:  # noqa: BLE001 - a failed collective is the finding
        return {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}


def _report(env: ProbeResult, records: list[dict[str, Any]], allreduce: dict[str, Any],
            opts: DistributedOptions) -> ProbeResult:
    summary = world_summary(records)
    facts: dict[str, Any] = {**summary, **(allreduce_facts(allreduce) if allreduce else {})}
    for r in records:
        facts[f"dist.rank.{r['rank']}.host"] = r.get("host")
        facts[f"dist.rank.{r['rank']}.device"] = r.get("runtime", {}).get("device")
    observations = [*env.observations, *cross_rank_observations(records), *launch_observations(records),
                    *rank_only_observations(records, opts.kb),
                    *(allreduce_observations(allreduce) if allreduce else []), *scan_script_paths(opts.scripts)]
    areas = [*env.areas, AreaStatus("distributed",
                                    f"Distributed: {counted(summary['dist.world_size'], 'rank')} on "
                                    f"{counted(summary['dist.hosts'], 'host')} ({summary['dist.launcher']}), {summary['dist.ranks_with_gpu']} with a GPU",
                                    detail=summary["dist.host_names"])]
    if allreduce:
        areas.append(AreaStatus("distributed", f"All-reduce: {summary_line(allreduce)}"))
    return ProbeResult(facts=env.facts.merged(Facts(facts, {k: "torch.distributed" for k in facts})),
                       observations=observations, areas=areas)
