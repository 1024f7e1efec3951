"""LoRA adapters checked from shapes alone: adapter_config.json, the adapter's safetensors
header and, when the base model is a local folder, the base's safetensors headers.

PEFT saves a LoRA pair per adapted module as `base_model.model.<module>.lora_A.weight`
([r, in]) and `.lora_B.weight` ([out, r]); embeddings use lora_embedding_A ([r, rows]) and
lora_embedding_B ([dim, r]); modules_to_save are saved whole as `base_model.model.<module>.weight`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from doctor.findings import Location, Observation

PREFIX = "base_model.model."
_LORA = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?\.weight$|"
                   r"^(?P<emodule>.+)\.(?P<epart>lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?$")


@dataclass(frozen=True)
class LoraTensor:
    module: str        # the adapted module's path in the base model: model.layers.0.self_attn.q_proj
    part: str          # lora_A, lora_B, lora_embedding_A, lora_embedding_B
    name: str          # the tensor's name in the adapter file
    shape: tuple[int, ...]


def lora_tensors(shapes: dict[str, tuple[int, ...]]) -> list[LoraTensor]:
    out = []
    for name, shape in shapes.items():
        m = _LORA.match(name)
        if m is None:
            continue
        module = (m.group("module") or m.group("emodule")).removeprefix(PREFIX)
        out.append(LoraTensor(module, m.group("part") or m.group("epart"), name, shape))
    return out


def expected_rank(config: dict[str, Any], module: str) -> int | None:
    """r for this module: rank_pattern overrides r for modules whose name ends with a key."""
    for key, rank in (config.get("rank_pattern") or {}).items():
        if isinstance(rank, int) and (module == key or module.endswith("." + key)):
            return rank
    r = config.get("r")
    return r if isinstance(r, int) and not isinstance(r, bool) else None


def _rank_axis(part: str) -> int:
    return 0 if part in ("lora_A", "lora_embedding_A") else 1


def rank_mismatches(config: dict[str, Any], shapes: dict[str, tuple[int, ...]], where: Location) -> list[Observation]:
    """Every LoRA tensor's rank axis must equal r (lora_A: [r, in], lora_B: [out, r])."""
    out = []
    for t in lora_tensors(shapes):
        r = expected_rank(config, t.module)
        axis = _rank_axis(t.part)
        if r is None or len(t.shape) < 2:
            continue
        if t.shape[axis] != r:
            out.append(Observation("MODEL-LORA-RANK-MISMATCH", where,
                                   {"tensor": t.name, "shape": shape_text(t.shape), "r": r,
                                    "expected": "[r, in]" if axis == 0 else "[out, r]"}))
    return first_of(out)


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def first_of(found: list[Observation]) -> list[Observation]:
    """One observation for a whole adapter: the first tensor, and how many others share the
    problem (an adapter for another base mismatches on every layer: hundreds of tensors)."""
    if not found:
        return []
    first = found[0]
    return [Observation(first.entry_id, first.location, {**first.values, "count": len(found)})]


def local_base(config: dict[str, Any], adapter_folder: Path) -> Path | None:
    """base_model_name_or_path when it names a local folder (as given, or beside the adapter)."""
    name = config.get("base_model_name_or_path")
    if not isinstance(name, str) or not name or "\0" in name:
        return None
    for candidate in (Path(name).expanduser(), adapter_folder / name):
        try:
            if candidate.is_dir() and (candidate / "config.json").exists():
                return candidate
        except OSError:
            continue
    return None


def _base_weight(base: dict[str, tuple[int, ...]], module: str) -> tuple[str, tuple[int, ...]] | None:
    """The base tensor an adapter module sits on; a base saved without the task head's
    prefix (AutoModel, not ...ForCausalLM) names it without the leading `model.`."""
    for name in (module + ".weight", module.removeprefix("model.") + ".weight", "model." + module + ".weight"):
        if name in base:
            return name, base[name]
    return None


def base_mismatches(shapes: dict[str, tuple[int, ...]], base: dict[str, tuple[int, ...]], base_name: str,
                    modules_to_save: list[str], locate: Callable[[str], Location]) -> list[Observation]:
    """Each LoRA pair's in/out against the base weight's [out, in]; saved whole modules
    (modules_to_save) against the base's shape, where more rows means added tokens."""
    out: list[Observation] = []
    absent: list[str] = []
    matched = 0
    for t in lora_tensors(shapes):
        found = _base_weight(base, t.module)
        if found is None:
            if t.module not in absent:
                absent.append(t.module)
            continue
        matched += 1
        if len(found[1]) < 2 or len(t.shape) < 2:
            continue
        base_tensor, base_shape = found
        rows, cols = base_shape[0], base_shape[1]
        # lora_A [r, in] reads the input side, lora_B [out, r] the output side;
        # an embedding [rows, dim] is A: [r, rows], B: [dim, r].
        want = {"lora_A": (1, cols), "lora_B": (0, rows), "lora_embedding_A": (1, rows), "lora_embedding_B": (0, cols)}[t.part]
        if t.shape[want[0]] != want[1]:
            out.append(Observation("MODEL-ADAPTER-BASE-MISMATCH", locate(t.name),
                                   {"tensor": t.name, "shape": shape_text(t.shape), "base_tensor": base_tensor,
                                    "base_shape": shape_text(base_shape), "base": base_name}))
    grown: list[Observation] = []
    saved = {name.removeprefix(PREFIX).removesuffix(".weight"): shape for name, shape in shapes.items()
             if name.endswith(".weight") and _LORA.match(name) is None}
    for module, shape in saved.items():
        if module.rsplit(".", 1)[-1] not in modules_to_save or len(shape) < 2:
            continue
        found = _base_weight(base, module)
        if found is None or len(found[1]) < 2:
            continue
        base_tensor, base_shape = found
        if shape[0] > base_shape[0] and shape[1:] == base_shape[1:]:
            grown.append(Observation("MODEL-ADAPTER-EMBEDDINGS-GROWN", locate(PREFIX + module + ".weight"),
                                   {"module": module, "rows": shape[0], "base_rows": base_shape[0], "base": base_name}))
        elif shape != base_shape:
            out.append(Observation("MODEL-ADAPTER-BASE-MISMATCH", locate(PREFIX + module + ".weight"),
                                   {"tensor": PREFIX + module + ".weight", "shape": shape_text(shape),
                                    "base_tensor": base_tensor, "base_shape": shape_text(base_shape), "base": base_name}))
    # Some modules found and others not: the adapter has layers the base lacks (a deeper model).
    # None found is a naming this check does not know (a vision model's language_model prefix).
    missing = [Observation("MODEL-ADAPTER-MODULE-MISSING", locate(PREFIX + absent[0]),
                           {"module": absent[0], "count": len(absent), "base": base_name})] if absent and matched else []
    return first_of(out) + missing + grown
