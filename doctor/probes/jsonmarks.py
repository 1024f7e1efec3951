"""Where every value of a JSON text stands: the JSON counterpart of `kb.yamlnodes`' marks.

Run on text that `limits.load_json` has already accepted (valid, nested at most
`limits.MAX_NESTING` deep), so the walk may recurse and need not report errors of its own.
Each value's path maps to its 1-based line and column, and to its span of characters, so a
fix can replace exactly that value and leave the rest of the file as it was.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WORDS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Span:
    line: int     # 1-based, like yamlnodes.Mark
    column: int   # 1-based, in characters
    start: int    # offsets of the value's text in the file
    end: int


def value_spans(text: str) -> dict[Path, Span]:
    """Path -> where its value stands, for every value (the document's own path is ())."""
    spans: dict[Path, Span] = {}
    lines = _LineIndex(text)
    _value(text, _skip(text, 0), (), spans, lines)
    return spans


class _LineIndex:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def place(self, pos: int) -> tuple[int, int]:
        import bisect

        i = bisect.bisect_right(self.starts, pos) - 1
        return i + 1, pos - self.starts[i] + 1


def _skip(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]   # matches the empty string


def _value(text: str, pos: int, path: Path, spans: dict[Path, Span], lines: _LineIndex) -> int:
    """Record the value at `pos` (and everything in it); return the offset after it."""
    ch = text[pos]
    if ch == "{":
        end = _object(text, pos, path, spans, lines)
    elif ch == "[":
        end = _array(text, pos, path, spans, lines)
    elif ch == '"':
        end = scanstring(text, pos + 1, False)[1]
    else:
        word = next((w for w in _WORDS if text.startswith(w, pos)), None)
        m = None if word else _NUMBER.match(text, pos)
        end = pos + len(word) if word else (m.end() if m else pos + 1)
    spans[path] = Span(*lines.place(pos), pos, end)
    return end


def _object(text: str, pos: int, path: Path, spans: dict[Path, Span], lines: _LineIndex) -> int:
    pos = _skip(text, pos + 1)
    if text[pos] == "}":
        return pos + 1
    while True:
        key, pos = scanstring(text, pos + 1, False)
        pos = _skip(text, _skip(text, pos) + 1)   # past the colon
        pos = _skip(text, _value(text, pos, (*path, key), spans, lines))
        if text[pos] == "}":
            return pos + 1
        pos = _skip(text, pos + 1)                # past the comma


def _array(text: str, pos: int, path: Path, spans: dict[Path, Span], lines: _LineIndex) -> int:
    pos = _skip(text, pos + 1)
    if text[pos] == "]":
        return pos + 1
    index = 0
    while True:
        pos = _skip(text, _value(text, pos, (*path, index), spans, lines))
        index += 1
        if text[pos] == "]":
            return pos + 1
        pos = _skip(text, pos + 1)
