"""`scan --model DIR --deep`: load the folder for real in a child process with a timeout
(doctor/probes/model_deep_child.py) and report what transformers (PEFT for an adapter) says
about its keys, exactly; then every safetensors tensor is streamed for NaN and Inf.

It is not started where loading would run code or cannot work on a CPU: an auto_map
(trust_remote_code), a pickle that imports more than tensors, bitsandbytes-quantized weights,
an adapter whose base is not a local folder. The area line says why.
"""
from __future__ import annotations

import ast
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Evidence, Location, Observation
from doctor.probes.base import ProbeResult
from doctor.probes.deep import run_child, split_output

SHOWN = 20          # key names quoted in a message; the evidence has them all
TAIL = 6


@dataclass(frozen=True)
class DeepRequest:
    folder: str
    adapter: bool
    base: str | None
    kind: str                      # model.kind of the static scan
    skip_reason: str | None        # why it is not loaded (None: load it)


def request(folder: str, facts: Any, observations: list[Observation], base: str | None) -> DeepRequest:
    """What the static scan allows: the deep load runs no code and needs no GPU."""
    kind = str(facts.get("model.kind") or "unknown")
    ids = {o.entry_id for o in observations}
    adapter = kind == "lora-adapter"
    base = base or (facts.get("model.base") if facts.get("model.base_local") else None)
    reason = None
    if kind in ("unknown", "gguf"):
        reason = "no transformers model or adapter here"
    elif "MODEL-PICKLE-CODE" in ids or "MODEL-PICKLE-UNCHECKED" in ids:
        reason = "a pickle file would run code (or could not be checked): it is never loaded"
    elif ids & {"MODEL-REMOTE-CODE", "MODEL-REMOTE-CODE-MISSING"}:
        reason = "loading needs trust_remote_code=True, which would run the folder's Python files"
    elif kind in ("merged-4bit", "merged-8bit", "merged-quantized"):
        reason = "quantized weights load only with their GPU kernels, not on the CPU"
    elif adapter and not base:
        reason = "the adapter's base is not a local folder (pass --base DIR)"
    return DeepRequest(folder, adapter, base, kind, reason)


