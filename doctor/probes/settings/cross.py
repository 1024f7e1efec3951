"""Checks that need two targets of one scan: a script's dataset_text_field against the
columns of the dataset scanned with it (`--data`), its max_seq_length against the model folder
scanned with it (`--model`). They read the scan's merged facts, and place a finding at the
script's line (kept in a fact as plain data: Source.where_later)."""
from __future__ import annotations

from typing import Any, Mapping

from doctor.findings import Location, Observation
from doctor.probes import limits
from doctor.probes.notebook import CellLine, file_place, string_places

TEXT_FIELD = "script.dataset_text_field"
TEXT_FIELD_AT = "script.dataset_text_field_at"      # where the script sets it (Source.where_later)
TEXT_FIELD_MADE = "script.dataset_text_field_made"  # the script names the field elsewhere: it may build it
MAX_SEQ = "script.max_seq_length"
MAX_SEQ_AT = "script.max_seq_length_at"


def cross_target_observations(facts: Mapping[str, Any]) -> list[Observation]:
    return [*_text_field(facts), *_sequence_length(facts)]


def _place(facts: Mapping[str, Any], key: str, fallback: str) -> Location:
    return place_of(facts.get(key) or {}, fallback)


def place_of(at: Mapping[str, Any], fallback: str) -> Location:
    """A place kept as plain data (Source.where_later), as a Location."""
    if not at.get("path"):
        return Location(fallback)
    if "part" not in at:
        return Location(str(at["path"]), at.get("line"), at.get("column"))
    return _notebook_place(at)


def _notebook_place(at: Mapping[str, Any]) -> Location:
    """A notebook cell's line as the raw .ipynb file's line and column: the file is read again
    (with the slow placing JSON reader) only here, when a finding is made."""
    path = str(at["path"])
    line = column = None
    try:
        raw = limits.read_text(path, limits.NOTEBOOK_MAX_BYTES, errors="replace")
        place = CellLine(int(at["cell"]), int(at["cell_line"]), int(at["part"]), int(at["offset"]))
        line, column = file_place(raw, string_places(raw) or {(0, 0): 0}, place, int(at.get("char", 0)))
    except (OSError, ValueError, TypeError, KeyError, limits.Refusal):
        pass
    return Location(path, line, column, cell=at.get("cell"), cell_line=at.get("cell_line"))


def _text_field(facts: Mapping[str, Any]) -> list[Observation]:
    field, columns = facts.get(TEXT_FIELD), facts.get("dataset.columns")
    if not isinstance(field, str) or not isinstance(columns, list) or field in columns or facts.get(TEXT_FIELD_MADE):
        return []
    return [Observation("SCRIPT-TEXT-FIELD-NOT-A-COLUMN", _place(facts, TEXT_FIELD_AT, str(facts.get("dataset.path", ""))),
                        {"field": field, "dataset": str(facts.get("dataset.path", "the dataset")),
                         "columns": ", ".join(columns) or "(none)",
                         "at": (facts.get(TEXT_FIELD_AT) or {}).get("name", "the script")})]


def _sequence_length(facts: Mapping[str, Any]) -> list[Observation]:
    length, positions = facts.get(MAX_SEQ), facts.get("model.max_position_embeddings")
    if not isinstance(length, (int, float)) or not isinstance(positions, int) or length <= positions:
        return []
    return [Observation("SCRIPT-SEQ-LEN-ABOVE-MODEL", _place(facts, MAX_SEQ_AT, ""),
                        {"max_seq_length": length, "positions": positions, "factor": round(length / positions, 3)})]


def example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: the input is the merged facts, as JSON."""
    import json
    return cross_target_observations(json.loads(text))
