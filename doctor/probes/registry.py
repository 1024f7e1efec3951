"""The one list of probes. Target discovery, the CLI's routing by suffix and its flags, the
scan loop, the console's headings and the knowledge schema's areas are all read from here.

Adding a probe: one module defining a `Probe` subclass and `PROBE = ThatProbe()`, one line
in `PROBE_MODULES`, its knowledge file and its tests (CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

from doctor.probes.base import Probe

# In scan order: the environment first, then what the project holds.
PROBE_MODULES: tuple[str, ...] = (
    "doctor.probes.env",
    "doctor.probes.dataset",
    "doctor.probes.script",
    "doctor.probes.config",
    "doctor.probes.model",
    "doctor.probes.gguf",
)

# Areas whose entries no probe emits: explain's runtime errors, the smoke test, the training
# watchdog, the multi-rank launch, and the doctor's own (a target it could not examine).
OTHER_AREAS: dict[str, str] = {
    "runtime": "Runtime", "smoke": "Smoke test", "training": "Training",
    "distributed": "Distributed launch", "doctor": "unsloth-doctor",
}


@lru_cache(maxsize=None)
def probes() -> tuple[Probe, ...]:
    return tuple(importlib.import_module(module).PROBE for module in PROBE_MODULES)


def get(name: str) -> Probe:
    for probe in probes():
        if probe.name == name:
            return probe
    raise KeyError(f"no probe named {name!r}")


def probe_for_file(path: Path) -> Probe | None:
    """The probe that claims a file by its suffix (`scan FILE`, and files found in folders)."""
    return next((p for p in probes() if p.suffixes and p.claims_file(path)), None)


def probe_finding(path: Path) -> Probe | None:
    """The probe that takes a file a folder scan came across (it may look inside the file)."""
    return next((p for p in probes() if p.suffixes and p.finds(path)), None)


def skip_reason(path: Path) -> str:
    """Why a folder scan did not take a file: what a probe names it, else its claimant's reason."""
    named = next((r for p in probes() if p.suffixes and p.claims_file(path) for r in [p.skip_reason(path)] if r), None)
    if named:
        return named
    claimed = probe_for_file(path)   # its kind, but not its content
    return claimed.not_found_reason if claimed else "not a kind of file the doctor reads"


def probe_for_folder(path: Path, files: list[str]) -> Probe | None:
    """The probe that claims a folder as its target (a saved model)."""
    return next((p for p in probes() if p.folder and p.claims_folder(path, files)), None)


def headings() -> dict[str, str]:
    """area -> console heading, for every area an entry may name."""
    out: dict[str, str] = {}
    for probe in probes():
        out.update(probe.headings)
    return {**out, **OTHER_AREAS}


def area_names() -> frozenset[str]:
    return frozenset(headings())


def file_suffixes() -> tuple[str, ...]:
    return tuple(s for p in probes() for s in p.suffixes)