def child_source() -> str:
    """deep_child.py's step reporting (its MARK, emit and step: one marker protocol for both
    children, read by deep.split_output) followed by model_deep_child.py."""
    shared = Path(__file__).with_name("deep_child.py").read_text(encoding="utf-8")
    wanted = [node for node in ast.parse(shared).body
              if (isinstance(node, ast.FunctionDef) and node.name in ("emit", "step"))
              or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MARK" for t in node.targets))]
    parts = ["import json, sys, time, traceback, warnings"] + [ast.get_source_segment(shared, n) or "" for n in wanted]
    return "\n\n".join(parts) + "\n\n" + Path(__file__).with_name("model_deep_child.py").read_text(encoding="utf-8")


def run_model_deep(req: DeepRequest, timeout_s: float, python: str | None = None) -> ProbeResult:
    fc = FactCollector(f"model --deep:{req.folder}")
    if req.skip_reason:
        fc.set("model.deep.ran", False)
        return ProbeResult(facts=fc.freeze(), areas=[AreaStatus("model", f"Deep load {req.folder}",
                                                                f"not loaded: {req.skip_reason}", path=req.folder)])
    source = child_source()
    env = {**os.environ, "UNSLOTH_DOCTOR_MODEL_DEEP": json.dumps(
        {"folder": str(Path(req.folder).resolve()), "adapter": req.adapter,
         "base": str(Path(req.base).resolve()) if req.base else None})}
    run = run_child(python or sys.executable, source, timeout_s, env)
    records, lines = split_output(run.output)
    obs = interpret(req, records, lines, run.timed_out, run.returncode, timeout_s)
    fc.set("model.deep.ran", True)
    fc.set("model.deep.timed_out", run.timed_out)
    loaded = next((r for r in records if r.get("step") in ("load_model", "load_adapter") and r.get("status") == "ok"), None)
    fc.set("model.deep.loaded", loaded is not None)
    scanned = next((r for r in records if r.get("step") == "nonfinite" and r.get("status") == "ok"), None)
    detail = "loaded" if loaded else "did not load"
    if loaded:
        data = loaded.get("data") or {}
        detail += (f" with transformers {data.get('transformers')}: {len(data.get('missing', []))} missing, "
                   f"{len(data.get('unexpected', []))} unexpected, {len(data.get('mismatched', []))} mismatched keys")
    if scanned:
        detail += f"; {scanned['data'].get('checked')} float tensors streamed for NaN/Inf"
    return ProbeResult(facts=fc.freeze(), observations=obs,
                       areas=[AreaStatus("model", f"Deep load {req.folder}", detail, path=req.folder)])


def _keys(entry: str, where: Location, names: list[str], what: str, extra: dict[str, Any] | None = None) -> Observation:
    shown = ", ".join(names[:SHOWN]) + (f", ... ({len(names) - SHOWN} more)" if len(names) > SHOWN else "")
    return Observation(entry, where, {"count": len(names), "keys": shown, "what": what, **(extra or {})},
                       evidence=(Evidence("observation", f"all {len(names)} keys", "\n".join(names)),))


def interpret(req: DeepRequest, records: list[dict[str, Any]], lines: list[str], timed_out: bool,
              returncode: int | None, timeout_s: float) -> list[Observation]:
    """Observations from the child's records (pure)."""
    where = Location(str(Path(req.folder) / ("adapter_config.json" if req.adapter else "config.json")))
    what = f"the adapter over {req.base}" if req.adapter else "the model"
    tail = " | ".join(x.strip() for x in lines[-TAIL:] if x.strip()) or "(no output)"
    out: list[Observation] = []
    finished = {r.get("step") for r in records if r.get("status") in ("ok", "error")}
    for rec in records:
        step, status, data = rec.get("step"), rec.get("status"), rec.get("data") or {}
        if step in ("load_model", "load_adapter") and status == "error":
            out.append(Observation("MODEL-DEEP-LOAD-FAILED", where, {"what": what, "error": rec.get("error", "")},
                                   evidence=(Evidence("observation", "traceback", str(rec.get("traceback", ""))),)))
        elif step in ("load_model", "load_adapter") and status == "ok":
            if data.get("missing"):
                entry = "MODEL-DEEP-ADAPTER-KEYS-MISSING" if req.adapter else "MODEL-DEEP-MISSING-KEYS"
                out.append(_keys(entry, where, data["missing"], what))
            if data.get("unexpected"):
                entry = "MODEL-DEEP-ADAPTER-KEYS-UNUSED" if req.adapter else "MODEL-DEEP-UNEXPECTED-KEYS"
                out.append(_keys(entry, where, data["unexpected"], what))
            if data.get("mismatched"):
                names = [f"{m['key']} {m.get('checkpoint')} vs {m.get('model')}" for m in data["mismatched"]]
                out.append(_keys("MODEL-DEEP-MISMATCHED-KEYS", where, names, what))
        elif step == "nonfinite" and status == "ok":
            for bad in data.get("bad", []):
                out.append(Observation("MODEL-DEEP-NONFINITE", Location(str(Path(req.folder) / bad["file"])), bad))
    if timed_out:
        out.append(Observation("MODEL-DEEP-TIMEOUT", where, {"timeout_s": timeout_s, "tail": tail}))
    elif "done" not in finished and not out:
        out.append(Observation("MODEL-DEEP-LOAD-FAILED", where, {"what": what, "error": f"the child ended with exit code {returncode}: {tail}"}))
    return out


def output_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: {"adapter": bool, "output": the child's output, "rc": int, "timed_out": bool}."""
    data = json.loads(text)
    req = DeepRequest("model", bool(data.get("adapter")), "base" if data.get("adapter") else None, "merged", None)
    records, lines = split_output(data.get("output", ""))
    return interpret(req, records, lines, bool(data.get("timed_out")), data.get("rc", 0), float(data.get("timeout_s", 600)))
