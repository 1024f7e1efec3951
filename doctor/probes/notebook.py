"""A notebook's code cells as one Python text, each line tied to its cell and to its place
in the .ipynb file.

People find a line by its cell ("cell 7, line 3"); editors, JSON and SARIF by the line and
column of the raw .ipynb text. The code is read with the fast C JSON reader; only when a
finding must be placed is the file read again with the standard library's Python scanner,
its string reader wrapped so that every string remembers where it starts in the file (that
reading is several times slower, and most notebooks have nothing to place).
"""
from __future__ import annotations

import json
import json.decoder
import json.scanner
from dataclasses import dataclass
from typing import Any

from doctor.probes.ipython import python_lines


@dataclass(frozen=True)
class CellLine:
    """Where one line of the joined code comes from."""

    cell: int        # 1-based, counting every cell (markdown too), as editors number them
    line: int        # 1-based line inside the cell
    part: int        # which string of the cell's "source" holds it (0 when source is one string)
    offset: int      # offset of the line's first character inside that (decoded) string


@dataclass(frozen=True)
class NotebookCode:
    text: str                        # the code cells as Python, joined with newlines
    lines: tuple[CellLine, ...]      # one for every line of text
    commands: tuple[tuple[int, str], ...] = ()   # (1-based line of text, magic or shell escape)


class _Placed(str):
    """A decoded JSON string that knows the file offset just after its opening quote."""

    at: int = 0


def _placed_loads(text: str) -> Any:
    decoder = json.JSONDecoder()
    plain = json.decoder.scanstring

    def parse_string(s: str, idx: int, strict: bool) -> tuple[str, int]:
        value, end = plain(s, idx, strict)
        placed = _Placed(value)
        placed.at = idx
        return placed, end

    decoder.parse_string = parse_string             # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)   # the C scanner would not call it
    return decoder.decode(text)


def read_notebook(text: str, parsed: Any = None) -> NotebookCode | None:
    """The code of a notebook's JSON text (`parsed`: that text already parsed); None when the
    text is not a notebook's JSON."""
    notebook = parsed
    if notebook is None:
        try:
            notebook = json.loads(text)
        except ValueError:
            return None
    cells = _cells(notebook)
    out_lines: list[str] = []
    places: list[CellLine] = []
    commands: list[tuple[int, str]] = []
    for number, parts in cells:
        found: list[tuple[int, str]] = []
        code = python_lines("".join(parts), found)
        commands += [(len(out_lines) + i + 1, text) for i, text in found]
        out_lines += code
        places += [CellLine(number, i + 1, part, off) for i, (part, off) in enumerate(_line_starts(parts, len(code)))]
    return NotebookCode("\n".join(out_lines), tuple(places), tuple(commands))


def _cells(notebook: Any) -> list[tuple[int, list[str]]]:
    """(cell number, source strings) of each code cell."""
    cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
    out: list[tuple[int, list[str]]] = []
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", [])
        out.append((number, [source] if isinstance(source, str) else
                    [s for s in source if isinstance(s, str)] if isinstance(source, list) else []))
    return out


def string_places(text: str) -> dict[tuple[int, int], int]:
    """File offset (just after the opening quote) of each (cell number, source part)."""
    try:
        cells = _cells(_placed_loads(text))
    except (ValueError, RecursionError):
        return {}
    return {(number, i): getattr(part, "at", 0) for number, parts in cells for i, part in enumerate(parts)}


def _line_starts(parts: list[str], count: int) -> list[tuple[int, int]]:
    """(source part, offset in that string) of each of the cell's `count` lines.
    Jupyter writes one source line per array element; a cell stored as one string has all
    its lines in that string, told apart by its `\\n` escapes."""
    starts: list[tuple[int, int]] = []
    new_line = True
    last = (0, 0)
    for at, part in enumerate(parts):
        off = 0
        while True:
            if new_line:
                starts.append((at, off))
                new_line = False
            nl = part.find("\n", off)
            if nl < 0:
                break
            off, new_line = nl + 1, True
            if off == len(part):
                break
        last = (at, len(part))
    if new_line and parts:
        starts.append(last)           # the empty line after a final newline
    while len(starts) < count:        # an empty cell: the place of its last string, or the top
        starts.append(starts[-1] if starts else last)
    return starts[:count]


def raw_offset(raw: str, string_at: int, decoded: int) -> int:
    """The file offset of the `decoded`-th character of the JSON string starting at
    `string_at`: escapes (`\\n`, `\\"`, `\\u00e9`) take more characters in the file."""
    i, d, end = string_at, 0, len(raw)
    while d < decoded and i < end:
        if raw[i] == "\\":
            if raw.startswith("u", i + 1):
                high = raw[i + 2:i + 6]
                i += 6
                if "d800" <= high.lower() < "dc00" and raw.startswith("\\u", i):
                    i += 6                     # a surrogate pair is one character
            else:
                i += 2
        else:
            i += 1
        d += 1
    return i


def file_place(raw: str, strings: dict[tuple[int, int], int], place: CellLine, column: int) -> tuple[int, int]:
    """1-based line and column in the file of `column` (0-based) on the given cell line;
    `strings` is what `string_places` gives for the file."""
    pos = raw_offset(raw, strings.get((place.cell, place.part), 0), place.offset + column)
    line = raw.count("\n", 0, pos) + 1
    return line, pos - (raw.rfind("\n", 0, pos) + 1) + 1
