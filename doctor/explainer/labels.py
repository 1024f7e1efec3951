"""One ranked list of what explain names as the cause, each with its confidence.

A result names causes in three ways: knowledge entries and structural diagnoses (both
`Diagnosis`, by id), and the library file that raises the pasted message (`RaiseSite`).
Benchmarks and calibration need them in one order, as the user reads them: by confidence.
Labels: the diagnosis id ("RT-...", "ST-..."), or "site:<file relative to site-packages>".
"""
from __future__ import annotations

from doctor.results.explain import ExplainResult


def ranked_labels(result: ExplainResult) -> list[tuple[str, float]]:
    """(label, confidence), best first, each label once (its best confidence)."""
    best: dict[str, float] = {}
    for d in result.diagnoses:
        best[d.id] = max(best.get(d.id, 0.0), d.confidence)
    for site in result.raise_sites:
        label = f"site:{site.file}"
        best[label] = max(best.get(label, 0.0), site.confidence)
    order = {label: i for i, label in enumerate(best)}   # ties keep the result's own order
    return sorted(best.items(), key=lambda kv: (-kv[1], order[kv[0]]))
