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
    """A copy of the value with every string cleaned. Built with a stack, not recursion: a row
    the strict parser accepts may nest 1024 levels deep."""
    if type(value) is str:
        return _clean_text(value, unsafe, actions)
    if type(value) is not dict and type(value) is not list:
        return value
    out: dict[Any, Any] | list[Any] = {} if type(value) is dict else []
    stack = [(value, out)]
    while stack:
        source, copy = stack.pop()
        for key, item in (source.items() if type(source) is dict else enumerate(source)):
            if type(item) is str:
                item = _clean_text(item, unsafe, actions)
            elif type(item) is dict or type(item) is list:
                empty: dict[Any, Any] | list[Any] = {} if type(item) is dict else []
                stack.append((item, empty))   # filled in later; its place is taken now
                item = empty
            if type(copy) is dict:
                copy[key] = item
            else:
                copy.append(item)
    return out
