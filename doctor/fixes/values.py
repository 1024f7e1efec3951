"""Value-level repairs of dataset rows (pure): the same for JSON records and table rows."""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(text: str, unsafe: bool, actions: Counter[str]) -> str:
    out = text
    if "\r" in out:
        out = out.replace("\r\n", "\n").replace("\r", "\n")
        actions["CR/CRLF line breaks inside values normalised to \\n"] += 1
    if _CONTROL.search(out):
        out = _CONTROL.sub("", out)
        actions["control characters removed"] += 1
    if unsafe and out != out.strip():
        out = out.strip()
        actions["surrounding whitespace trimmed (unsafe)"] += 1
    return out


def clean_value(value: Any, unsafe: bool, actions: Counter[str]) -> Any:
    if type(value) is str:
        return _clean_text(value, unsafe, actions)
    if type(value) is dict:
        return {k: clean_value(v, unsafe, actions) for k, v in value.items()}
    if type(value) is list:
        return [clean_value(v, unsafe, actions) for v in value]
    return value
