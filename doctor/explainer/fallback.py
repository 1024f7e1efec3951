"""When no knowledge entry matches: the closest general category, and what to collect next.

This never names a cause. It reads only the exception type, the message's wording and the
packages in the frames, and says which of those it used.
"""
from __future__ import annotations

from doctor.results.explain import ExceptionInfo, ParsedLog, Unmatched

# (category, words in the final message) checked in order
_MESSAGE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cuda-oom", ("out of memory",)),
    ("kernel-launch", ("cuda error", "device-side assert", "illegal memory access",
                       "no kernel image", "cublas_status", "cudnn_status")),
    ("load-size-mismatch", ("size mismatch",)),
    ("bf16-dtype", ("bfloat16", "bf16")),
    ("nan-loss", (" nan", "inf or nan")),
    ("no-gpu", ("torch.cuda.is_available() is false", "no cuda gpus are available",
                "found no nvidia driver")),
    ("dataset-format", ("column", "dataset")),
    ("tokenizer-load", ("tokenizer", "chat_template", "chat template")),
)

# (category, packages in the frames)
_PACKAGE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bnb-cuda-setup", ("bitsandbytes",)),
    ("triton-compile", ("triton",)),
    ("xformers-mismatch", ("xformers",)),
    ("dataset-format", ("datasets", "pyarrow")),
    ("tokenizer-load", ("tokenizers", "jinja2")),
)

_INSTALL_TYPES = ("ImportError", "ModuleNotFoundError")
_DATA_TYPES = ("KeyError", "IndexError", "ValueError", "TypeError")

COLLECT_ALWAYS = (
    "the whole traceback, from the first 'Traceback (most recent call last):' line to the end",
    "the output of `unsloth-doctor scan` on the machine that failed",
    "versions: python, torch (and its CUDA build), unsloth, unsloth_zoo, transformers, trl, "
    "peft, bitsandbytes, triton, and the GPU model",
)

def classify_unmatched(log: ParsedLog) -> Unmatched:
    final = log.final
    collect = list(COLLECT_ALWAYS)
    if final is None:
        collect.insert(0, "no Python traceback was found in this text: run the command through "
                          "`unsloth-doctor run -- python train.py` to capture all of its output")
    elif final.truncated:
        collect.insert(0, "the paste stops before the error line: include the end of the log")
    if log.rank_failures or (final is not None and final.rank is not None):
        collect.append("the log of the first failing rank (torchrun --log-dir, or --tee 3)")
    if log.death is not None and log.death.kind == "killed":
        collect.append("the kernel log around the time it died (`dmesg -T | tail -50` or "
                       "`journalctl -k`): a SIGKILL with no traceback is often the out-of-memory "
                       "killer (host RAM)")
    category, reason = _guess(log, final)
    return Unmatched(category, reason, tuple(collect))

def _guess(log: ParsedLog, final: ExceptionInfo | None) -> tuple[str, str]:
    for err in log.build_errors:
        if err.tool == "msvc":
            return "windows", f"the MSVC compiler failed at line {err.log_line}"
        if err.tool in ("ptxas", "nvcc") or "Python.h" in err.message:
            return "triton-compile", f"{err.tool} failed at line {err.log_line}"
        if err.tool in ("cmake", "make") and "llama" in log.text.lower():
            return "merge-gguf-export", f"{err.tool} failed while building llama.cpp (line {err.log_line})"
    if final is None:
        if log.death is not None:
            return "other", f"the process died ({log.death.kind}, line {log.death.log_line}) without a traceback"
        return "other", "no exception was found"
    name = final.short_type
    message = final.message.lower()
    where = f"the final {final.type or 'error'}" + (f" (line {final.log_line})" if final.log_line else "")
    if final.rank is not None:
        where += f" on rank {final.rank}"
    if name.endswith("OutOfMemoryError"):
        return "cuda-oom", where
    if name in _INSTALL_TYPES:
        return "env", f"{where}: an import failed, which is usually an installation problem"
    in_c10d = any("torch/distributed" in f.file.replace("\\", "/") for f in final.frames)
    if name in ("ChildFailedError", "DistBackendError") or in_c10d \
            or any(w in message for w in ("nccl", "gloo", "process group", "collective")):
        return "ddp-multi-gpu", f"{where}, raised by torch.distributed"
    packages = [f.package for f in final.frames if f.package]
    for category, words in _MESSAGE_HINTS:
        if any(w in message for w in words):
            if category == "dataset-format" and name not in _DATA_TYPES:
                continue
            return category, f"the wording of {where}"
    for category, names in _PACKAGE_HINTS:
        inside = next((p for p in packages if p in names), None)
        if inside and (category != "dataset-format" or name in _DATA_TYPES):
            return category, f"{where} was raised inside {inside}"
    functions = " ".join(f.function for f in final.frames).lower()
    if "_dynamo" in " ".join(f.file for f in final.frames) or "torch_compile" in functions:
        return "torch-compile", f"{where} came from torch.compile (dynamo)"
    if any(w in functions for w in ("save_pretrained_gguf", "save_to_gguf", "save_pretrained_merged")):
        return "merge-gguf-export", f"{where} happened while saving or exporting"
    return "other", f"{where} matches no general category"
