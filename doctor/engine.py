"""The rule engine: knowledge entries + facts/observations/text -> findings with evidence.

Four doors, one registry:
- `evaluate(kb, facts)`: entries whose `when:` holds on the facts (scan).
- `findings_from_observations(kb, observations)`: located things probes saw (dataset lines...).
- `match_text(kb, text)`: entries whose `symptoms:` appear in a log (explain), ranked.
- `observations_from_output(kb, text, ...)`: what a child process printed (deep probe, smoke).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from doctor.facts import Facts
from doctor.findings import Evidence, Finding, Fix, Observation
from doctor.kb.conditions import Trace, evaluate_condition
from doctor.kb.model import Entry
from doctor.textmatch import PatternSet, compile_pattern

__all__ = [
    "TextMatch", "SymptomIndex", "evaluate", "evaluate_condition", "findings_from_observations",
    "match_text", "finding_from_match", "fill", "ChildOutput", "observations_from_output",
]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
# `{count|tensor|tensors}`: the number and the noun that agrees with it ("1 tensor", "3 tensors")
_COUNTED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\|([^|{}]+)\|([^|{}]+)\}")


def fill(template: str, *sources: Mapping[str, Any]) -> str:
    """Fill `{name}` from the first source that has it; unknown names read '(unknown)', or
    'unknown' where the template already puts the name in parentheses (never '((unknown))').
    `{name|one|many}` is the count with its noun in the right number."""
    def counted(match: re.Match[str]) -> str:
        name, one, many = match.groups()
        for source in sources:
            if name in source and source[name] is not None:
                number = source[name]
                return f"{_show(number)} {one if str(number) == '1' else many}"
        return f"an unknown number of {many}"
    template = _COUNTED.sub(counted, template)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        for source in sources:
            if name in source and source[name] is not None:
                return _show(source[name])
        start, end = match.span()
        bracketed = template[start - 1:start] == "(" and template[end:end + 1] == ")"
        return "unknown" if bracketed else "(unknown)"
    return _PLACEHOLDER.sub(value, template)


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _fixes(entry: Entry, *sources: Mapping[str, Any]) -> tuple[Fix, ...]:
    return tuple(
        Fix(text=fill(f.text, *sources), safety=f.safety, kind=f.kind,
            command=fill(f.command, *sources) if f.command else None)
        for f in entry.fixes
    )


def _finding(entry: Entry, sources: Sequence[Mapping[str, Any]], **kw: Any) -> Finding:
    return Finding(
        id=entry.id, title=fill(entry.title, *sources), severity=entry.severity,
        category=entry.category, area=entry.area, message=fill(entry.explain, *sources),
        fixes=kw.pop("fixes", ()) + _fixes(entry, *sources), refs=entry.refs, myth=entry.myth, **kw,
    )


# --- scan: conditions over facts -------------------------------------------------------

def evaluate(kb: Iterable[Entry], facts: Facts | Mapping[str, Any]) -> list[Finding]:
    findings = []
    for entry in kb:
        if not entry.fires_in_scan:
            continue
        trace = Trace()
        if evaluate_condition(entry.when or {}, facts, trace) is True:
            evidence = tuple(
                Evidence("fact", name, value, facts.source(name) if isinstance(facts, Facts) else None)
                for name, value in trace.used.items()
            )
            findings.append(_finding(entry, [facts], evidence=evidence))
    return findings


# --- probes: located observations ------------------------------------------------------

def findings_from_observations(kb: Any, observations: Iterable[Observation],
                               facts: Mapping[str, Any] | None = None) -> list[Finding]:
    out = []
    for obs in observations:
        entry = kb.get(obs.entry_id)
        if entry is None:
            raise KeyError(f"a probe emitted {obs.entry_id}, which no knowledge entry defines")
        out.append(_finding(entry, [obs.values, facts or {}], location=obs.location,
                            evidence=obs.evidence, fixes=obs.fixes))
    return out


# --- explain: symptoms in text ---------------------------------------------------------

@dataclass
class TextMatch:
    entry: Entry
    score: float
    lines: list[tuple[int, str]] = field(default_factory=list)
    captures: dict[str, str] = field(default_factory=dict)
    last_line: int = 0


class SymptomIndex:
    """All symptom patterns of a KB in one RE2 set, so a log is scanned once per line."""

    def __init__(self, entries: Iterable[Entry]):
        self.owners: list[tuple[Entry, int]] = []   # pattern index -> (entry, symptom index)
        patterns: list[str] = []
        for entry in entries:
            for i, symptom in enumerate(entry.symptoms):
                patterns.append(symptom.pattern)
                self.owners.append((entry, i))
        self.patterns = PatternSet(patterns)


# Several distinct symptoms of one entry make it more certain, a little each.
_MULTI_BONUS = 0.05
_MAX_EVIDENCE_LINES = 8


def match_text(kb: Any, text: str | Sequence[tuple[int, str]]) -> list[TextMatch]:
    """Rank entries whose symptoms occur in `text` (a string, or (line_no, line) pairs)."""
    index: SymptomIndex = kb.derived("symptom_index", lambda: SymptomIndex(kb.entries))
    lines = list(enumerate(text.splitlines(), start=1)) if isinstance(text, str) else list(text)
    hits: dict[str, TextMatch] = {}
    seen_symptoms: dict[str, set[int]] = {}
    best_weight: dict[str, float] = {}
    for line_no, line in lines:
        if not line or len(line) > 20000:
            continue
        for pattern_index in index.patterns.match(line):
            entry, symptom_index = index.owners[pattern_index]
            symptom = entry.symptoms[symptom_index]
            match = hits.get(entry.id)
            if match is None:
                match = hits[entry.id] = TextMatch(entry, 0.0)
                seen_symptoms[entry.id] = set()
                best_weight[entry.id] = 0.0
            seen_symptoms[entry.id].add(symptom_index)
            best_weight[entry.id] = max(best_weight[entry.id], symptom.weight)
            match.last_line = max(match.last_line, line_no)
            if len(match.lines) < _MAX_EVIDENCE_LINES and (not match.lines or match.lines[-1][0] != line_no):
                match.lines.append((line_no, line.strip()))
            if symptom.capture:
                _capture(symptom.pattern, symptom.capture, line, match.captures)
    for entry_id, match in hits.items():
        extra = len(seen_symptoms[entry_id]) - 1
        match.score = min(1.0, best_weight[entry_id] + _MULTI_BONUS * extra)
    return sorted(hits.values(), key=lambda m: (-m.score, -m.last_line, m.entry.id))


def _capture(pattern: str, names: Sequence[str], line: str, into: dict[str, str]) -> None:
    found = compile_pattern(pattern).search(line)
    if not found:
        return
    for i, name in enumerate(names, start=1):
        try:
            value = found.group(i)
        except IndexError:
            break
        if value is not None and name not in into:
            into[name] = value


def finding_from_match(match: TextMatch, facts: Mapping[str, Any] | None = None) -> Finding:
    evidence = tuple(Evidence("line", f"log:{n}", text, line=n) for n, text in match.lines)
    return _finding(match.entry, [match.captures, facts or {}], evidence=evidence, confidence=round(match.score, 2))


# --- child processes: what the deep probe's and the smoke test's children printed --------

@dataclass
class ChildOutput:
    """Entries whose symptoms appear in a child's output, as observations, and which entries
    each line matched (so a caller can show the line with the entries it maps to)."""

    observations: list[Observation] = field(default_factory=list)
    entries_by_line: dict[int, list[str]] = field(default_factory=dict)


def observations_from_output(kb: Any, text: str, *, source: str, min_score: float,
                             keep: Callable[[Entry], bool] = lambda entry: True,
                             max_lines: int = _MAX_EVIDENCE_LINES) -> ChildOutput:
    """Match a child process's output against every symptom once; a match at or above
    `min_score` whose entry `keep` accepts becomes an observation with the lines as evidence
    (named `source:LINE`). The deep probe and the smoke test both read their children so."""
    out = ChildOutput()
    for m in match_text(kb, text):
        for no, _ in m.lines:
            out.entries_by_line.setdefault(no, []).append(m.entry.id)
        if m.score >= min_score and keep(m.entry):
            evidence = tuple(Evidence("line", f"{source}:{no}", line, source, no) for no, line in m.lines[:max_lines])
            out.observations.append(Observation(m.entry.id, values=dict(m.captures), evidence=evidence))
    return out
