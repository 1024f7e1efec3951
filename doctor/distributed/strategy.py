"""Which multi-GPU strategy fits this machine's topology for the user's run; pure.

Under torchrun Unsloth trains DDP by default: one whole model per GPU
(unsloth/models/loader.py:1309-1315), so a run whose model fits one card is DDP on any
topology; DDP all-reduces only the trainable gradients, which for LoRA are small. A run that
does not fit one card must shard (Unsloth 2026.10's native FSDP2 with UNSLOTH_FSDP2=1,
unsloth/models/fsdp2_native.py:13, or ZeRO-3), which gathers the full weights every step:
viable when every pair is NVLinked, slow across PCIe host bridges (the same advice as
unsloth_cli/commands/doctor.py:verdict).

Memory per parameter, the model's weights and training state only (activations come on top,
hence the headroom): QLoRA 4-bit NF4 with its quantisation constants about 0.56 bytes; LoRA on
16-bit weights 2 bytes; full fine-tuning with mixed-precision AdamW 16 bytes (bf16 weights and
gradients, fp32 master weights and two Adam moments: the ZeRO paper's 2+2+12).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

BYTES_PER_PARAM = {"qlora": 0.56, "lora": 2.0, "full": 16.0}
# Share of a card the weights and training state may take; the rest is activations and context.
HEADROOM = 0.75
HOST_LEVELS = ("PHB", "NODE", "SYS")
METHOD_NAMES = {"qlora": "QLoRA (4-bit)", "lora": "LoRA (16-bit)", "full": "full fine-tuning"}


@dataclass(frozen=True)
class Run:
    method: str | None = None        # qlora | lora | full
    params_b: float | None = None    # billions of parameters
    source: str = ""                 # where the two came from
    state_gib: float | None = None   # weights + training state as the VRAM estimate sizes this run


def topology_class(pairs: Mapping[str, Mapping[str, Any]]) -> str:
    """nvlink (every pair), host-bridge (a pair crosses PHB/NODE/SYS without NVLink), pcie-switch, unknown."""
    if not pairs:
        return "unknown"
    if all(p.get("nvlink") for p in pairs.values()):
        return "nvlink"
    if any(not p.get("nvlink") and p.get("level") in HOST_LEVELS for p in pairs.values()):
        return "host-bridge"
    if all(p.get("level") in ("PIX", "PXB", "SAME") or p.get("nvlink") for p in pairs.values()):
        return "pcie-switch"
    return "unknown"


def need_gib(run: Run, method: str | None = None) -> float | None:
    method = method or run.method
    if method == run.method and run.state_gib:
        return run.state_gib   # the run's own settings (bits, rank, optimizer), as the VRAM estimate reads them
    if method not in BYTES_PER_PARAM or not run.params_b:
        return None
    return round(run.params_b * 1e9 * BYTES_PER_PARAM[method] / 2**30, 1)


def _values(run: Run, n: int, card_gib: float, topo: str, pairs: Sequence[str]) -> dict[str, Any]:
    return {"method": METHOD_NAMES.get(run.method or "", run.method or "unknown"),
            "params_b": f"{run.params_b:g}" if run.params_b else "?", "need_gib": need_gib(run),
            "gpu_gib": round(card_gib, 1), "total_gib": round(card_gib * n, 1), "gpus": n, "topology": topo,
            "host_pairs": ", ".join(pairs) or "none", "source": run.source or "not given",
            "qlora_gib": need_gib(run, "qlora"), "lora_gib": need_gib(run, "lora")}


def strategy(run: Run, gpus: Sequence[Mapping[str, Any]], pairs: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(entry id, values) of the verdict for this run on these GPUs."""
    n = len(gpus)
    mems = [g.get("memory_mib") for g in gpus if g.get("memory_mib")]
    card_gib = min(mems) / 1024 if mems else 0.0
    topo = topology_class(pairs)
    host_pairs = sorted(k for k, p in pairs.items() if not p.get("nvlink") and p.get("level") in HOST_LEVELS)
    values = _values(run, n, card_gib, topo, host_pairs)
    need = need_gib(run)
    if need is None or not card_gib:
        return "GPUS-STRATEGY-GENERIC", values
    if need <= HEADROOM * card_gib:
        return "GPUS-STRATEGY-DDP", values
    if need > HEADROOM * card_gib * n:
        return "GPUS-STRATEGY-DOES-NOT-FIT", values
    if topo == "nvlink":
        return "GPUS-STRATEGY-SHARDED", values
    return "GPUS-STRATEGY-SHARDING-OVER-PCIE", values


def launch_conflicts(strategy_id: str, script_ids: Sequence[str]) -> list[str]:
    """Script settings (DIST-* ids from script_split) that contradict the verdict's strategy."""
    if strategy_id in ("GPUS-STRATEGY-SHARDED", "GPUS-STRATEGY-SHARDING-OVER-PCIE", "GPUS-STRATEGY-DOES-NOT-FIT"):
        return []    # a device_map split is one way to run a model that does not fit one card
    return [i for i in script_ids if i in ("DIST-DEVICE-MAP-STRATEGY", "DIST-DEVICE-MAP-SPLIT", "DIST-DATAPARALLEL")]
