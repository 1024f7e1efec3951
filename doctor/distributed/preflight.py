"""`scan --gpus`: from one machine's record to observations, facts and summary lines; pure.

The record is plain JSON (tests and `kb test` feed recorded ones, see fixtures/gpus/):
  torch       {version, cuda, hip, nccl, nccl_available, accelerator, error}
  gpus        [{index, name, capability, memory_mib, pci, pcie: {gen, width, max_gen, max_width,
               gpu_max_gen}, nvlink_version}] in torch's order (CUDA_VISIBLE_DEVICES applied)
  pairs       {"0-1": {level: PIX|PXB|PHB|NODE|SYS, nvlink, nvlinks, p2p_read}} from NVML
  topology_error   why there is no `pairs`
  peer_copy   {"0->1": "ok" | "corrupt" | "error: ..." | "hung: ..." | "inconclusive: ..."}
  peer_access {"0->1": bool}: torch.cuda.can_device_access_peer
  peer_copy_skipped  why the peer-copy probe did not run
  allreduce   run_allreduce_suite's result, or {backend, error, hung}
  allreduce_retry   the same with NCCL_P2P_DISABLE=1, or null
  p2p_disable_inherited   NCCL_P2P_DISABLE=1 was already set (no retry is possible)
  run         {method, params_b, source}: the user's run, for the strategy verdict
"""
from __future__ import annotations

from typing import Any, Mapping

from doctor.distributed.bandwidth import allreduce_observations
from doctor.distributed.checks import gpu_mismatches
from doctor.distributed.links import SLOW_LINK_RATIO, degraded_widths, expected_pair, pcie_label, slot_limited
from doctor.distributed.strategy import Run, strategy
from doctor.findings import Evidence, Observation
from doctor.results.words import counted

Record = Mapping[str, Any]


def _pair_list(keys: list[str]) -> str:
    return ", ".join(keys)


def _gpus(record: Record) -> list[dict[str, Any]]:
    return list(record.get("gpus") or [])


def start_observations(record: Record) -> list[Observation] | None:
    """Why the multi-GPU checks stop early (no torch, no GPU, one GPU, a non-CUDA device), else None."""
    torch = record.get("torch") or {}
    if torch.get("error"):
        return [Observation("GPUS-TORCH-BROKEN", values={"error": torch["error"]})]
    gpus = _gpus(record)
    if not gpus and torch.get("accelerator"):
        return [Observation("GPUS-NON-CUDA", values={"accelerator": torch["accelerator"]})]
    if not gpus:
        return [Observation("GPUS-NONE", values={"torch": torch.get("version", "?"),
                                                 "cuda": torch.get("cuda") or torch.get("hip") or "none"})]
    if len(gpus) == 1:
        return [Observation("GPUS-SINGLE", values={"name": gpus[0].get("name", "?")})]
    return None


def _mixed(gpus: list[dict[str, Any]]) -> list[Observation]:
    """Different cards: the cross-rank GPU checks, one local rank per GPU."""
    records = [{"rank": g["index"], "host": "this machine",
                "runtime": {"device": f"cuda:{g['index']}", "device_name": g.get("name"),
                            "capability": g.get("capability")}} for g in gpus]
    return [o for o in gpu_mismatches(records) if o.entry_id in ("DIST-GPU-MISMATCH", "DIST-BF16-MIXED")]


