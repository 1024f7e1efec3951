"""Turn a scan's result into located observations and file-level facts (pure; no I/O)."""
from __future__ import annotations

from typing import Any

from doctor.facts import FactCollector
from doctor.findings import Evidence, Location, Observation
from doctor.probes.dataset import content, llamafactory, preference, scan
from doctor.probes.dataset.hits import Hit
from doctor.probes.dataset.scan import ChunkResult
from doctor.probes.dataset.schema import LF_PREFERENCE, SHAREGPT
from doctor.probes.dataset.tokens import length_histogram, percentile, recommend_max_seq_length

MORE_LINES = "DATA-MORE-LINES"
SCHEMA_MIXED = "DATA-SCHEMA-MIXED"
SCHEMA_SHAREGPT = "DATA-SCHEMA-SHAREGPT"
FILE_EMPTY = "DATA-FILE-EMPTY"
SCHEMA_LF_PREFERENCE = "DATA-SCHEMA-LF-PREFERENCE"
PROMPTS_ONLY = "DATA-CHAT-PROMPTS-ONLY"
# Formats that need a conversion before trl or Unsloth train on them: one note per file.
SCHEMA_NOTES = {SHAREGPT: SCHEMA_SHAREGPT, LF_PREFERENCE: SCHEMA_LF_PREFERENCE}
TOKEN_STATS = "DATA-TOKENS-STATS"

# Problems of a row's format rather than its content: when every row of a file has the same
# one, it is the file's problem, reported once with its count ({where} in their texts).
FORMAT_IDS = frozenset({scan.SCHEMA_UNKNOWN, content.FIELD_MISSING, content.FIELD_NULL, content.FIELD_TYPE,
                        content.SHAREGPT_ROLES, preference.PREF_UNPAIRED})
# Problems of content that come from how the file was made (a template never filled in, an end
# token pasted into every answer): reported once with their count, a placeholder whenever it
# is on two rows or more, a pasted token when on half the rows or more.
ALWAYS_ONCE_IDS = frozenset({content.PLACEHOLDER, llamafactory.LF_PARTS, llamafactory.LF_IMAGE_MARKERS,
                             content.SHAREGPT_UNMAPPED})
MOSTLY_IDS = ALWAYS_ONCE_IDS | {content.TEMPLATE_TOKENS}
# Values that differ between rows with the same format problem.
_PER_ROW = frozenset({"turn", "keys"})


def _where(hit: Hit, unit: str, columns: bool) -> str:
    """'Line 5, column 3' in a JSON file; 'Row 5' in Parquet; 'Line 5' in CSV (a column there
    would count characters of the row re-serialized, which no editor shows)."""
    return f"{unit.capitalize()} {hit.line}" + (f", column {hit.column}" if hit.column and columns else "")


def _place(path: str, hit: Hit, unit: str, columns: bool) -> Location:
    if unit == "row":
        return Location(path, hit.line, row=hit.line)
    return Location(path, hit.line, hit.column if columns else None, hit.end_line)


def units(kind: str) -> tuple[str, bool]:
    """How places are named in a file of this kind: by line or row, with columns or not."""
    return ("row", False) if kind == "parquet" else ("line", kind != "csv")


def _every_row(entry_id: str, shown: list[Hit], total: int, result: ChunkResult) -> bool:
    """The same format problem on every row of a file of two or more rows, or a problem of
    MOSTLY_IDS on half its rows or more."""
    if entry_id in MOSTLY_IDS:
        return total >= 2 and (entry_id in ALWAYS_ONCE_IDS or 2 * total >= result.parsed)
    if entry_id not in FORMAT_IDS or total < 2 or total != result.parsed:
        return False
    first = {k: v for k, v in shown[0].values.items() if k not in _PER_ROW}
    return all({k: v for k, v in h.values.items() if k not in _PER_ROW} == first for h in shown)


def prompts_only(result: ChunkResult) -> bool:
    """No row of a file of two or more has an assistant turn."""
    return result.parsed > 1 and result.hits.counts.get(content.NO_ASSISTANT, 0) == result.parsed


