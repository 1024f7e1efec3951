"""The process group: join it, learn this rank's device, gather every rank's record to all.

The only module besides allreduce.py that imports torch, and only when called. Facts travel
over gloo, which works on every host whether or not NCCL does; NCCL is then exercised in its
own group by the all-reduce, so a broken NCCL becomes a finding instead of a hang at start-up.

Device per rank, as DDP and Unsloth place it: cuda:LOCAL_RANK, selected with
torch.cuda.set_device before any CUDA work (unsloth/models/loader_utils.py prepare_device_map).
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from doctor.distributed.launch_env import LaunchInfo


class GroupError(Exception):
    """The ranks could not form a process group; the message says why."""


def import_torch() -> tuple[Any, Any]:
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise ImportError("this torch build has no torch.distributed")
    return torch, dist


def runtime_facts(torch: Any, local_rank: int) -> dict[str, Any]:
    """What torch on this rank sees: its CUDA device (by LOCAL_RANK) and NCCL."""
    out: dict[str, Any] = {"torch": torch.__version__, "cuda_available": False, "device": "cpu"}
    try:
        available = torch.cuda.is_available()
        count = torch.cuda.device_count() if available else 0
    except Exception as exc:  # a broken driver is a fact about this rank, not our crash
        out["cuda_error"] = f"{type(exc).__name__}: {exc}"
        return out
    out.update(cuda_available=available, device_count=count)
    if not available:
        return out
    if local_rank >= count:
        out["cuda_error"] = f"LOCAL_RANK {local_rank} but only {count} CUDA {'device' if count == 1 else 'devices'} visible"
        return out
    torch.cuda.set_device(local_rank)
    props = torch.cuda.get_device_properties(local_rank)
    out.update(device=f"cuda:{local_rank}", device_name=props.name,
               capability=round(props.major + props.minor / 10, 1),
               device_uuid=str(getattr(props, "uuid", "") or "") or None,
               device_pci=_pci(props), memory_mib=props.total_memory // (1024 * 1024))
    try:
        version = torch.cuda.nccl.version()
        out["nccl_version"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    except Exception:
        pass
    return out


def _pci(props: Any) -> str | None:
    parts = [getattr(props, n, None) for n in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    return None if None in parts else "{:04x}:{:02x}:{:02x}".format(*parts)


def join_group(dist: Any, launch: LaunchInfo, timeout_s: float) -> None:
    """gloo over the launcher's rendezvous: env:// where torchrun set it, else tcp:// from Slurm/MPI."""
    timeout = timedelta(seconds=timeout_s)
    try:
        if launch.torch_vars:
            dist.init_process_group("gloo", init_method="env://", timeout=timeout)
        else:
            if not launch.master_addr:
                raise GroupError("; ".join(launch.problems) or "no MASTER_ADDR to meet at")
            dist.init_process_group("gloo", init_method=f"tcp://{launch.master_addr}:{launch.master_port}",
                                    rank=launch.rank, world_size=launch.world_size, timeout=timeout)
    except GroupError:
        raise
    except Exception as exc:  # noqa: BLE001 - rendezvous errors come in many types
        raise GroupError(f"{type(exc).__name__}: {exc}") from None


def gather(dist: Any, record: dict[str, Any], world: int) -> list[dict[str, Any]]:
    records: list[Any] = [None] * world
    dist.all_gather_object(records, record)
    return records


def nccl_possible(records: list[dict[str, Any]]) -> bool:
    """NCCL needs a CUDA device on every rank; decided from the gathered records, so all agree."""
    return all(r.get("runtime", {}).get("device", "cpu").startswith("cuda") for r in records)


def collective_device(records: list[dict[str, Any]], rank: int) -> str:
    """Where this rank's all-reduce tensors live: its GPU under NCCL, else the CPU on every rank
    (gloo between a CUDA tensor on one rank and a CPU tensor on another waits until the timeout)."""
    return records[rank]["runtime"]["device"] if nccl_possible(records) else "cpu"


def leave_group(dist: Any) -> None:
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass


def prefer_blocking_wait() -> None:
    # Without it a timed-out NCCL collective aborts the process from the watchdog; with it the
    # waiting call raises, and the timeout becomes a finding (torch docs: TORCH_NCCL_BLOCKING_WAIT).
    os.environ.setdefault("TORCH_NCCL_BLOCKING_WAIT", "1")