def peer_copy_observations(results: Mapping[str, str]) -> list[Observation]:
    by_kind: dict[str, list[str]] = {}
    for pair, status in sorted(results.items()):
        by_kind.setdefault(status.split(":", 1)[0], []).append(pair)
    out = []
    if by_kind.get("corrupt"):
        out.append(Observation("GPUS-PEER-COPY-CORRUPT", values={"pairs": _pair_list(by_kind["corrupt"])}))
    if by_kind.get("error"):
        first = results[by_kind["error"][0]].split(":", 1)[1].strip()
        out.append(Observation("GPUS-PEER-COPY-FAILED", values={"pairs": _pair_list(by_kind["error"]),
                                                                "error": first}))
    if by_kind.get("hung"):
        first = results[by_kind["hung"][0]].split(":", 1)[1].strip()
        out.append(Observation("GPUS-PEER-COPY-HUNG", values={"pairs": _pair_list(by_kind["hung"]), "detail": first}))
    if by_kind.get("inconclusive"):
        reason = results[by_kind["inconclusive"][0]].split(":", 1)[1].strip()
        out.append(Observation("GPUS-PEER-COPY-INCONCLUSIVE", values={
            "pairs": _pair_list(by_kind["inconclusive"]), "reason": reason}))
    return out


def _failed(result: Mapping[str, Any] | None) -> bool:
    if not result:
        return False
    return bool(result.get("error") or result.get("hung") or not (result.get("world") or {}).get("ok"))


def _what(result: Mapping[str, Any]) -> str:
    return "hung" if result.get("hung") else "failed"


def allreduce_verdict(record: Record) -> list[Observation]:
    first = record.get("allreduce")
    if not first:
        return []
    if not _failed(first):
        return allreduce_observations(first)
    if not first.get("error") and not first.get("hung"):
        return allreduce_observations(first)      # it ran, with a wrong sum: DIST-ALLREDUCE-WRONG
    retry = record.get("allreduce_retry")
    values = {"what": _what(first), "backend": first.get("backend", "nccl"),
              "error": (first.get("error") or "no error text").strip().splitlines()[-1][:300]}
    if retry and not _failed(retry):
        return [Observation("GPUS-ALLREDUCE-NEEDS-P2P-DISABLE", values=values)]
    if record.get("p2p_disable_inherited"):
        values["retried"] = "with NCCL_P2P_DISABLE=1 already set, so no retry without P2P was possible"
    elif retry:
        values["retried"] = f"and {_what(retry)} again with NCCL_P2P_DISABLE=1"
    else:
        values["retried"] = "and was not retried"
    return [Observation("GPUS-ALLREDUCE-FAILED", values=values)]


def pair_busbw(record: Record) -> dict[str, float]:
    """Measured all-reduce bus bandwidth per pair ("0-1": GB/s), from the first run or the retry."""
    for key in ("allreduce", "allreduce_retry"):
        result = record.get(key) or {}
        if result and not _failed(result):
            return {f"{p['pair'][0]}-{p['pair'][1]}": float(p["busbw_gbps"]) for p in result.get("pairs", [])
                    if p.get("ok") and p.get("busbw_gbps") is not None}
    return {}


def link_observations(record: Record) -> list[Observation]:
    gpus = {int(g["index"]): g for g in _gpus(record)}
    out = [Observation("GPUS-PCIE-WIDTH-DEGRADED", values={"gpu": i, "width": w, "max_width": top,
                                                            "name": gpus[i].get("name", "?")})
           for i, w, top in degraded_widths(list(gpus.values()))]
    out += [Observation("GPUS-PCIE-SLOT-GEN", values={"gpu": i, "system_gen": s, "gpu_gen": c,
                                                       "name": gpus[i].get("name", "?")})
            for i, s, c in slot_limited(list(gpus.values()))]
    pairs = record.get("pairs") or {}
    for key, bw in sorted(pair_busbw(record).items()):
        a, b = (int(x) for x in key.split("-"))
        if a not in gpus or b not in gpus:
            continue
        expected, link = expected_pair(gpus[a], gpus[b], pairs.get(key, {}))
        if expected and bw < SLOW_LINK_RATIO * expected:
            out.append(Observation("GPUS-LINK-SLOW", values={
                "pair": key, "busbw": f"{bw:.1f}", "expected": f"{expected:.0f}", "link": link,
                "share": f"{bw / expected:.0%}", "level": pairs.get(key, {}).get("level", "?")},
                evidence=(Evidence("observation", f"GPUs {key}", f"{bw:.1f} GB/s measured, {expected:.0f} GB/s link"),)))
    return out


