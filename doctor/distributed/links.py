"""What a link between two GPUs should carry, from what NVML says about it; pure.

Rates are one direction, in GB/s, after line encoding:
- PCIe per lane (PCI-SIG: 2.5/5 GT/s with 8b/10b; 8/16/32 GT/s with 128b/130b; 64 GT/s FLIT):
  Gen1 0.25, Gen2 0.5, Gen3 0.985, Gen4 1.969, Gen5 3.938, Gen6 7.563.
- NVLink per link, by GPU generation (NVIDIA's NVLink page and the V100/A100/H100/B200 data
  sheets): P100 (sm 6.0) 20; V100, A100, H100 (sm 7.0-9.0) 25; B200 (sm 10.x) 50. NVML's own
  version number is kept as a fact but not used: drivers report it either as the NVLink
  generation (2, 3, 4) or as nvmlNvlinkVersion_t (4 = 3.0, 6 = 4.0, 7 = 5.0).

The current PCIe *generation* drops to Gen1 when a GPU idles (power management), so only the
trained *width* is compared with its maximum; the expected rate uses the maximum generation.
"""
from __future__ import annotations

from typing import Any, Mapping

PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
# NCCL's all-reduce bus bandwidth below this share of the link's rate: a degraded link.
SLOW_LINK_RATIO = 0.25

Gpu = Mapping[str, Any]


def nvlink_rate(capability: str | float | None) -> float | None:
    """One NVLink link's rate (GB/s, one direction) for a GPU of this compute capability."""
    if capability is None:
        return None
    cap = float(capability)
    if cap < 6.0:
        return None
    if cap < 7.0:
        return 20.0
    if cap < 10.0:
        return 25.0
    return 50.0


def pcie_rate(gpu: Gpu) -> float | None:
    """The GPU's PCIe link rate (GB/s, one direction): maximum generation x trained width."""
    pcie = gpu.get("pcie") or {}
    gen, width = pcie.get("max_gen"), pcie.get("width") or pcie.get("max_width")
    if not gen or not width or int(gen) not in PCIE_LANE_GBPS:
        return None
    return round(PCIE_LANE_GBPS[int(gen)] * int(width), 1)


def pcie_label(gpu: Gpu) -> str:
    pcie = gpu.get("pcie") or {}
    return f"PCIe Gen{pcie.get('max_gen', '?')} x{pcie.get('width') or pcie.get('max_width', '?')}"


def expected_pair(a: Gpu, b: Gpu, pair: Mapping[str, Any]) -> tuple[float | None, str]:
    """(GB/s one direction, what the link is) for the pair: NVLink links x rate, else the slower PCIe side."""
    links = int(pair.get("nvlinks") or 0)
    if pair.get("nvlink") and links:
        rate = nvlink_rate(min(float(a.get("capability") or 0), float(b.get("capability") or 0)))
        if rate:
            return links * rate, f"{links} NVLink links x {rate:g} GB/s"
    rates = [(pcie_rate(g), pcie_label(g)) for g in (a, b)]
    known = [r for r in rates if r[0]]
    if len(known) < 2:
        return None, "unknown link"
    return min(known)


def _pcie_below(gpus: list[Gpu], low: str, high: str) -> list[tuple[int, int, int]]:
    """(index, value of `low`, value of `high`) for each GPU whose PCIe reading `low` is under `high`."""
    out = []
    for g in gpus:
        pcie = g.get("pcie") or {}
        a, b = pcie.get(low), pcie.get(high)
        if a and b and int(a) < int(b):
            out.append((int(g["index"]), int(a), int(b)))
    return out


def degraded_widths(gpus: list[Gpu]) -> list[tuple[int, int, int]]:
    """(index, trained width, maximum width) for each GPU whose PCIe link trained narrower."""
    return _pcie_below(gpus, "width", "max_width")


def slot_limited(gpus: list[Gpu]) -> list[tuple[int, int, int]]:
    """(index, system max gen, GPU max gen): a card in a slot (or behind a switch) of an older generation."""
    return _pcie_below(gpus, "max_gen", "gpu_max_gen")
