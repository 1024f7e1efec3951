"""unsloth-doctor: diagnose and repair Unsloth fine-tuning setups.

    import doctor
    report = doctor.scan(["."])            # what `unsloth-doctor scan .` examines
    result = doctor.explain(log_text)      # what `unsloth-doctor explain` prints
    trainer = SFTTrainer(..., callbacks=[doctor.DoctorCallback(policy="stop")])

Importing this package stays light: no torch, transformers or unsloth, and nothing else until
a name is used. `DoctorCallback` (the training watchdog) imports transformers, inside the
user's training process, when asked for.
"""
from __future__ import annotations

import importlib
from typing import Any

from doctor.version import __version__

_EXPORTS = {
    "scan": "doctor.api", "explain": "doctor.api", "smoke": "doctor.api", "run": "doctor.api",
    "load_knowledge": "doctor.api",
    "Report": "doctor.results.report", "FixOutcome": "doctor.results.report",
    "ExplainResult": "doctor.results.explain", "Diagnosis": "doctor.results.explain",
    "SmokeReport": "doctor.results.smoke",
    "Finding": "doctor.findings", "Severity": "doctor.findings", "Location": "doctor.findings",
    "KnowledgeBase": "doctor.kb",
    "UsageError": "doctor.errors", "KnowledgeBroken": "doctor.errors",
    "DoctorCallback": "doctor.training.watchdog",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'doctor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