def topology_observations(record: Record, copy_bad: bool) -> list[Observation]:
    pairs = record.get("pairs")
    if not pairs:
        if record.get("topology_error"):
            return [Observation("GPUS-TOPOLOGY-UNAVAILABLE", values={"error": record["topology_error"]})]
        return []
    no_read = sorted(k for k, p in pairs.items() if not p.get("p2p_read"))
    if no_read and not copy_bad:
        return [Observation("GPUS-P2P-READ-UNCONFIRMED", values={"pairs": _pair_list(no_read)})]
    return []


def run_of(record: Record) -> Run:
    run = record.get("run") or {}
    return Run(run.get("method"), run.get("params_b"), run.get("source", ""))


def gpus_observations(record: Record) -> list[Observation]:
    """Every observation `scan --gpus` makes of one machine's record."""
    early = start_observations(record)
    if early is not None:
        return early + (link_observations(record) if _gpus(record) else [])
    torch = record.get("torch") or {}
    gpus = _gpus(record)
    out = _mixed(gpus)
    if torch.get("hip"):
        out.append(Observation("GPUS-ROCM", values={"hip": torch["hip"], "count": len(gpus)}))
    copy = peer_copy_observations(record.get("peer_copy") or {})
    out += copy
    out += topology_observations(record, any(o.entry_id != "GPUS-PEER-COPY-INCONCLUSIVE" for o in copy))
    if not torch.get("nccl_available", True):
        out.append(Observation("GPUS-NO-NCCL", values={"torch": torch.get("version", "?"), "count": len(gpus)}))
    out += allreduce_verdict(record)
    out += link_observations(record)
    entry, values = strategy(run_of(record), gpus, record.get("pairs") or {})
    out.append(Observation(entry, values=values))
    return out


def gpus_facts(record: Record) -> dict[str, Any]:
    facts: dict[str, Any] = {"gpus.count": len(_gpus(record))}
    gpus = {int(g["index"]): g for g in _gpus(record)}
    measured = pair_busbw(record)
    for key, pair in sorted((record.get("pairs") or {}).items()):
        facts[f"gpus.pair.{key}.level"] = pair.get("level")
        facts[f"gpus.pair.{key}.nvlink"] = bool(pair.get("nvlink"))
        facts[f"gpus.pair.{key}.p2p_read"] = bool(pair.get("p2p_read"))
        a, b = (int(x) for x in key.split("-"))
        if a in gpus and b in gpus:
            expected, _ = expected_pair(gpus[a], gpus[b], pair)
            if expected:
                facts[f"gpus.pair.{key}.expected_gbps"] = expected
    for key, bw in measured.items():
        facts[f"gpus.pair.{key}.busbw_gbps"] = round(bw, 2)
    for key, status in sorted((record.get("peer_copy") or {}).items()):
        facts[f"gpus.peer_copy.{key}"] = status.split(":", 1)[0]
    for key, access in sorted((record.get("peer_access") or {}).items()):
        facts[f"gpus.peer_access.{key}"] = bool(access)
    for key in ("allreduce", "allreduce_retry"):
        result = record.get(key)
        if result:
            facts[f"gpus.{key}.ok"] = not _failed(result)
            world = result.get("world") or {}
            if world.get("busbw_gbps") is not None and not _failed(result):
                facts[f"gpus.{key}.busbw_gbps"] = round(world["busbw_gbps"], 2)
    return facts


# Which findings each console line stands for (entry id prefixes); the strategy line takes the rest.
GPU_IDS = ("GPUS-TORCH-BROKEN", "GPUS-NONE", "GPUS-NON-CUDA", "GPUS-SINGLE", "GPUS-ROCM", "GPUS-NO-NCCL",
           "DIST-GPU-MISMATCH", "DIST-BF16-MIXED")
LINK_IDS = ("GPUS-TOPOLOGY-UNAVAILABLE", "GPUS-P2P-READ-UNCONFIRMED", "GPUS-PCIE-WIDTH-DEGRADED", "GPUS-PCIE-SLOT-GEN",
            "GPUS-LINK-SLOW")
