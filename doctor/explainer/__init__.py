"""`explain` and `run`: read what people paste, find the error that matters, diagnose it.

    diagnose(text, kb, facts=None, top=3) -> ExplainResult        a pasted text
    diagnose_stream(binary_stream, kb, facts=None, top=3)          a file or pipe, any size
    run_and_explain(argv, kb, report=...) -> exit status          `unsloth-doctor run -- ...`

Results are `doctor.results.explain` types; `doctor.report` renders them.

The pipeline: prefilter (which lines) -> clean (ANSI, quotes, rank prefixes, progress bars)
-> parse (chains, frames, ranks, build errors, OOM numbers, aborts) -> diagnosis (engine
matches weighed by position and live facts, or an honest no-match) -> raise sites (where
unsloth, unsloth_zoo, trl or peft raise a message no entry knows: raisesites reads their
source with ast, raiseindex loads the index and matches).
Names resolve lazily so `import doctor.explainer` costs nothing until one is used.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "diagnose": "doctor.explainer.diagnosis",
    "diagnose_stream": "doctor.explainer.diagnosis",
    "diagnose_log": "doctor.explainer.diagnosis",
    "ExplainResult": "doctor.results.explain",
    "parse_text": "doctor.explainer.parse",
    "parse_stream": "doctor.explainer.parse",
    "ParsedLog": "doctor.results.explain",
    "run_and_explain": "doctor.explainer.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'doctor.explainer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # resolve once
    return value
