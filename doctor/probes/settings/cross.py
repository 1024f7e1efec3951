"""Checks that need two targets of one scan: a script's dataset_text_field against the
columns of the dataset scanned with it (`--data`). They read the scan's merged facts."""
from __future__ import annotations

from typing import Any, Mapping

from doctor.findings import Location, Observation

TEXT_FIELD = "script.dataset_text_field"
TEXT_FIELD_AT = "script.dataset_text_field_at"      # {"path", "line", "column", "cell", "cell_line", "name"}
TEXT_FIELD_MADE = "script.dataset_text_field_made"  # the script names the field elsewhere: it may build it


def cross_target_observations(facts: Mapping[str, Any]) -> list[Observation]:
    field, columns = facts.get(TEXT_FIELD), facts.get("dataset.columns")
    if not isinstance(field, str) or not isinstance(columns, list) or field in columns or facts.get(TEXT_FIELD_MADE):
        return []
    at = facts.get(TEXT_FIELD_AT) or {}
    where = Location(str(at.get("path", "")), at.get("line"), at.get("column"), cell=at.get("cell"),
                     cell_line=at.get("cell_line")) if at.get("path") else Location(str(facts.get("dataset.path", "")))
    return [Observation("SCRIPT-TEXT-FIELD-NOT-A-COLUMN", where,
                        {"field": field, "dataset": str(facts.get("dataset.path", "the dataset")),
                         "columns": ", ".join(columns) or "(none)", "at": at.get("name", "the script")})]


def example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: the input is the merged facts, as JSON."""
    import json
    return cross_target_observations(json.loads(text))
