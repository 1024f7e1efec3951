"""CUDA out-of-memory messages: their numbers, what the process was doing, concrete advice.

Two formats are read. PyTorch >= 2.1:
  "Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 14.75 GiB of which 1.20 GiB is
  free. ... Of the allocated memory 12.30 GiB is allocated by PyTorch, and 512.00 MiB is
  reserved by PyTorch but unallocated."
and older:
  "Tried to allocate 20.00 MiB (GPU 0; 14.76 GiB total capacity; 13.52 GiB already allocated;
  3.75 MiB free; 13.71 GiB reserved in total by PyTorch)"
"""
from __future__ import annotations

from typing import Any

from doctor.explainer.lazyre import LazyRE
from doctor.results.explain import ExceptionInfo, LogLine, OomInfo

_SIZE = r"([0-9]+(?:\.[0-9]+)?) ?(bytes|[KMGT]i?B|B)"
_FIELDS: tuple[tuple[str, LazyRE], ...] = tuple((name, LazyRE(p)) for name, p in (
    ("tried", r"Tried to allocate " + _SIZE),
    ("total", r"total capac\w* of " + _SIZE),       # torch 2.1 printed "capacty"
    ("free", r"of which " + _SIZE + r" is free"),
    ("process_in_use", r"(?:Process \d+|this process) has " + _SIZE + r" memory in use"),
    ("allocated", r"Of the allocated memory " + _SIZE + r" is allocated by PyTorch"),
    ("reserved_unallocated", _SIZE + r" is reserved by PyTorch but unallocated"),
    # the older format
    ("total", _SIZE + r" total capacity"),
    ("allocated", _SIZE + r" already allocated"),
    ("free", _SIZE + r" free\b"),
    ("reserved_total", _SIZE + r" reserved in total by PyTorch"),
))
_GPU = LazyRE(r"GPU (\d+)")
_UNITS = {"bytes": 1, "B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4,
          "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4}
_GIB = 1024 ** 3

# Function names that say what the process was doing, checked from the innermost frame out.
_CONTEXTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("saving", ("save_pretrained", "save_pretrained_merged", "save_pretrained_gguf", "push_to_hub",
                "merge_and_unload", "unsloth_save_model", "merge_lora", "_merge_lora")),
    ("generation", ("generate", "_sample", "sample", "greedy_search", "beam_search",
                    "fast_generate", "_fast_generate")),
    ("evaluation", ("evaluate", "evaluation_loop", "prediction_step", "predict")),
    ("loading", ("from_pretrained", "_load_pretrained_model", "load_state_dict", "load_model",
                 "get_peft_model", "to")),
    ("training", ("train", "training_step", "_inner_training_loop", "_fast_inner_training_loop",
                  "backward", "compute_loss", "inner_training_loop")),
)


def parse_size(number: str, unit: str) -> float:
    return float(number) * _UNITS.get(unit, 1)


def find_oom(lines: list[LogLine], final: ExceptionInfo | None) -> OomInfo | None:
    """The OOM message of the final exception, else the last OOM line in the log."""
    text, line_no = None, None
    if final is not None and "out of memory" in final.message.lower():
        text, line_no = final.message.replace("\n", " "), final.log_line
    else:
        for i in range(len(lines) - 1, -1, -1):
            if "out of memory" in lines[i].text.lower():
                # a pasted message is often wrapped: read a few following lines too
                text = " ".join(line.text for line in lines[i:i + 4])
                line_no = lines[i].no
                break
    if text is None or line_no is None:
        return None
    info = parse_oom_message(text, line_no)
    if final is not None:
        info = info._replace(context=context_from_frames(final))
    return info


def parse_oom_message(text: str, line_no: int) -> OomInfo:
    values: dict[str, float] = {}
    for name, pattern in _FIELDS:
        if name in values:
            continue
        m = pattern.search(text)
        if m:
            values[name] = parse_size(m.group(1), m.group(2))
    gpu = _GPU.search(text)
    return OomInfo(log_line=line_no, gpu=int(gpu.group(1)) if gpu else None, **values)


def context_from_frames(exc: ExceptionInfo) -> str | None:
    names = [f.function.rsplit(".", 1)[-1] for f in reversed(exc.frames)]
    for name in names:
        for context, functions in _CONTEXTS:
            if name in functions:
                return context
    return None


def gib(value: float) -> str:
    if value >= _GIB / 10:
        return f"{value / _GIB:.2f} GiB"
    return f"{value / 1024 ** 2:.0f} MiB"


