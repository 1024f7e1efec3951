"""The links between the GPUs torch sees, from NVML (pynvml, in the doctor process; no torch).

Per pair: the common PCIe ancestor (nvmlDeviceGetTopologyCommonAncestor: PIX/PXB/PHB/NODE/SYS),
NVLink (P2P status at NVML_P2P_CAPS_INDEX_NVLINK) and how many links join them, P2P read in
both directions. Per GPU: the PCIe link (current and maximum generation and width, and the
card's own maximum generation) and the NVLink version.

GPUs are matched to NVML by PCI bus id (else UUID): NVML numbers them in PCI order and ignores
CUDA_VISIBLE_DEVICES, which renumbers them for torch (as unsloth_cli/commands/doctor.py does).
Any query a virtualised GPU refuses leaves that field out instead of failing the table.
"""
from __future__ import annotations

from typing import Any, Callable

LEVELS = {0: "SAME", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}
MAX_LINKS = 18    # NVLink links per GPU up to Blackwell (NVML_NVLINK_MAX_LINKS is larger)


def _int_const(nvml: Any, name: str, default: int) -> int:
    # nvidia-ml-py defines NVML_P2P_CAPS_INDEX_READ = 0, (a 1-tuple, a stray comma)
    value = getattr(nvml, name, default)
    if isinstance(value, (tuple, list)):
        value = value[0] if len(value) == 1 else default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _query(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:   # noqa: BLE001 - NVMLError_NotSupported and friends: the field stays unknown
        return None


def bus_key(bus_id: Any) -> str:
    """'00000000:18:00.0' / '0000:18:00.0' / [0, 24, 0] -> '0000:18:00' (domain:bus:device)."""
    if isinstance(bus_id, (list, tuple)):
        domain, bus, device = (int(x) for x in bus_id)
    else:
        text = bus_id.decode() if isinstance(bus_id, bytes) else str(bus_id)
        parts = text.lower().split(":")
        domain, bus, device = int(parts[-3], 16), int(parts[-2], 16), int(parts[-1].split(".")[0], 16)
    return f"{domain:04x}:{bus:02x}:{device:02x}"


def _handle(nvml: Any, gpu: dict[str, Any]) -> Any:
    if gpu.get("pci"):
        domain, bus, device = gpu["pci"]
        return nvml.nvmlDeviceGetHandleByPciBusId(f"{domain:08x}:{bus:02x}:{device:02x}.0".encode())
    uuid = str(gpu["uuid"])
    return nvml.nvmlDeviceGetHandleByUUID((uuid if uuid.startswith(("GPU-", "MIG-")) else "GPU-" + uuid).encode())


def _pcie(nvml: Any, h: Any) -> dict[str, Any]:
    fields = {"gen": "nvmlDeviceGetCurrPcieLinkGeneration", "width": "nvmlDeviceGetCurrPcieLinkWidth",
              "max_gen": "nvmlDeviceGetMaxPcieLinkGeneration", "max_width": "nvmlDeviceGetMaxPcieLinkWidth",
              "gpu_max_gen": "nvmlDeviceGetGpuMaxPcieLinkGeneration"}
    out = {}
    for key, name in fields.items():
        fn = getattr(nvml, name, None)
        value = _query(fn, h) if fn else None
        if value is not None and int(value) > 0:
            out[key] = int(value)
    return out


def _nvlinks(nvml: Any, h: Any) -> tuple[list[str], Any]:
    """Bus keys at the far end of each active NVLink, and the NVLink version NVML reports."""
    remotes, version = [], None
    for link in range(MAX_LINKS):
        state = _query(nvml.nvmlDeviceGetNvLinkState, h, link)
        if not state:
            continue
        info = _query(nvml.nvmlDeviceGetNvLinkRemotePciInfo, h, link)
        bus = getattr(info, "busId", None) if info is not None else None
        remotes.append(bus_key(bus) if bus else "?")
        version = version or _query(nvml.nvmlDeviceGetNvLinkVersion, h, link)
    return remotes, version


def pair_links(keys: list[str], remotes: list[list[str]], a: int, b: int) -> int:
    """NVLinks between GPUs a and b: direct links to each other, else links into NVSwitches,
    through which every GPU reaches every other at the smaller side's link count."""
    direct = sum(1 for r in remotes[a] if r == keys[b])
    if direct:
        return direct
    switch_a = sum(1 for r in remotes[a] if r not in keys)
    switch_b = sum(1 for r in remotes[b] if r not in keys)
    return min(switch_a, switch_b)


def read_topology(nvml: Any, gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """{"pairs": {...}, "gpus": {index: {pcie, nvlink_version, nvlinks}}} or {"topology_error": ...}."""
    if any(not g.get("pci") and not g.get("uuid") for g in gpus):
        return {"topology_error": "torch reports neither PCI bus ids nor UUIDs for the GPUs"}
    read_idx = _int_const(nvml, "NVML_P2P_CAPS_INDEX_READ", 0)
    nvlink_idx = _int_const(nvml, "NVML_P2P_CAPS_INDEX_NVLINK", 2)
    status_ok = _int_const(nvml, "NVML_P2P_STATUS_OK", 0)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001
        return {"topology_error": f"nvmlInit failed: {type(exc).__name__}: {exc}"}
    try:
        handles = [_handle(nvml, g) for g in gpus]
        keys = [bus_key(nvml.nvmlDeviceGetPciInfo(h).busId) for h in handles]
        per_gpu: dict[int, dict[str, Any]] = {}
        remotes = []
        for g, h in zip(gpus, handles):
            links, version = _nvlinks(nvml, h)
            remotes.append(links)
            per_gpu[int(g["index"])] = {"pcie": _pcie(nvml, h), "nvlink_version": version, "nvlinks": len(links)}
        pairs: dict[str, Any] = {}
        for a in range(len(gpus)):
            for b in range(a + 1, len(gpus)):
                level = _query(nvml.nvmlDeviceGetTopologyCommonAncestor, handles[a], handles[b])
                nvlink = _query(nvml.nvmlDeviceGetP2PStatus, handles[a], handles[b], nvlink_idx) == status_ok
                pairs[f"{gpus[a]['index']}-{gpus[b]['index']}"] = {
                    "level": "?" if level is None else LEVELS.get(int(level), str(level)),
                    "nvlink": nvlink,
                    "nvlinks": pair_links(keys, remotes, a, b) if nvlink else 0,
                    # directional: a VM or an IOMMU-restricted host can grant one way only
                    "p2p_read": all(_query(nvml.nvmlDeviceGetP2PStatus, x, y, read_idx) == status_ok
                                    for x, y in ((handles[a], handles[b]), (handles[b], handles[a]))),
                }
        return {"pairs": pairs, "gpus": per_gpu}
    except Exception as exc:  # noqa: BLE001
        return {"topology_error": f"NVML query failed: {type(exc).__name__}: {exc}"}
    finally:
        _query(nvml.nvmlShutdown)


def live_topology(gpus: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        import pynvml  # nvidia-ml-py
    except Exception as exc:  # noqa: BLE001
        return {"topology_error": f"pynvml not importable: {type(exc).__name__}: {exc}"}
    return read_topology(pynvml, gpus)


def merge_topology(record: dict[str, Any], topology: dict[str, Any]) -> dict[str, Any]:
    """The record with NVML's pairs, and each GPU's PCIe and NVLink facts, added."""
    out = dict(record)
    if "topology_error" in topology:
        out["topology_error"] = topology["topology_error"]
        return out
    out["pairs"] = topology["pairs"]
    out["gpus"] = [{**g, **topology["gpus"].get(int(g["index"]), {})} for g in record.get("gpus", [])]
    return out
