"""The environment at a glance, for a bug report: what Unsloth's maintainers ask for first
(OS, Python, torch and its CUDA build, the GPUs and driver, the training stack's versions),
read from a report's facts. The full list of facts follows the summary in the reports."""
from __future__ import annotations

from typing import Any, Mapping

from doctor.version import __version__

# the packages whose versions decide whether Unsloth works, in the order people read them
STACK = ("unsloth", "unsloth_zoo", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "xformers",
         "triton", "datasets", "tokenizers", "huggingface_hub", "torchao", "vllm")
# facts that are plot data or a long list, not a line of a table
BULKY = ("dataset.tokens.histogram", "dataset.schema_counts", "dataset.problem_counts")


def _gpus(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for i in range(int(facts.get("gpu.count") or 0)):
        name = facts.get(f"gpu.{i}.name", "?")
        memory = facts.get(f"gpu.{i}.memory_total_mib")
        size = f", {float(memory) / 1024:.0f} GiB" if memory else ""
        rows.append((f"GPU {i}", f"{name} (capability {facts.get(f'gpu.{i}.capability', '?')}{size})"))
    if not rows:
        rows.append(("GPU", f"none visible ({facts['nvml.error']})" if facts.get("nvml.error") else "none visible"))
    return rows


def summary_rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, value) lines; a value the scan did not see is left out rather than guessed."""
    rows: list[tuple[str, str]] = [("unsloth-doctor", __version__)]
    if facts.get("os.system"):
        wsl = " (WSL)" if facts.get("os.wsl") else ""
        rows.append(("OS", f"{facts['os.system']} {facts.get('os.release', '')} {facts.get('os.machine', '')}".strip() + wsl))
    if facts.get("python.version"):
        kind = "conda" if facts.get("python.conda") else "venv" if facts.get("python.venv") else ""
        rows.append(("Python", f"{facts['python.version']} {facts.get('python.implementation', '')}".strip()
                     + (f" ({kind})" if kind else "")))
    torch = facts.get("torch.version") or facts.get("pkg.torch.version")
    if torch:
        build = facts.get("torch.cuda_build")
        hip = facts.get("torch.hip_build")
        rows.append(("torch", f"{torch}" + (f" (CUDA {build})" if build else f" (ROCm {hip})" if hip else " (CPU build)")))
    if "nvml.available" in facts or "gpu.count" in facts:
        rows += _gpus(facts)
    if facts.get("nvml.driver_version"):
        cuda = facts.get("nvml.driver_cuda")
        rows.append(("NVIDIA driver", f"{facts['nvml.driver_version']}" + (f" (CUDA {cuda})" if cuda else "")))
    for name in STACK:
        version = facts.get(f"pkg.{name}.version")
        if version:
            rows.append((name, str(version)))
    return rows


def fact_lines(facts: Mapping[str, Any]) -> list[str]:
    """Every fact as `name = value`, sorted, plot data and long tables left out."""
    return [f"{k} = {v}" for k, v in sorted(facts.items()) if k not in BULKY]