COPY_IDS = ("GPUS-PEER-COPY-CORRUPT", "GPUS-PEER-COPY-FAILED", "GPUS-PEER-COPY-HUNG", "GPUS-PEER-COPY-INCONCLUSIVE")
ALLREDUCE_IDS = ("GPUS-ALLREDUCE-NEEDS-P2P-DISABLE", "GPUS-ALLREDUCE-FAILED", "DIST-ALLREDUCE-WRONG",
                 "DIST-ALLREDUCE-FAILED", "DIST-SLOW-PAIR")
NONE = ("(none)",)


def _access(record: Record, pair: str) -> str:
    """torch.cuda.can_device_access_peer for the pair, as the child saw it."""
    access = (record.get("peer_access") or {}).get(pair)
    return "" if access is None else f" (peer access {'yes' if access else 'no'})"


def summary_lines(record: Record) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label, detail, entry id prefixes) lines for the console: the GPUs, each pair's link, the
    peer copies, the all-reduce, and a last line for the strategy and the script's settings."""
    gpus = _gpus(record)
    names = sorted({str(g.get("name")) for g in gpus})
    torch = record.get("torch") or {}
    lines = [(f"GPUs: {len(gpus)} visible ({', '.join(names) or 'none'})",
              f"torch {torch.get('version', '?')}, "
              + (f"ROCm {torch['hip']}" if torch.get("hip") else f"CUDA {torch.get('cuda') or 'none'}")
              + f", NCCL {torch.get('nccl') or 'unavailable'}", GPU_IDS)]
    gpu_by = {int(g["index"]): g for g in gpus}
    measured = pair_busbw(record)
    pair_text = []
    for key, pair in sorted((record.get("pairs") or {}).items()):
        a, b = (int(x) for x in key.split("-"))
        expected, link = expected_pair(gpu_by[a], gpu_by[b], pair) if a in gpu_by and b in gpu_by else (None, "")
        bw = f", all-reduce {measured[key]:.1f} GB/s" if key in measured else ""
        pair_text.append(f"{key} {pair.get('level')} {'NVLink' if pair.get('nvlink') else 'no NVLink'}, "
                         f"P2P read {'yes' if pair.get('p2p_read') else 'no'}"
                         + (f", {link} = {expected:.0f} GB/s" if expected else "") + bw)
    if pair_text:
        lines.append((f"Topology (NVML): {counted(len(pair_text), 'pair')}", "; ".join(pair_text), LINK_IDS))
    elif gpus:
        links = "; ".join(f"{g['index']}: {pcie_label(g)}" for g in gpus if g.get("pcie"))
        lines.append(("Links (NVML)", links or record.get("topology_error", "not read"), LINK_IDS))
    copies = record.get("peer_copy") or {}
    if copies:
        ok = sum(1 for s in copies.values() if s == "ok")
        lines.append((f"Peer copies: {ok} of {len(copies)} ordered pairs kept their data",
                      "; ".join(f"{k} {v}" + _access(record, k) for k, v in sorted(copies.items())), COPY_IDS))
    elif record.get("peer_copy_skipped"):
        lines.append(("Peer copies: not checked", record["peer_copy_skipped"], COPY_IDS))
    for key, label, ids in (("allreduce", "All-reduce", ALLREDUCE_IDS),
                            ("allreduce_retry", "All-reduce with NCCL_P2P_DISABLE=1", NONE)):
        result = record.get(key)
        if not result:
            continue
        world = result.get("world") or {}
        if _failed(result):
            lines.append((f"{label}: {_what(result).upper()} ({result.get('backend')})", "", ids))
        else:
            lines.append((f"{label}: result checked, {world.get('ranks')} ranks, busbw "
                           f"{world.get('busbw_gbps', 0):.1f} GB/s ({result.get('backend')})", "", ids))
    lines.append(("Strategy and launch settings", "", ()))
    return lines
