"""Cross-rank checks: pure functions from every rank's record to observations.

A record is what rankinfo.collect_rank built on one rank. Each mismatch names the ranks and
their values, minority first and the majority last ("rank 1 (host b) has trl 1.15.0; ranks 0
(host a) have trl 1.14.0"), so the odd one out reads first.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

from doctor.findings import Evidence, Observation

Record = Mapping[str, Any]

# The packages whose versions must agree on every rank: the training stack and what pins it.
PACKAGES = ("torch", "unsloth", "unsloth_zoo", "transformers", "trl", "peft", "bitsandbytes",
            "triton", "accelerate", "datasets", "xformers")
MISSING = "not installed"


def rank_ranges(ranks: Iterable[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    ordered = sorted(set(ranks))
    parts: list[str] = []
    start = prev = None
    for r in ordered:
        if prev is not None and r == prev + 1:
            prev = r
            continue
        if start is not None:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = r
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def rank_label(ranks: Iterable[int]) -> str:
    """'rank 3' or 'ranks 0-2, 5'."""
    ordered = sorted(set(ranks))
    return f"{'rank' if len(ordered) == 1 else 'ranks'} {rank_ranges(ordered)}"


def describe_groups(groups: Mapping[str, Sequence[Record]], what: str, sep: str = " ") -> str:
    """'rank 1 (host b) has trl 1.15.0; ranks 0, 2 (host a) have trl 1.14.0' (largest group last)."""
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[1]), min(r["rank"] for r in kv[1])))
    parts = []
    for value, records in ordered:
        ranks = [r["rank"] for r in records]
        hosts = sorted({str(r.get("host", "?")) for r in records})
        host_text = f"host {hosts[0]}" if len(hosts) == 1 else f"hosts {', '.join(hosts)}"
        noun, verb = ("rank", "has") if len(ranks) == 1 else ("ranks", "have")
        shown = f"no {what}" if value == MISSING else f"{what}{sep}{value}"
        parts.append(f"{noun} {rank_ranges(ranks)} ({host_text}) {verb} {shown}")
    return "; ".join(parts)


def group_by(records: Sequence[Record], key: Callable[[Record], Any]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        value = key(record)
        groups[MISSING if value is None else str(value)].append(record)
    return dict(groups)


def _fact(name: str) -> Callable[[Record], Any]:
    return lambda r: r.get("facts", {}).get(name)


def _mismatch(entry_id: str, records: Sequence[Record], key: Callable[[Record], Any], what: str,
              **values: Any) -> list[Observation]:
    groups = group_by(records, key)
    if len(groups) < 2:
        return []
    text = describe_groups(groups, what)
    evidence = tuple(Evidence("observation", f"rank {r['rank']}", str(key(r)), source=str(r.get("host")))
                     for r in records)
    return [Observation(entry_id, values={"what": what, "ranks_text": text, "values": sorted(groups), **values},
                        evidence=evidence)]


def package_mismatches(records: Sequence[Record]) -> list[Observation]:
    out: list[Observation] = []
    for name in PACKAGES:
        key = _fact(f"pkg.{name}.version")
        if all(key(r) is None for r in records):
            continue
        out += _mismatch("DIST-PACKAGE-MISMATCH", records, key, name, package=name)
    return out


def python_mismatch(records: Sequence[Record]) -> list[Observation]:
    return _mismatch("DIST-PYTHON-MISMATCH", records, _fact("python.version"), "Python")


def cuda_build_mismatch(records: Sequence[Record]) -> list[Observation]:
    def build(r: Record) -> Any:
        f = r.get("facts", {})
        return f.get("torch.cuda_build") or f.get("torch.build")
    if all(_fact("torch.version")(r) is None for r in records):
        return []
    return _mismatch("DIST-CUDA-BUILD-MISMATCH", records, build, "a torch build for")


def _gpu(record: Record) -> dict[str, Any] | None:
    """The GPU this rank trains on: torch's view when it ran, else NVML's card LOCAL_RANK.

    NVML ignores CUDA_VISIBLE_DEVICES, so once torch has looked, its answer wins: a rank whose
    LOCAL_RANK points past the visible devices has no GPU even though NVML lists one there.
    """
    rt = record.get("runtime", {})
    if rt.get("device"):
        if not str(rt["device"]).startswith("cuda"):
            return None
        return {"name": rt.get("device_name", "?"), "capability": rt.get("capability"),
                "id": rt.get("device_uuid") or rt.get("device_pci") or rt.get("device")}
    facts = record.get("facts", {})
    i = record.get("local_rank", 0)
    name = facts.get(f"gpu.{i}.name")
    if not name:
        return None
    return {"name": name, "capability": facts.get(f"gpu.{i}.capability"), "id": None}


def gpu_mismatches(records: Sequence[Record]) -> list[Observation]:
    with_gpu = [r for r in records if _gpu(r)]
    out: list[Observation] = []
    if with_gpu and len(with_gpu) < len(records):
        out += _mismatch("DIST-RANK-NO-GPU", records, lambda r: (_gpu(r) or {}).get("name"), "GPU")
    if len(with_gpu) < 2:
        return out
    out += _mismatch("DIST-GPU-MISMATCH", with_gpu, lambda r: _gpu(r)["name"], "GPU")
    caps = {float(_gpu(r)["capability"]) for r in with_gpu if _gpu(r)["capability"] is not None}
    if caps and min(caps) < 8.0 <= max(caps):
        # dtype=None picks bf16 on >= 8.0 and fp16 below: the ranks would train in different dtypes.
        out += _mismatch("DIST-BF16-MIXED", with_gpu, lambda r: _gpu(r)["capability"], "compute capability")
    out += _mismatch("DIST-DRIVER-MISMATCH", with_gpu, _fact("nvml.driver_version"), "driver")
    nccl = [r for r in with_gpu if r.get("runtime", {}).get("nccl_version")]
    if len(nccl) >= 2:
        out += _mismatch("DIST-NCCL-VERSION-MISMATCH", nccl, lambda r: r["runtime"]["nccl_version"], "NCCL")
    return out


def shared_gpus(records: Sequence[Record]) -> list[Observation]:
    """Two ranks of one host on one card: NCCL refuses ("Duplicate GPU detected")."""
    by_card: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        gpu = _gpu(r)
        if gpu and gpu.get("id"):
            by_card[(str(r.get("host")), str(gpu["id"]))].append(r)
    out = []
    for (host, card), ranks in sorted(by_card.items()):
        if len(ranks) > 1:
            out.append(Observation("DIST-SHARED-GPU", values={
                "host": host, "card": card, "ranks": rank_ranges(r["rank"] for r in ranks),
                "cuda_visible_devices": ranks[0].get("vars", {}).get("CUDA_VISIBLE_DEVICES", "(unset)")}))
    return out


def env_differences(records: Sequence[Record]) -> list[Observation]:
    """NCCL_* and UNSLOTH_* variables set differently across ranks."""
    names: set[str] = set()
    for r in records:
        names.update(k for k in r.get("vars", {}) if k.startswith("NCCL_"))
        names.update(k[4:] for k in r.get("facts", {}) if k.startswith("env.UNSLOTH_"))
    out: list[Observation] = []
    for name in sorted(names):
        def value(r: Record, n: str = name) -> Any:
            return r.get("vars", {}).get(n, r.get("facts", {}).get(f"env.{n}"))
        groups = group_by(records, value)
        if len(groups) > 1:
            out.append(Observation("DIST-ENV-DIFFERS", values={"variable": name,
                                                                "ranks_text": describe_groups(groups, name, "=")}))
    return out


def compile_cache_checks(records: Sequence[Record]) -> list[Observation]:
    out: list[Observation] = []
    unwritable = [r for r in records if not r.get("compile_cache", {}).get("writable", True)]
    if unwritable:
        first = unwritable[0]["compile_cache"]["path"]
        out.append(Observation("DIST-COMPILE-CACHE-NOT-WRITABLE", values={
            "path": first, "ranks": rank_label(r["rank"] for r in unwritable)}))
    by_path: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        cache = r.get("compile_cache", {})
        if cache.get("network_fs"):
            by_path[cache["path"]].append(r)
    for path, ranks in sorted(by_path.items()):
        hosts = sorted({str(r.get("host")) for r in ranks})
        if len(hosts) > 1:
            out.append(Observation("DIST-COMPILE-CACHE-SHARED", values={
                "path": path, "fs_type": ranks[0]["compile_cache"].get("fs_type"), "hosts": ", ".join(hosts),
                "ranks": rank_ranges(r["rank"] for r in ranks)}))
    return out


def world_summary(records: Sequence[Record]) -> dict[str, Any]:
    """Facts for the report: how many ranks, hosts and which launcher."""
    hosts = sorted({str(r.get("host")) for r in records})
    return {
        "dist.world_size": len(records),
        "dist.hosts": len(hosts),
        "dist.host_names": ", ".join(hosts),
        "dist.launcher": records[0].get("launcher") if records else None,
        "dist.ranks_with_gpu": sum(1 for r in records if _gpu(r)),
    }


def cross_rank_observations(records: Sequence[Record]) -> list[Observation]:
    records = sorted(records, key=lambda r: r["rank"])
    return [*package_mismatches(records), *python_mismatch(records), *cuda_build_mismatch(records),
            *gpu_mismatches(records), *shared_gpus(records), *env_differences(records),
            *compile_cache_checks(records)]
