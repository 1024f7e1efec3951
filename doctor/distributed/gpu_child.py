"""Child process of `scan --gpus` (run as `python -c`; imports nothing of ours): torch's view of
the GPUs, then a peer copy per ordered pair with a sentinel-filled destination.

Every step is printed as a marker line the moment it happens, so when the parent kills this
process at its deadline the last "start" without a "copy" names the pair that hung. The
sentinel matters: behind a translating IOMMU a PCIe peer copy can be dropped while CUDA
reports success (unsloth_cli/commands/doctor.py, p2p_copy_probe), so the destination must
hold something the source never does.
"""
import json
import os

MARK = "UNSLOTH_DOCTOR_GPUS "
SENTINEL = -7.0
COPY_MIB = int(os.environ.get("UNSLOTH_DOCTOR_COPY_MIB", "16"))


def emit(**record):
    print(MARK + json.dumps(record), flush=True)


def torch_info(torch):
    hip = getattr(torch.version, "hip", None)
    if hip is None and "rocm" in str(torch.__version__).lower():   # AMD SDK wheels leave version.hip unset
        hip = str(torch.__version__).lower().split("rocm", 1)[1] or "unknown"
    dist = getattr(torch, "distributed", None)
    info = {"version": torch.__version__, "cuda": getattr(torch.version, "cuda", None), "hip": hip,
            "nccl": None, "nccl_available": bool(dist and dist.is_available() and dist.is_nccl_available()),
            "accelerator": None}
    if not torch.cuda.is_available():
        for name in ("mps", "xpu"):
            backend = getattr(torch.backends, name, None) if name == "mps" else getattr(torch, name, None)
            try:
                if backend is not None and backend.is_available():
                    info["accelerator"] = name
                    break
            except Exception:
                pass
        return info
    try:
        version = torch.cuda.nccl.version()
        info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    except Exception:
        pass
    return info


def gpu_list(torch):
    out = []
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        p = torch.cuda.get_device_properties(i)
        pci = None
        if getattr(p, "pci_bus_id", None) is not None:
            pci = [int(getattr(p, "pci_domain_id", 0)), int(p.pci_bus_id), int(getattr(p, "pci_device_id", 0))]
        uuid = getattr(p, "uuid", None)
        out.append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                    "memory_mib": p.total_memory // (1024 * 1024), "pci": pci,
                    "uuid": str(uuid) if uuid is not None else None})
    return out


def peer_copies(torch, count):
    numel = COPY_MIB * 1024 * 1024 // 4
    for src in range(count):
        for dst in range(count):
            if src == dst:
                continue
            pair = f"{src}->{dst}"
            emit(start=pair, peer_access=bool(torch.cuda.can_device_access_peer(src, dst)))
            try:
                s = torch.arange(numel, dtype=torch.float32, device=f"cuda:{src}")
                d = torch.full((numel,), SENTINEL, dtype=torch.float32, device=f"cuda:{dst}")
            except Exception as exc:   # no copy was attempted: says nothing about peer copies
                emit(copy=pair, status=f"inconclusive: could not allocate: {type(exc).__name__}: {exc}")
                continue
            try:
                d.copy_(s)
                torch.cuda.synchronize(src)
                torch.cuda.synchronize(dst)
                emit(copy=pair, status="ok" if torch.equal(d.cpu(), s.cpu()) else "corrupt")
            except Exception as exc:
                emit(copy=pair, status=f"error: {type(exc).__name__}: {exc}")
            del s, d
            torch.cuda.empty_cache()


def main():
    try:
        import torch
    except BaseException as exc:   # a broken CUDA library raises OSError, not ImportError
        emit(torch={"error": f"{type(exc).__name__}: {exc}"})
        return
    try:
        info, gpus = torch_info(torch), gpu_list(torch)
    except Exception as exc:   # a driver/runtime mismatch or a faulted GPU fails here
        emit(torch={"error": f"GPU enumeration failed: {type(exc).__name__}: {exc}",
                    "version": torch.__version__})
        return
    emit(torch=info, gpus=gpus)
    if len(gpus) > 1 and not info["hip"] and os.environ.get("UNSLOTH_DOCTOR_PEER_COPY", "1") == "1":
        peer_copies(torch, len(gpus))
    emit(done=True)


main()
