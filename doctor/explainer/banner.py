"""What Unsloth's own banners say about the run: GPU, memory, batch size, accumulation.

The model banner (`Tesla T4. Num GPUs = 1. Max memory: 14.741 GB.`) and the trainer banner
(`Batch size per device = 2 | Gradient accumulation steps = 4`) turn generic OOM advice
into numbers for this run.
"""
from __future__ import annotations

from doctor.explainer.lazyre import LazyRE
from doctor.results.explain import LogLine, RunInfo

_VERSION = LazyRE(r"Unsloth:? (\d{4}\.\d+\.\d+):")
_GPU = LazyRE(r"^[\s\\/|]*(.+?)\. Num GPUs = (\d+)\. Max memory: ([0-9.]+) GB")
_BATCH = LazyRE(r"(?i)Batch size per device = (\d+)")
_ACCUM = LazyRE(r"(?i)Gradient accumulation steps = (\d+)")
_BF16 = LazyRE(r"Bfloat16 = (TRUE|FALSE)")

def read_banners(lines: list[LogLine]) -> RunInfo:
    found: dict[str, object] = {}
    for line in lines:
        text = line.text
        if "Unsloth" in text and "unsloth_version" not in found and (m := _VERSION.search(text)):
            found["unsloth_version"] = m.group(1)
        if "Max memory:" in text and "gpu_name" not in found and (m := _GPU.search(text)):
            found.update(gpu_name=m.group(1).strip(), gpu_memory_gb=float(m.group(3)))
        if "atch size per device" in text and (m := _BATCH.search(text)):
            found.update(batch_size=int(m.group(1)), batch_line=line.no)
            if (a := _ACCUM.search(text)):
                found["grad_accum"] = int(a.group(1))
        if "Bfloat16 = " in text and (m := _BF16.search(text)):
            found["bf16"] = m.group(1) == "TRUE"
    return RunInfo(**found)  # type: ignore[arg-type]

def describe(info: RunInfo) -> str | None:
    parts = []
    if info.unsloth_version:
        parts.append(f"Unsloth {info.unsloth_version}")
    if info.gpu_name:
        mem = f" ({info.gpu_memory_gb:g} GB)" if info.gpu_memory_gb else ""
        parts.append(f"{info.gpu_name}{mem}")
    if info.batch_size is not None:
        accum = f" x {info.grad_accum} accumulation steps" if info.grad_accum else ""
        parts.append(f"batch {info.batch_size} per device{accum}")
    return ", ".join(parts) or None