def _batch_step(run: Any) -> tuple[str, str]:
    batch = getattr(run, "batch_size", None)
    if not batch:
        return ("per_device_train_batch_size", "Lower per_device_train_batch_size (1-2) and raise "
                "gradient_accumulation_steps to keep the effective batch size.")
    where = f" (line {run.batch_line})" if run.batch_line else ""
    if batch == 1:
        return ("=per_device_train_batch_size",
                f"The batch size per device is already 1{where}: the room has to come from "
                "max_seq_length, 4-bit loading or gradient checkpointing.")
    accum = run.grad_accum or 1
    smaller = max(1, batch // 2)
    more = -(-batch * accum // smaller)   # ceiling: keep at least the same effective batch
    return ("=per_device_train_batch_size",
            f"The batch size per device is {batch} in this run{where}: try "
            f"per_device_train_batch_size={smaller} with gradient_accumulation_steps={more}, "
            f"which keeps the effective batch of {batch * accum}.")


def non_pytorch(info: OomInfo) -> float | None:
    """Memory the process holds that PyTorch's caching allocator does not account for."""
    if info.process_in_use is None or info.allocated is None:
        return None
    return info.process_in_use - info.allocated - (info.reserved_unallocated or 0.0)


def summary(info: OomInfo) -> str | None:
    """One sentence with the numbers: how much was asked for, how much was there."""
    if info.tried is None:
        return None
    parts = [f"The {info.context + ' ' if info.context else ''}step asked for {gib(info.tried)} more"]
    if info.free is not None and info.total is not None:
        parts.append(f"while {gib(info.free)} of the GPU's {gib(info.total)} was free")
    elif info.total is not None:
        parts.append(f"on a GPU with {gib(info.total)}")
    held = info.allocated
    if held is not None:
        parts.append(f"and PyTorch already held {gib(held)}")
        if info.total is not None:
            need = held + info.tried
            parts.append(f"(it needs at least {gib(need)}, "
                         f"{need / info.total:.0%} of the card)" if need > info.total * 0.9
                         else f"(at least {gib(need)} in all)")
    return " ".join(parts) + "."


def advice(info: OomInfo, run: Any = None) -> list[str]:
    """Concrete steps, most effective first for what the process was doing."""
    return [text for _, text in keyed_advice(info, run)]


def keyed_advice(info: OomInfo, run: Any = None) -> list[tuple[str, str]]:
    """(key, step): the key is the setting a step is about, so a caller can leave out steps a
    knowledge entry's own fixes already give; a key starting with '=' carries this log's
    numbers and replaces the entry's generic step. `run` is what Unsloth's banners said."""
    steps: list[tuple[str, str]] = []
    if info.fragmented:
        spare = info.reserved_unallocated
        if spare is None and info.reserved_total is not None and info.allocated is not None:
            spare = info.reserved_total - info.allocated
        steps.append(("=expandable_segments",
            f"{gib(spare or 0)} is reserved by PyTorch but unallocated (fragmentation): set "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True in the environment before Python starts."))
    if info.context == "generation":
        steps += [("max_new_tokens", "Lower max_new_tokens and the number of sequences generated at "
                   "once (num_return_sequences, batch of prompts)."),
                  ("for_inference", "Call FastLanguageModel.for_inference(model) before generate."),
                  ("empty_cache", "Free the trainer first (del trainer; gc.collect(); "
                   "torch.cuda.empty_cache()) when generating right after training.")]
    elif info.context == "saving":
        steps += [("empty_cache", "Merging to 16-bit needs the full 16-bit weights: free the trainer "
                   "and optimizer first (del trainer; gc.collect(); torch.cuda.empty_cache())."),
                  ("maximum_memory_usage", "Save only the LoRA adapter (model.save_pretrained(dir)) and "
                   "merge later on a machine with more memory, or lower maximum_memory_usage in "
                   "save_pretrained_merged.")]
    elif info.context == "loading":
        steps += [("load_in_4bit", "Load in 4-bit (load_in_4bit=True) or pick a smaller model for this GPU."),
                  ("nvidia-smi", "Make sure no other process holds GPU memory (nvidia-smi).")]
    else:
        if info.context == "evaluation":
            steps.append(("per_device_eval_batch_size",
                          "Lower per_device_eval_batch_size and set eval_accumulation_steps."))
        steps.append(_batch_step(run))
        steps += [
                  ("max_seq_length", "Lower max_seq_length: memory grows with the tokens in each batch."),
                  ("use_gradient_checkpointing", 'Keep use_gradient_checkpointing="unsloth" '
                   "(offloads activations to host RAM)."),
                  ("load_in_4bit", "Load the model in 4-bit (load_in_4bit=True) if it is in 16-bit.")]
    outside = non_pytorch(info)
    if outside is not None and outside > 2 * _GIB:
        steps.append(("=outside", f"This process uses {gib(outside)} outside PyTorch's allocator "
                      "(CUDA context, other libraries such as vLLM, another model)."))
    return steps
