"""The VRAM estimate for the smoke test's own run on a local model folder, before we try it.

Sizes come from config.json and the safetensors headers only (no weights are loaded); the
arithmetic is doctor/probes/vram.py's, the one formula the scan uses too, calibrated against
real Unsloth runs. The smoke test refuses to start only when even the low end of the estimate's
band exceeds the GPU's memory: a verdict that stops a run must not rest on a guess.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from doctor.probes import vram
from doctor.probes.model import HeaderError, read_safetensors_header

MIB = vram.MIB
# Stored dtypes we count; unknown ones count 2 bytes a parameter.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
SMOKE_OPTIMIZER = "adamw_torch"   # what doctor/smoketest/child.py trains with


class EstimateError(Exception):
    """The folder cannot be estimated (no config.json, unreadable headers...)."""


@dataclass(frozen=True)
class Estimate:
    run: vram.VramEstimate
    params: int
    load_in_4bit: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_mib(self) -> float:
        return self.run.total_mib

    def as_facts(self) -> dict[str, Any]:
        facts = self.run.as_facts("smoke.estimate")
        facts["smoke.estimate.params"] = self.params
        facts["smoke.estimate.load_in_4bit"] = self.load_in_4bit
        return facts


def header_counts(tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> tuple[int, int]:
    """(every stored parameter, the decoder's 2-D Linear weights) from the headers."""
    total = linear = 0
    for name, (_, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= int(d)
        total += n
        if len(shape) == 2 and name.endswith(".weight") and any(p in name for p in vram.PROJECTIONS):
            linear += n
    return total, linear


def read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, tuple[str, tuple[int, ...]]]]:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise EstimateError(f"{folder} has no config.json")
    from doctor.probes import limits

    try:
        text = limits.read_text(cfg_path, limits.MODEL_JSON_MAX_BYTES)
        config = limits.load_json(text)   # one parse: the depth check\'s
    except limits.Refusal as exc:
        raise EstimateError(f"config.json is refused ({exc.kind} at line {exc.line})") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise EstimateError(f"config.json does not parse: {exc}") from None
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise EstimateError(f"{folder} has no .safetensors files to size the weights from")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for f in files:
        try:
            found, _ = read_safetensors_header(f)
        except (HeaderError, OSError) as exc:
            raise EstimateError(f"{f.name}: {exc}") from None
        tensors.update({t.name: (t.dtype, t.shape) for t in found.values()})
    return config, tensors


def is_prequantized_4bit(config: Mapping[str, Any]) -> bool:
    q = config.get("quantization_config") or {}
    return bool(q.get("load_in_4bit")) or q.get("quant_method") == "bitsandbytes" and not q.get("load_in_8bit")


def estimate(config: Mapping[str, Any], tensors: Mapping[str, tuple[str, tuple[int, ...]]], batch: int, seq: int,
             r: int = 16, load_in_4bit: bool = False) -> Estimate:
    params, linear = header_counts(tensors)
    four = load_in_4bit or is_prequantized_4bit(config)
    try:
        shape = vram.shape_from_config(config, stored_params=params or None, linear_params=linear or None)
    except (KeyError, TypeError, ValueError) as exc:
        raise EstimateError(f"config.json lacks a size the estimate needs: {exc}") from None
    run = vram.estimate(shape, vram.RunSettings(batch=batch, seq=seq, rank=r, load_in_4bit=four,
                                                optimizer=SMOKE_OPTIMIZER, gradient_checkpointing="unsloth"))
    return Estimate(run=run, params=shape.params, load_in_4bit=four)


def gpu_memory_mib(facts: Mapping[str, Any]) -> float | None:
    """Memory of GPU 0 from the environment facts (NVML)."""
    value = facts.get("gpu.0.memory_total_mib")
    return float(value) if value is not None else None


def fits(est: Estimate, memory_mib: float) -> bool:
    """False only when even the band's low end, with the loss chunked smallest, is over."""
    return not vram.certainly_over(est.run, memory_mib)


def describe(est: Estimate, memory_mib: float | None) -> str:
    return vram.describe(est.run, memory_mib)