def observations(path: str, result: ChunkResult, kind: str = "jsonl") -> list[Observation]:
    unit, columns = units(kind)
    out: list[Observation] = []
    hits = result.hits
    for entry_id, shown in hits.shown.items():
        if entry_id == content.NO_ASSISTANT and prompts_only(result):
            continue   # file_level says it once: a file of prompts (for RL), not of SFT examples
        shown = sorted(shown, key=lambda h: (h.line or 0, h.column or 0))
        total = hits.counts[entry_id]
        if _every_row(entry_id, shown, total, result):
            hit = shown[0]
            lines = ", ".join(str(h.line) for h in shown[:3])
            where = (f"All {total} rows" if total == result.parsed else
                     f"{total} of {result.parsed} rows") + f" (first at {unit}s {lines})"
            out.append(Observation(entry_id, _place(path, hit, unit, columns), {
                "path": path, "line": hit.line, "column": hit.column, **hit.values, "where": where,
                "at": f"{unit.capitalize()} {hit.line}", "place": f"{unit} {hit.line}",
                "count": total, "first_lines": [h.line for h in shown[:3]]}))
            continue
        for hit in shown:
            values = {"path": path, "line": hit.line, "column": hit.column, **hit.values,
                      "where": _where(hit, unit, columns), "at": f"{unit.capitalize()} {hit.line}",
                      "place": f"{unit} {hit.line}"}
            if "first_line" in hit.values:
                values["first_at"] = f"{unit} {hit.values['first_line']}"
            if hit.end_line is not None:
                values["end_line"] = hit.end_line
            excerpt = values.pop("excerpt", None)
            evidence = (Evidence("line", f"{path}:{hit.line}", excerpt, path, hit.line),) if excerpt else ()
            out.append(Observation(entry_id, _place(path, hit, unit, columns), values, evidence))
        if total > len(shown):
            first = min((h.line for h in shown if h.line is not None), default=None)
            out.append(Observation(MORE_LINES, Location(path, first, row=first if unit == "row" else None), {
                "path": path, "entry": entry_id, "count": total, "shown": len(shown),
                "more": total - len(shown), "first_line": first, "first_at": f"{unit} {first}"}))
    return out


def describe_schemas(result: ChunkResult, unit: str = "line") -> str:
    parts = []
    for name, count in result.schema_counts.most_common():
        firsts = result.schema_first.get(name, [])
        where = unit if len(firsts) == 1 else f"{unit}s"
        columns = result.schema_columns.get(name, ())
        by = f" ({', '.join(columns)})" if columns else ""
        parts.append(f"{name}{by}: {count} row{'s' if count != 1 else ''} "
                     f"({'first at ' if count > len(firsts) else ''}{where} {', '.join(map(str, firsts))})")
    return "; ".join(parts)


def file_level(path: str, result: ChunkResult, facts: FactCollector, kind: str = "jsonl",
               max_seq_length: int | None = None) -> list[Observation]:
    unit, _ = units(kind)
    row = unit == "row"
    out: list[Observation] = []
    if result.rows == 0:
        out.append(Observation(FILE_EMPTY, Location(path), {"path": path}))
    if len(result.schema_counts) > 1:
        first = min(line for lines in result.schema_first.values() for line in lines)
        out.append(Observation(SCHEMA_MIXED, Location(path, first, row=first if row else None), {
            "path": path, "line": first, "schemas": describe_schemas(result, unit),
            "count": len(result.schema_counts)}))
    for schema_name, entry_id in SCHEMA_NOTES.items():
        if result.schema_counts.get(schema_name):
            line = result.schema_first[schema_name][0]
            out.append(Observation(entry_id, Location(path, line, row=line if row else None), {
                "path": path, "line": line, "first_at": f"{unit} {line}",
                "count": result.schema_counts[schema_name]}))
    if prompts_only(result):
        no_answer = result.hits.counts[content.NO_ASSISTANT]
        line = min((h.line for h in result.hits.shown[content.NO_ASSISTANT] if h.line), default=None)
        out.append(Observation(PROMPTS_ONLY, Location(path, line, row=line if row and line else None),
                               {"path": path, "line": line, "first_at": f"{unit} {line}", "count": no_answer}))
    stats = result.tokens
    if stats is not None and stats.measured:
        values: dict[str, Any] = {"path": path, "rows": stats.measured}
        for q in (50, 90, 95, 99):
            values[f"p{q}"] = percentile(stats.lengths, q)
            facts.set(f"dataset.tokens.p{q}", values[f"p{q}"])
        values["max"] = max(stats.lengths)
        values["recommended"] = recommend_max_seq_length(stats.lengths)
        values["truncated"] = stats.truncated
        values["truncated_share"] = f"{100 * stats.truncated / stats.measured:.1f}%"
        facts.set("dataset.tokens.max", values["max"])
        facts.set("dataset.tokens.measured_rows", stats.measured)
        facts.set("dataset.tokens.truncated_rows", stats.truncated)
        facts.set("dataset.tokens.truncated_share", round(stats.truncated / stats.measured, 6))
        facts.set("dataset.tokens.recommended_max_seq_length", values["recommended"])
        facts.set("dataset.tokens.histogram", length_histogram(stats.lengths, max_seq_length))
        out.append(Observation(TOKEN_STATS, Location(path), values))
    if result.duplicate_memory_full:
        facts.set("dataset.duplicates.checked_rows", scan.DUPLICATE_MEMORY_ROWS)
    return out
