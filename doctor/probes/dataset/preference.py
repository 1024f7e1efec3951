"""Checks on one preference row: chosen/rejected (and prompt) in the shapes trainers accept.

Three shapes are accepted for each of prompt, chosen and rejected:
- a string: trl's "standard" preference data;
- a list of {"role", "content"} messages: trl's "conversational" data (trl 1.15.0,
  trl/data_utils.py:126-163 is_conversational: the first item is a dict with "role");
- one {"from", "value"} (or role/content) message: LLaMA-Factory's ranking rows, whose prompt
  sits in "conversations" and whose answers are one message each.
The prompt held in "conversations"/"messages" is checked by content.check_chat.
"""
from __future__ import annotations

from typing import Any

from doctor.probes.dataset.content import (BAD_TURN, FIELD_EMPTY, FIELD_NULL, FIELD_TYPE, is_blank,
                                           content_text, field_column, turn_role_content)
from doctor.probes.dataset.hits import Hits
from doctor.probes.dataset.schema import RecordSchema

PREF_UNPAIRED = "DATA-PREF-UNPAIRED"

SIDES = ("chosen", "rejected")


def check_preference(obj: dict[str, Any], schema: RecordSchema, line: int, raw: bytes, hits: Hits) -> None:
    """Both answers present, and every present prompt/answer in one of the three shapes."""
    present = [name for name in SIDES if name in obj]
    if len(present) == 1:
        missing = "rejected" if present[0] == "chosen" else "chosen"
        hits.add(PREF_UNPAIRED, line, field_column(raw, present[0]), field=present[0], missing=missing)
    for name in ("prompt", *present):
        if name not in obj:
            continue
        problem = _shape_problem(obj[name], name)
        if problem is None:
            continue
        entry_id, values = problem
        hits.add(entry_id, line, field_column(raw, name), field=name, schema=schema.name, **values)


def _shape_problem(value: Any, name: str) -> tuple[str, dict[str, Any]] | None:
    """What is wrong with one prompt/chosen/rejected value, as (entry id, values), or None."""
    if value is None:
        return FIELD_NULL, {}
    if type(value) is str:
        return (FIELD_EMPTY, {}) if is_blank(value) and name != "prompt" else None
    if type(value) is dict:
        detail = _message_problem(value, name)
        return (BAD_TURN, {"detail": detail, "turn": None}) if detail else None
    if type(value) is list:
        if not value:
            return FIELD_EMPTY, {}
        for index, message in enumerate(value):
            detail = _message_problem(message, f"{name}[{index}]")
            if detail:
                return BAD_TURN, {"detail": detail, "turn": index}
        return None
    return FIELD_TYPE, {"expected": "a string, a list of messages, or one message",
                        "found": type(value).__name__}


def _message_problem(message: Any, where: str) -> str | None:
    """Why one message is unusable (no role, or no text), or None when it is fine."""
    if type(message) is not dict:
        return f'"{where}" is a {type(message).__name__}, not a message object'
    role, content = turn_role_content(message)
    if type(role) is not str:
        return f'"{where}" has no role ("role" or "from")'
    if content is None or (content_text(content) is None and type(content) is not list):
        return f'"{where}" ({role}) has no text content ("content" or "value")'
    return None
