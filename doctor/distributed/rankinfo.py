"""One rank's record: what the environment probes see here, plus host, network and cache facts.

A record is a plain dict (JSON-able, picklable) so it can travel through all_gather_object and
be written into kb examples. Nothing here imports torch; the torch runtime part (device, NCCL
version) is filled in by gather.py and passed in as `runtime`.
"""
from __future__ import annotations

import os
import socket
from typing import Any, Mapping, Sequence

from doctor.distributed.launch_env import LaunchInfo, launch_vars
from doctor.findings import Observation

# unsloth_zoo/compiler.py:614: the folder is relative to the working directory unless set.
DEFAULT_COMPILE_LOCATION = "unsloth_compiled_cache"
# File systems on which several hosts see one folder.
NETWORK_FS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "fuse.sshfs", "ceph",
              "fuse.ceph", "glusterfs", "fuse.glusterfs", "9p", "wekafs", "fuse.juicefs")


def mount_fs_type(path: str, mounts_text: str) -> str | None:
    """The file-system type of the longest mount point that holds `path` (from /proc/mounts text)."""
    best, best_type = "", None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and len(point) >= len(best):
            best, best_type = point, parts[2]
    return best_type


def _nearest_existing(path: str) -> str:
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def compile_cache_info(environ: Mapping[str, str], cwd: str, mounts_text: str = "") -> dict[str, Any]:
    location = environ.get("UNSLOTH_COMPILE_LOCATION") or DEFAULT_COMPILE_LOCATION
    path = os.path.normpath(os.path.join(cwd, location))
    existing = _nearest_existing(path)
    fs = mount_fs_type(os.path.realpath(existing), mounts_text) if mounts_text else None
    return {
        "path": path,
        "exists": os.path.isdir(path),
        "writable": os.access(existing, os.W_OK),
        "fs_type": fs,
        "network_fs": fs in NETWORK_FS if fs else False,
        "from_env": "UNSLOTH_COMPILE_LOCATION" in environ,
    }


def network_info() -> dict[str, Any]:
    """Interface names (for NCCL_SOCKET_IFNAME) and InfiniBand devices (for NCCL_IB_DISABLE)."""
    try:
        interfaces = sorted(name for _, name in socket.if_nameindex())
    except OSError:
        interfaces = []
    try:
        ib = sorted(os.listdir("/sys/class/infiniband"))
    except OSError:
        ib = []
    return {"interfaces": interfaces, "ib_devices": ib}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def collect_rank(launch: LaunchInfo, environ: Mapping[str, str], runtime: Mapping[str, Any],
                 facts: Mapping[str, Any], observations: Sequence[Observation] = ()) -> dict[str, Any]:
    """This rank's record, from its launch info, environment facts and observations, and torch's view."""
    cwd = os.getcwd()
    return {
        "rank": launch.rank,
        "local_rank": launch.local_rank,
        "world_size": launch.world_size,
        "launcher": launch.launcher,
        "host": socket.gethostname(),
        "cwd": cwd,
        "facts": dict(facts),
        "observations": [(o.entry_id, dict(o.values)) for o in observations],
        "vars": launch_vars(environ),
        "net": network_info(),
        "compile_cache": compile_cache_info(environ, cwd, _read("/proc/mounts")),
        "runtime": dict(runtime),
    }
