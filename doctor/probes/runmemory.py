"""The VRAM a run described by a script or a training config will need, and the verdict
against the GPU of the environment scanned with it.

A probe that reads a run's settings calls `estimate_run` (one note with the estimate, and a
fact keyed by the file); after every probe has run, `memory_observations` compares each such
fact with the GPU's memory from the environment facts. The model is sized from its name
("Llama-3.1-8B" -> 8e9 parameters), so the band is the wide one of a guessed shape.
"""
from __future__ import annotations

from typing import Any, Mapping

from doctor.findings import Location, Observation
from doctor.probes import vram

FACT_PREFIX = "vram.run:"
MEMORY_FACT = "gpu.0.memory_total_mib"
HEADROOM = 0.9   # fragmentation and the allocator's rounding leave the last tenth unusable


def _kind(run: vram.RunSettings) -> str:
    if run.full_finetuning:
        return "full fine-tuning"
    bits = "4-bit" if run.load_in_4bit else "8-bit" if run.load_in_8bit else "16-bit"
    return f"{bits} LoRA r={run.rank}"


def _mib(v: float) -> str:
    return f"{v / 1024:.1f} GiB"


def estimate_settings(settings: Mapping[str, Any]) -> tuple[vram.RunSettings, vram.VramEstimate] | None:
    """The run and its estimate, for settings whose model's size its name tells; else None."""
    name = settings.get("model_name")
    params = vram.params_from_name(name) if isinstance(name, str) else None
    if not params:
        return None
    values = dict(settings)
    if "bnb-4bit" in str(name).lower() and not values.get("full_finetuning"):
        values["load_in_4bit"] = True   # a pre-quantized checkpoint loads in 4-bit whatever the flag says
    run = vram.run_from_settings(values)
    active = vram.active_params_from_name(name)
    return run, vram.estimate(vram.shape_from_params(params), run,
                              vram.shape_from_params(active) if active and active < params else None)


def estimate_run(settings: Mapping[str, Any], where: Location) -> tuple[dict[str, Any], list[Observation]]:
    """(facts, [RUN-VRAM-ESTIMATE]) for a run whose model's size its name tells; else nothing."""
    found = estimate_settings(settings)
    if found is None:
        return {}, []
    run, est = found
    name = settings.get("model_name")
    fact = {"path": where.path, "line": where.line, "column": where.column, "cell": where.cell,
            "cell_line": where.cell_line, "model": name, "kind": _kind(run), "batch": run.batch, "seq": run.seq,
            "total_mib": round(est.total_mib), "floor_mib": round(vram.floor_mib(est)),
            "middle_mib": round(vram.middle_mib(est)), "low_mib": round(est.low_mib), "high_mib": round(est.high_mib),
            "parts": [[name, round(value, 1)] for name, value in est.parts()], "estimate": vram.describe(est)}
    obs = Observation("RUN-VRAM-ESTIMATE", where, {
        "model": name, "kind": fact["kind"], "batch": run.batch, "seq": run.seq, "total": _mib(est.total_mib),
        "floor": _mib(vram.floor_mib(est)),
        "low": _mib(est.low_mib), "high": _mib(est.high_mib), "estimate": fact["estimate"],
        "notes": "; ".join(est.notes) or "none"})
    return {FACT_PREFIX + str(where.path): fact}, [obs]


def memory_observations(facts: Mapping[str, Any]) -> list[Observation]:
    """RUN-VRAM-WONT-FIT / RUN-VRAM-TIGHT for each estimated run, when the GPU is known."""
    memory = facts.get(MEMORY_FACT)
    if not isinstance(memory, (int, float)) or memory <= 0:
        return []
    out = []
    for key, fact in sorted(facts.items()):
        if not key.startswith(FACT_PREFIX) or not isinstance(fact, Mapping):
            continue
        if isinstance(fact.get("at"), Mapping):   # a script's place, kept as plain data (Source.where_later)
            from doctor.probes.settings.cross import place_of

            where = place_of(fact["at"], str(fact.get("path") or ""))
        else:
            where = Location(str(fact.get("path") or ""), fact.get("line"), fact.get("column"), cell=fact.get("cell"),
                             cell_line=fact.get("cell_line"))
        values = {"model": fact.get("model"), "kind": fact.get("kind"), "batch": fact.get("batch"),
                  "seq": fact.get("seq"), "memory": _mib(memory), "estimate": fact.get("estimate"),
                  "floor": _mib(float(fact.get("floor_mib", 0))), "middle": _mib(float(fact.get("middle_mib", 0)))}
        if float(fact.get("floor_mib", 0)) > memory:
            out.append(Observation("RUN-VRAM-WONT-FIT", where, values))
        elif float(fact.get("middle_mib", 0)) > HEADROOM * memory:
            out.append(Observation("RUN-VRAM-TIGHT", where, values))
    return out


def example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: {"settings": {...}, "gpu_mib": N} -> the estimate's note, or the verdict."""
    import json

    data = json.loads(text)
    facts, obs = estimate_run(data.get("settings", {}), Location("train.py", 1, 1))
    if "gpu_mib" in data:
        return memory_observations({**facts, MEMORY_FACT: data["gpu_mib"]})
    return obs
