"""Per-rank launch and NCCL settings known to hang or slow a run; pure, over rank records.

Each check looks at one rank's variables in the context of the whole job (how many hosts, how
many ranks share this host). Ranks that trip the same check with the same values are reported
once, with their ranks listed.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from doctor.distributed.checks import Record, rank_label
from doctor.findings import Observation

_TRUE = ("1", "true", "yes", "on")


def ifname_matches(spec: str, interfaces: Sequence[str]) -> list[str]:
    """Interfaces NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME would select, per NCCL's syntax:
    comma-separated prefixes, `^` to exclude, `=` for an exact name."""
    spec = spec.strip()
    exclude = spec.startswith("^")
    if exclude:
        spec = spec[1:]
    exact = spec.startswith("=")
    if exact:
        spec = spec[1:]
    items = [s.strip() for s in spec.split(",") if s.strip()]

    def hit(name: str) -> bool:
        return any(name == s if exact else name.startswith(s) for s in items)
    return [n for n in interfaces if hit(n) != exclude]


def _check_rank(r: Record, hosts: int, local_ranks: int) -> list[tuple[str, dict[str, Any]]]:
    v: Mapping[str, str] = r.get("vars", {})
    net = r.get("net", {})
    interfaces = net.get("interfaces", [])
    out: list[tuple[str, dict[str, Any]]] = []
    launcher = r.get("launcher")
    if launcher in ("slurm", "mpi") and r.get("world_size", 1) > 1 and "LOCAL_RANK" not in v:
        out.append(("DIST-LAUNCHER-NO-TORCH-VARS", {"launcher": "srun" if launcher == "slurm" else "mpirun"}))
    for var in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        spec = v.get(var)
        if spec and interfaces and not ifname_matches(spec, interfaces):
            out.append(("DIST-SOCKET-IFNAME-MISSING", {"variable": var, "value": spec, "host": r.get("host"),
                                                       "interfaces": ", ".join(interfaces)}))
    p2p_off = v.get("NCCL_P2P_DISABLE", "").lower() in _TRUE or v.get("NCCL_P2P_LEVEL", "").upper() in ("LOC", "0")
    if p2p_off and local_ranks > 1:
        var = "NCCL_P2P_DISABLE" if "NCCL_P2P_DISABLE" in v else "NCCL_P2P_LEVEL"
        out.append(("DIST-NCCL-P2P-DISABLED", {"variable": var, "value": v[var], "local_ranks": local_ranks}))
    if v.get("NCCL_SHM_DISABLE", "").lower() in _TRUE and local_ranks > 1:
        out.append(("DIST-NCCL-SHM-DISABLED", {"local_ranks": local_ranks}))
    if v.get("NCCL_IB_DISABLE", "").lower() in _TRUE and hosts > 1 and net.get("ib_devices"):
        out.append(("DIST-NCCL-IB-DISABLED", {"ib_devices": ", ".join(net["ib_devices"]), "hosts": hosts}))
    if v.get("NCCL_DEBUG", "").upper() == "TRACE":
        out.append(("DIST-NCCL-DEBUG-TRACE", {}))
    cap = r.get("runtime", {}).get("capability") or r.get("facts", {}).get(f"gpu.{r.get('local_rank', 0)}.capability")
    if cap is not None and float(cap) >= 9.0 and local_ranks > 2 and "NCCL_NVLS_ENABLE" not in v:
        out.append(("DIST-NCCL-NVLS-HINT", {"local_ranks": local_ranks}))
    return out


def launch_observations(records: Sequence[Record]) -> list[Observation]:
    hosts = Counter(str(r.get("host")) for r in records)
    merged: dict[tuple[str, str], tuple[dict[str, Any], list[int]]] = {}
    for r in sorted(records, key=lambda r: r["rank"]):
        for entry_id, values in _check_rank(r, len(hosts), hosts[str(r.get("host"))]):
            key = (entry_id, repr(sorted(values.items())))
            merged.setdefault(key, (values, []))[1].append(r["rank"])
    return [Observation(entry_id, values={**values, "ranks": rank_label(ranks)})
            for (entry_id, _), (values, ranks) in merged.items()]


def start_observations(launch_env: Mapping[str, str], failure: str | None = None, error: str = "") -> list[Observation]:
    """Why the job-wide checks could not run: no launcher, no torch, or no rendezvous."""
    from doctor.distributed.launch_env import detect_launch

    launch = detect_launch(launch_env)
    if launch.world_size < 2:
        return [Observation("DIST-NOT-LAUNCHED", values={"launcher": launch.launcher})]
    if failure == "torch":
        return [Observation("DIST-TORCH-MISSING", values={"error": error, "world_size": launch.world_size})]
    if failure == "rendezvous":
        return [Observation("DIST-RENDEZVOUS-FAILED", values={
            "error": error.rstrip("."), "launcher": launch.launcher, "world_size": launch.world_size,
            "master": f"{launch.master_addr}:{launch.master_port}",
            "problems": "; ".join(launch.problems) or "none"})]
    return []
