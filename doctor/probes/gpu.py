"""NVIDIA driver and GPU facts from NVML, with what CUDA_VISIBLE_DEVICES leaves visible.

Facts:
  nvml.available         NVML loaded and answered
  nvml.error             why it did not (library missing, driver not loaded, ...)
  nvml.driver_version    "535.104.05"
  nvml.driver_cuda       highest CUDA the driver supports, "12.2" (nvmlSystemGetCudaDriverVersion)
  nvml.driver_cuda_major 12 (int)
  nvml.kernel_driver_version  from /proc/driver/nvidia/version, when the kernel module is loaded
  gpu.count              GPUs the driver sees (NVML ignores CUDA_VISIBLE_DEVICES); 0 when there
                         is no NVIDIA driver at all
  gpu.<i>.name, gpu.<i>.capability (float, 7.5), gpu.<i>.memory_total_mib, gpu.<i>.memory_used_mib
  gpu.max_memory_used_fraction, gpu.busiest.memory_used_mib, gpu.busiest.index: the fullest GPU
                         (memory other processes hold before training starts)
  gpu.min_capability, gpu.max_capability, gpu.min_memory_mib
  gpu.names              distinct names, "NVIDIA A100-SXM4-80GB, Tesla T4"
  gpu.mixed              more than one kind of GPU
  gpu.visible_count      how many of them CUDA_VISIBLE_DEVICES lets CUDA see
  gpu.amd_kfd            /dev/kfd exists (an AMD ROCm device node)
"""
from __future__ import annotations

import re
from typing import Mapping

from doctor.facts import FactCollector, Facts
from doctor.probes.system import NvmlSnapshot, SystemView

_NO_DRIVER = ("LibraryNotFound", "DriverNotLoaded", "pynvml not importable")
_KERNEL_VERSION = re.compile(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9]+\.[0-9.]+)")


def visible_count(cuda_visible_devices: str | None, count: int) -> int:
    """How many devices CUDA enumerates under CUDA_VISIBLE_DEVICES, per CUDA's rules.

    Unset: all. The list is read left to right and stops at the first invalid entry (so "-1"
    or "" hides everything); UUIDs (GPU-..., MIG-...) are taken as valid.
    """
    if cuda_visible_devices is None:
        return count
    seen: list[str] = []
    for raw in cuda_visible_devices.split(","):
        item = raw.strip()
        if item.isdigit():
            if int(item) >= count:
                break
        elif not (item.startswith("GPU-") or item.startswith("MIG-")):
            break
        if item not in seen:
            seen.append(item)
    return len(seen)


def gpu_facts(snap: NvmlSnapshot, environ: Mapping[str, str], proc_driver: str | None = None,
              amd_kfd: bool = False) -> Facts:
    """Pure: facts from an NVML snapshot, the environment and /proc/driver/nvidia/version text."""
    fc = FactCollector("NVML")
    fc.set("nvml.available", snap.ok)
    if proc_driver:
        m = _KERNEL_VERSION.search(proc_driver)
        if m:
            fc.set("nvml.kernel_driver_version", m.group(1), "/proc/driver/nvidia/version")
    if amd_kfd:
        fc.set("gpu.amd_kfd", True, "/dev/kfd")
    if not snap.ok:
        fc.set("nvml.error", snap.error)
        # No library and no kernel module: there is no usable NVIDIA GPU here.
        if not proc_driver and any(s in (snap.error or "") for s in _NO_DRIVER):
            fc.set("gpu.count", 0, "no NVIDIA driver")
            fc.set("gpu.visible_count", 0, "no NVIDIA driver")
        return fc.freeze()
    fc.set("nvml.driver_version", snap.driver_version)
    if snap.cuda_driver_version:
        v = snap.cuda_driver_version
        fc.set("nvml.driver_cuda", f"{v // 1000}.{v % 1000 // 10}")
        fc.set("nvml.driver_cuda_major", v // 1000)
    fc.set("gpu.count", len(snap.gpus))
    caps: list[float] = []
    mems: list[int] = []
    names: list[str] = []
    busiest = (0.0, 0, -1)   # (used fraction, used MiB, index) of the fullest GPU
    for gpu in snap.gpus:
        fc.set(f"gpu.{gpu.index}.name", gpu.name)
        if gpu.capability:
            cap = round(gpu.capability[0] + gpu.capability[1] / 10, 1)
            fc.set(f"gpu.{gpu.index}.capability", cap)
            caps.append(cap)
        if gpu.memory_total_bytes:
            mib = gpu.memory_total_bytes // (1024 * 1024)
            fc.set(f"gpu.{gpu.index}.memory_total_mib", mib)
            mems.append(mib)
            if gpu.memory_used_bytes is not None:
                used = gpu.memory_used_bytes // (1024 * 1024)
                fc.set(f"gpu.{gpu.index}.memory_used_mib", used)
                busiest = max(busiest, (round(used / mib, 2), used, gpu.index))
        if gpu.name not in names:
            names.append(gpu.name)
    if caps:
        fc.set("gpu.min_capability", min(caps))
        fc.set("gpu.max_capability", max(caps))
    if mems:
        fc.set("gpu.min_memory_mib", min(mems))
    if busiest[2] >= 0:
        fc.set("gpu.max_memory_used_fraction", busiest[0])
        fc.set("gpu.busiest.memory_used_mib", busiest[1])
        fc.set("gpu.busiest.index", busiest[2])
    if names:
        fc.set("gpu.names", ", ".join(names))
    fc.set("gpu.mixed", len(names) > 1)
    fc.set("gpu.visible_count", visible_count(environ.get("CUDA_VISIBLE_DEVICES"), len(snap.gpus)),
           "NVML + CUDA_VISIBLE_DEVICES")
    return fc.freeze()


def collect_gpu(view: SystemView) -> Facts:
    proc = None
    amd = False
    if view.python.system == "Linux":
        proc = view.read_text(view.sys_path("/proc/driver/nvidia/version"))
        amd = view.exists(view.sys_path("/dev/kfd"))
    return gpu_facts(view.nvml_snapshot(), view.environ, proc, amd)
