"""A VRAM estimate for one LoRA training step on a local model folder, before we try it.

Read from config.json and the safetensors headers only (no weights are loaded). The formula,
in bytes, for batch b, sequence length s, LoRA rank r:

  weights      = stored tensor bytes, with 32-bit floats counted at 2 bytes (Unsloth loads
                 16-bit) and, when loading in 4-bit, every 2-D projection weight at 0.5625
                 bytes/param (nf4 packs 2 params a byte, plus one absmax per 64-block: 4/64)
  lora         = 16 bytes × r × Σ(in + out) over the 7 projections × layers
                 (fp32 param 4 + grad 4 + AdamW moments 8)
  activations  = layers × b·s·h·2                         (checkpointed layer inputs, 16-bit)
               + b·s·(10·h + 4·i)·2                       (one layer recomputed in backward)
               + b·s·V·4                                  (fp32 logits for the loss)
  overhead     = 1024 MiB                                 (CUDA context, cuBLAS workspace, allocator)

It errs high: Unsloth's gradient checkpointing offloads layer inputs to the CPU and its
chunked cross-entropy never holds all logits at once. A "fits" answer needs the total to be
under 90% of the GPU's memory, leaving room for fragmentation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from doctor.probes.model import HeaderError, read_safetensors_header

MIB = 2**20
OVERHEAD_MIB = 1024
HEADROOM = 0.90
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class EstimateError(Exception):
    """The folder cannot be estimated (no config.json, unreadable headers...)."""


@dataclass(frozen=True)
class Estimate:
    weights_mib: float
    lora_mib: float
    activations_mib: float
    overhead_mib: float
    params: int
    lora_params: int
    load_in_4bit: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_mib(self) -> float:
        return self.weights_mib + self.lora_mib + self.activations_mib + self.overhead_mib

    def as_facts(self) -> dict[str, Any]:
        return {
            "smoke.estimate.weights_mib": round(self.weights_mib, 1),
            "smoke.estimate.lora_mib": round(self.lora_mib, 1),
            "smoke.estimate.activations_mib": round(self.activations_mib, 1),
            "smoke.estimate.overhead_mib": self.overhead_mib,
            "smoke.estimate.total_mib": round(self.total_mib, 1),
            "smoke.estimate.params": self.params,
            "smoke.estimate.load_in_4bit": self.load_in_4bit,
        }


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    # Multimodal configs keep the language model's sizes under text_config.
    return config.get("text_config") or config


def lora_params(config: Mapping[str, Any], r: int) -> int:
    c = _text_config(config)
    h = int(c["hidden_size"])
    i = int(c.get("intermediate_size") or 4 * h)
    heads = int(c.get("num_attention_heads") or 1)
    kv = int(c.get("num_key_value_heads") or heads)
    head_dim = int(c.get("head_dim") or h // heads)
    q_out, kv_out = heads * head_dim, kv * head_dim
    per_layer = (h + q_out) + 2 * (h + kv_out) + (q_out + h) + 2 * (h + i) + (i + h)
    return r * per_layer * int(c["num_hidden_layers"])


def activation_bytes(config: Mapping[str, Any], batch: int, seq: int) -> int:
    c = _text_config(config)
    h = int(c["hidden_size"])
    i = int(c.get("intermediate_size") or 4 * h)
    vocab = int(c.get("vocab_size") or 32000)
    layers = int(c["num_hidden_layers"])
    tokens = batch * seq
    return layers * tokens * h * 2 + tokens * (10 * h + 4 * i) * 2 + tokens * vocab * 4


def weight_bytes(tensors: Mapping[str, tuple[str, tuple[int, ...]]], load_in_4bit: bool) -> tuple[int, int]:
    """(bytes on the GPU, parameter count) for the stored tensors."""
    total, params = 0, 0
    for name, (dtype, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= int(d)
        params += n
        size = DTYPE_BYTES.get(dtype.upper(), 2)
        if load_in_4bit and len(shape) == 2 and any(p in name for p in PROJECTIONS) and size >= 2:
            total += int(n * 0.5625)
        else:
            total += n * min(size, 2) if dtype.upper() in ("F32", "F64") else n * size
    return total, params


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
    try:
        wbytes, params = weight_bytes(tensors, load_in_4bit and not is_prequantized_4bit(config))
        lp = lora_params(config, r)
        act = activation_bytes(config, batch, seq)
    except (KeyError, TypeError, ValueError) as exc:
        raise EstimateError(f"config.json lacks a size the estimate needs: {exc}") from None
    return Estimate(weights_mib=wbytes / MIB, lora_mib=16 * lp / MIB, activations_mib=act / MIB,
                    overhead_mib=OVERHEAD_MIB, params=params, lora_params=lp,
                    load_in_4bit=load_in_4bit or is_prequantized_4bit(config))


def gpu_memory_mib(facts: Mapping[str, Any]) -> float | None:
    """Memory of GPU 0 from the environment facts (NVML)."""
    value = facts.get("gpu.0.memory_total_mib")
    return float(value) if value is not None else None


def fits(est: Estimate, memory_mib: float) -> bool:
    return est.total_mib <= HEADROOM * memory_mib


def _mib(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def describe(est: Estimate, memory_mib: float | None) -> str:
    parts = (f"weights {_mib(est.weights_mib)} + LoRA {_mib(est.lora_mib)} + activations "
             f"{_mib(est.activations_mib)} + overhead {_mib(est.overhead_mib)} = {_mib(est.total_mib)} MiB")
    if memory_mib is None:
        return parts + " (no GPU memory known)"
    return parts + f" vs {HEADROOM:.0%} of {memory_mib:,.0f} MiB = {HEADROOM * memory_mib:,.0f} MiB"
