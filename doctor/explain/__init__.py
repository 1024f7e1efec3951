"""`explain` and `run`: read what people paste, find the error that matters, diagnose it.

Names resolve lazily so `import doctor.explain` costs nothing until one is used.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "diagnose": "doctor.explain.diagnose",
    "diagnose_stream": "doctor.explain.diagnose",
    "diagnose_log": "doctor.explain.diagnose",
    "ExplainResult": "doctor.explain.diagnose",
    "parse_text": "doctor.explain.parse",
    "parse_stream": "doctor.explain.parse",
    "ParsedLog": "doctor.explain.model",
    "run_and_explain": "doctor.explain.runner",
    "render_console": "doctor.explain.render",
    "render_text": "doctor.explain.render",
    "render_markdown": "doctor.explain.render",
    "render_json": "doctor.explain.render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'doctor.explain' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
