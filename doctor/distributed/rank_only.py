"""Findings that hold on some ranks but not on rank 0, whose environment the report describes.

Each rank's facts go through the same rules as a plain `scan`, plus the observations its own
probes made; what rank 0 does not share is reported once, naming the ranks. Notes (info) are
left out: only what would break or slow those ranks.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from doctor.distributed.checks import Record, rank_label
from doctor.engine import evaluate, fill
from doctor.findings import Observation, Severity


def rank_findings(kb: Any, record: Record) -> dict[str, tuple[str, str]]:
    """entry id -> (severity, title) for one rank: its rules plus its probes' observations."""
    facts: Mapping[str, Any] = record.get("facts", {})
    out = {f.id: (f.severity.value, f.title) for f in evaluate(kb, facts) if f.severity != Severity.INFO}
    for entry_id, values in record.get("observations", []):
        entry = kb.get(entry_id)
        if entry is not None and entry.severity != Severity.INFO:
            out.setdefault(entry_id, (entry.severity.value, fill(entry.title, values, facts)))
    return out


def rank_only_observations(records: Sequence[Record], kb: Any) -> list[Observation]:
    ordered = sorted(records, key=lambda r: r["rank"])
    if len(ordered) < 2:
        return []
    base = set(rank_findings(kb, ordered[0]))
    extra: dict[str, list[tuple[Record, tuple[str, str]]]] = defaultdict(list)
    for record in ordered[1:]:
        for entry_id, found in rank_findings(kb, record).items():
            if entry_id not in base:
                extra[entry_id].append((record, found))
    out = []
    for entry_id, hits in sorted(extra.items()):
        severity, title = hits[0][1]
        hosts = sorted({str(r.get("host")) for r, _ in hits})
        out.append(Observation("DIST-RANK-ONLY-FINDING", values={
            "finding": entry_id, "finding_severity": severity, "finding_title": title,
            "ranks": rank_label(r["rank"] for r, _ in hits),
            "hosts": ", ".join(hosts)}))
    return out
