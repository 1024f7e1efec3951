"""What a training script asks of several GPUs, read with `ast` (never run).

Unsloth's multi-GPU support is data parallel: torchrun / accelerate start one process per GPU
and each loads one whole model (unsloth/models/loader.py:1309-1315). Against that:
- a placement strategy (device_map="auto" / "balanced" / "balanced_low_0" / "sequential") is
  replaced under a launcher by the rank's own card: the model is not sharded, so it must fit on
  one GPU;
- a fixed device ("cuda:0", 0, {"": 0}) is left alone: every rank loads onto that one card;
- a dict that spreads layers over several devices is a model-parallel split, which DDP refuses
  (accelerate: "You can't train a model that has been loaded with `device_map='auto'` in any
  distributed mode");
- torch.nn.DataParallel is single-process multi-GPU, which Unsloth does not support.
"""
from __future__ import annotations

import ast
from typing import Any

from doctor.findings import Observation
from doctor.probes import pep701
from doctor.probes.script import Source, read_source
from doctor.probes.script import _name   # the script probe's dotted-name reader, shared

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _fixed_device(value: Any) -> bool:
    """A device that names one card: 0, "cuda:0", "0" (a bare "cuda" gets the rank's index)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and (value.isdigit() or value.startswith(("cuda:", "xpu:", "npu:")))


def _device_map_observation(src: Source, call: ast.Call, node: ast.expr) -> Observation | None:
    where = src.where(node.lineno, node.col_offset)
    func = _name(call.func).rsplit(".", 2)
    call_name = ".".join(func[-2:]) if len(func) > 1 else func[0]
    if isinstance(node, ast.Dict):
        known = [_literal(v) for v in node.values]
        if not known or not all(ok for ok, _ in known):
            return None     # computed per rank, e.g. {"": local_rank}: the documented pattern
        devices = sorted({str(v) for _, v in known})
        if len(devices) > 1:
            return Observation("DIST-DEVICE-MAP-SPLIT", where, {"call": call_name, "devices": ", ".join(devices)})
        if _fixed_device(known[0][1]):
            return Observation("DIST-DEVICE-MAP-FIXED", where, {"call": call_name, "device_map": ast.unparse(node)})
        return None
    ok, value = _literal(node)
    if not ok:
        return None
    if value in STRATEGIES:
        return Observation("DIST-DEVICE-MAP-STRATEGY", where, {"call": call_name, "device_map": value})
    if _fixed_device(value):
        return Observation("DIST-DEVICE-MAP-FIXED", where, {"call": call_name, "device_map": repr(value)})
    return None


def _find_unused_true(src: Source, tree: ast.AST) -> list[Observation]:
    """ddp_find_unused_parameters=True set by hand in a LoRA script with gradient checkpointing:
    Unsloth picks False itself only when it is left None (unsloth/models/_ddp_defaults.py:224-245),
    and True under reentrant checkpointing fails the first backward ("marked as ready twice")."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    peft = [c for c in calls if _name(c.func).endswith("get_peft_model")]
    if not peft:
        return []
    checkpointing = next((k.value for c in peft for k in c.keywords if k.arg == "use_gradient_checkpointing"), None)
    if checkpointing is not None and _literal(checkpointing) == (True, False):
        return []   # checkpointing off: True is merely slower (get_peft_model defaults to "unsloth")
    out = []
    for call in calls:
        for k in call.keywords:
            if k.arg == "ddp_find_unused_parameters" and _literal(k.value) == (True, True):
                out.append(Observation("DIST-FIND-UNUSED-TRUE", src.where(k.value.lineno, k.value.col_offset),
                                       {"call": _name(call.func)}))
    return out


def scan_source(src: Source) -> list[Observation]:
    try:
        tree = pep701.parse(src.text, filename=src.path)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return []   # the script probe reports what does not parse (or nests too deep) at its line
    out: list[Observation] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name.endswith("DataParallel") and not name.endswith("DistributedDataParallel"):
            out.append(Observation("DIST-DATAPARALLEL", src.where(node.lineno, node.col_offset), {"call": name}))
        if name.endswith("from_pretrained"):
            device_map = next((k.value for k in node.keywords if k.arg == "device_map"), None)
            if device_map is not None:
                obs = _device_map_observation(src, node, device_map)
                if obs:
                    out.append(obs)
    out += _find_unused_true(src, tree)
    return sorted(out, key=lambda o: (o.location.line or 0) if o.location else 0)


def scan_script_paths(paths: list[str]) -> list[Observation]:
    out: list[Observation] = []
    for path in paths:
        try:
            out += scan_source(read_source(path))
        except OSError:
            continue   # the script probe reports unreadable files
    return out
