"""Who launched this process, and as which rank: torchrun, accelerate launch, Slurm's srun, MPI.

Pure functions over an environment mapping. Nothing here imports torch: the launch checks
also run as `kb test` examples on any machine.

What each launcher sets (and what Unsloth reads):
- torchrun / `python -m torch.distributed.run`: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
  GROUP_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RUN_ID.
- accelerate launch: starts torchrun for multi-GPU (the same variables) and adds ACCELERATE_*.
- srun: SLURM_PROCID (global rank), SLURM_NTASKS / SLURM_STEP_NUM_TASKS, SLURM_LOCALID,
  SLURM_NODEID, SLURM_JOB_NODELIST; no RANK, WORLD_SIZE, LOCAL_RANK or MASTER_ADDR.
- Unsloth reads only LOCAL_RANK, RANK and WORLD_SIZE (unsloth/models/loader_utils.py:53), so a
  plain `srun python train.py` looks like one process to it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

# Variables the report shows and the cross-rank checks compare.
LAUNCH_VARS = (
    "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
    "NODE_RANK", "TORCHELASTIC_RUN_ID", "CUDA_VISIBLE_DEVICES", "UNSLOTH_COMPILE_LOCATION",
    "GLOO_SOCKET_IFNAME", "TORCH_NCCL_BLOCKING_WAIT", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
    "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_JOB_ID",
    "SLURM_JOB_NODELIST", "SLURM_NTASKS_PER_NODE", "SLURM_GPUS_ON_NODE",
    "ACCELERATE_MIXED_PRECISION", "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "FSDP_VERSION",
)


@dataclass(frozen=True)
class LaunchInfo:
    launcher: str                  # torchrun | accelerate | slurm | mpi | none
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int | None = None
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int | None = None
    torch_vars: bool = False       # RANK/WORLD_SIZE/MASTER_* are set: torch's env:// init works
    problems: tuple[str, ...] = field(default=())   # why the rank/world could not be read

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _int(environ: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            return int(raw.split("(")[0])   # SLURM_NTASKS_PER_NODE can read "4(x2)"
        except ValueError:
            continue
    return None


def expand_nodelist(nodelist: str) -> list[str]:
    """Slurm's compressed host list ("gpu[01-03,07],login1") as host names, in order."""
    hosts: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", nodelist):
        m = re.fullmatch(r"([^\[]*)\[([^\]]*)\](.*)", part)
        if not m:
            hosts.append(part)
            continue
        prefix, ranges, suffix = m.groups()
        for item in ranges.split(","):
            lo, _, hi = item.partition("-")
            if not hi:
                hosts.append(f"{prefix}{lo}{suffix}")
                continue
            for n in range(int(lo), int(hi) + 1):
                hosts.append(f"{prefix}{str(n).zfill(len(lo))}{suffix}")
    return hosts


def slurm_master_port(job_id: int | None) -> int:
    # Every rank derives the same port from the job id, so no rank needs to tell the others.
    return 29500 + (job_id or 0) % 20000


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "ip6-localhost")


def loopback_problem(environ: Mapping[str, str], addr: str | None) -> tuple[str, ...]:
    """A loopback MASTER_ADDR in a job of several nodes: the other nodes dial themselves."""
    nodes = _int(environ, "GROUP_WORLD_SIZE", "SLURM_NNODES", "SLURM_JOB_NUM_NODES") or 1
    if addr and (addr in _LOOPBACK or addr.startswith("127.")) and nodes > 1:
        return (f"MASTER_ADDR={addr} is a loopback address, but the job spans {nodes} nodes",)
    return ()


def detect_launch(environ: Mapping[str, str]) -> LaunchInfo:
    """The launcher and this process's place in the job, from the environment alone."""
    has_torch = all(environ.get(v) for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))
    accelerate = any(k.startswith("ACCELERATE_") for k in environ)
    if has_torch or environ.get("TORCHELASTIC_RUN_ID"):
        launcher = "accelerate" if accelerate else "torchrun"
        rank, world = _int(environ, "RANK"), _int(environ, "WORLD_SIZE")
        problems = tuple(f"{v} is not set" for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                         if not environ.get(v)) + loopback_problem(environ, environ.get("MASTER_ADDR"))
        return LaunchInfo(
            launcher, rank or 0, world or 1, _int(environ, "LOCAL_RANK") or 0,
            _int(environ, "LOCAL_WORLD_SIZE"), _int(environ, "GROUP_RANK", "NODE_RANK"),
            environ.get("MASTER_ADDR"), _int(environ, "MASTER_PORT"), has_torch, problems)
    if environ.get("SLURM_PROCID") is not None and _int(environ, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        world = _int(environ, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") or 1
        nodes = expand_nodelist(environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or "")
        addr = environ.get("MASTER_ADDR") or (nodes[0] if nodes else None)
        port = _int(environ, "MASTER_PORT") or slurm_master_port(_int(environ, "SLURM_JOB_ID"))
        problems = loopback_problem(environ, addr) if addr else \
            ("MASTER_ADDR is not set and SLURM_JOB_NODELIST is empty",)
        return LaunchInfo("slurm", _int(environ, "SLURM_PROCID") or 0, world,
                          _int(environ, "SLURM_LOCALID") or 0, _int(environ, "SLURM_NTASKS_PER_NODE"),
                          _int(environ, "SLURM_NODEID"), addr, port, False, problems)
    mpi_rank = _int(environ, "OMPI_COMM_WORLD_RANK", "PMI_RANK")
    if mpi_rank is not None:
        world = _int(environ, "OMPI_COMM_WORLD_SIZE", "PMI_SIZE") or 1
        addr = environ.get("MASTER_ADDR")
        return LaunchInfo("mpi", mpi_rank, world, _int(environ, "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID") or 0,
                          _int(environ, "OMPI_COMM_WORLD_LOCAL_SIZE"), None, addr, _int(environ, "MASTER_PORT"),
                          False, () if addr else ("MASTER_ADDR is not set (mpirun does not set it)",))
    return LaunchInfo("accelerate" if accelerate else "none")


def launch_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """The launch and NCCL variables of one rank, for the report and the cross-rank checks."""
    out = {k: environ[k] for k in LAUNCH_VARS if k in environ}
    out.update({k: v for k, v in environ.items() if k.startswith("NCCL_") and "KEY" not in k})
    return out
