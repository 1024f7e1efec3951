"""The user's run for the strategy verdict: fine-tuning method and model size, read without loading.

- A training script (ast, never run): `FastLanguageModel.from_pretrained(model_name=...,
  load_in_4bit=..., full_finetuning=...)` and whether `get_peft_model` is called. Unsloth's
  loaders default to load_in_4bit=True (unsloth/models/loader.py, FastLanguageModel.from_pretrained).
- A training config (`--config`: axolotl, LLaMA-Factory, an SFTConfig dump): its model name,
  adapter or finetuning_type and quantisation, read as the config probe reads them.
- A model folder (`--model`): the parameter count summed from its safetensors headers.
- A model name: the size it carries ("Llama-3.1-8B", "Qwen2.5-0.5B", "Mixtral-8x7B") and
  "bnb-4bit" / "-4bit" for pre-quantised uploads.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from doctor.distributed.strategy import Run
from doctor.probes import pep701, runmemory, vram
from doctor.probes.script import _name, read_source
from doctor.probes.settings.extract import settings_calls
from doctor.probes.settings.memory import supervised_run

def params_from_name(name: str) -> float | None:
    """Billions of parameters named in a model id: "unsloth/Meta-Llama-3.1-8B-bnb-4bit" -> 8.0
    (the VRAM estimate's reading, doctor/probes/vram.py)."""
    found = vram.params_from_name(name)
    return found / 1e9 if found else None


def params_from_folder(folder: str) -> float | None:
    """Billions of parameters declared by a model folder's safetensors headers (None without any)."""
    from doctor.probes.model import HeaderError, read_safetensors_header

    total = 0
    files = sorted(Path(folder).glob("*.safetensors"))
    for path in files:
        try:
            tensors, _ = read_safetensors_header(path)
        except (OSError, HeaderError):
            return None
        # 4-bit bitsandbytes weights are packed two per byte into uint8 tensors
        total += sum(math.prod(t.shape) * (2 if t.dtype == "U8" else 1) for t in tensors.values())
    return round(total / 1e9, 3) if files and total else None


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _loader_calls(tree: ast.AST) -> list[tuple[Any, dict[str, ast.expr]]]:
    """(model name, keywords) of every from_pretrained call that names a model, in source order."""
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func).endswith("from_pretrained")),
                   key=lambda n: (n.lineno, n.col_offset))
    out = []
    for call in calls:
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        name = _literal(kw.get("model_name") or (call.args[0] if call.args else None))
        if isinstance(name, str):
            out.append((name, kw))
    return out


def run_from_script(path: str) -> Run:
    """Method and size from a training script's loader call and get_peft_model use.

    The loader call is the first that names a model with a size ("...-8B..."), else the first:
    notebooks load their saved adapter again at the end ("lora_model"), which names no size."""
    try:
        tree = pep701.parse(read_source(path).text)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return Run()
    loaders = _loader_calls(tree)
    if not loaders:
        return Run()
    name, kw = next((c for c in loaders if params_from_name(c[0])), loaders[0])
    peft = any(_name(n.func).endswith("get_peft_model") for n in ast.walk(tree) if isinstance(n, ast.Call))
    four_bit = _literal(kw["load_in_4bit"]) if "load_in_4bit" in kw else True   # the loaders' default
    method = None
    if _literal(kw.get("full_finetuning")) is True:
        method = "full"
    elif peft:
        method = "qlora" if four_bit is True or "4bit" in name.lower() else "lora"
    return Run(method, params_from_name(name), f"{path} ({name})", _state_gib(supervised_run(settings_calls(tree), name)))


def _state_gib(settings: dict[str, Any]) -> float | None:
    """Weights and training state as the VRAM estimate sizes the run (bits, rank, optimizer),
    so the strategy verdict and the RUN-VRAM-ESTIMATE note of one run agree."""
    found = runmemory.estimate_settings(settings) if settings else None
    return round(found[1].counted_mib / 1024, 1) if found else None


def run_from_config(path: str) -> Run:
    """Method and size from a training config; Run() for a file that is not one or does not parse."""
    from doctor.findings import Observation
    from doctor.probes.config import read_config, run_settings

    cfg = read_config(path)
    if isinstance(cfg, Observation) or not cfg.kind.vocabulary:
        return Run()
    values = {name: s.value for name, s in cfg.settings.items()}
    name = values.get("model_name")
    settings = vram.run_from_settings(values)
    if settings.full_finetuning:
        method = "full"
    else:
        quantised = settings.load_in_4bit or (isinstance(name, str) and "4bit" in name.lower())
        method = "qlora" if quantised else "lora"
    params = params_from_name(name) if isinstance(name, str) else None
    return Run(method, params, f"{path} ({name})" if isinstance(name, str) else path, _state_gib(run_settings(cfg)))


def run_for(scripts: list[str], models: list[str], model_name: str | None = None,
            method: str | None = None, configs: list[str] | None = None) -> Run:
    """The run the verdict is for: a script's loader call (else a training config's settings),
    refined by a model folder's real size."""
    runs = [*map(run_from_script, scripts), *map(run_from_config, configs or [])]
    run = next((r for r in runs if r.method or r.params_b), Run())
    params, source = run.params_b, run.source
    for folder in models:
        counted = params_from_folder(folder) if Path(folder).is_dir() else None
        if counted:
            params, source = counted, f"{folder} (safetensors headers)"
            break
    if model_name and params is None:
        params, source = params_from_name(model_name), model_name
    # the estimate sized the run from its name: a counted size or another method makes it stale
    state = run.state_gib if params == run.params_b and method in (None, run.method) else None
    return Run(method or run.method, params, source, state)
