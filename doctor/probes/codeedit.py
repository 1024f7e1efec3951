"""A change to a script's or notebook's code, as the file edit a fix proposes.

A script's new text is the file. A notebook's code is its code cells joined (magics read as
IPython reads them), so a change is carried back cell by cell: each changed line must be a
cell's own Python line (never a magic IPython rewrote), and only the `source` of the cells
that changed is rewritten in the .ipynb text, in the file's own layout (one string per line
or one string per cell, its indentation, its escaping), so outputs, metadata and every other
cell stay byte for byte and the result is still a valid notebook.
"""
from __future__ import annotations

import difflib
import json
from typing import Protocol, Sequence

from doctor.findings import FileEdit, Fix, Safety, unified_diff
from doctor.probes.jsonmarks import value_spans
from doctor.probes.notebook import CellLine
from doctor.probes.pyedit import MISSING_LIBCST, MissingLibcst, set_keyword


class Source(Protocol):
    """What the script probe read (doctor.probes.script.Source): the code and, for a
    notebook, where each line of it stands and the file's JSON text."""

    path: str
    text: str
    places: Sequence[CellLine]
    raw: str


def code_edit(src: Source, new_code: str, description: str) -> FileEdit | None:
    """The file edit that turns `src`'s code into `new_code`; None when a notebook's change
    cannot be carried back into its cells."""
    if new_code == src.text:
        return None
    if not src.places:
        return FileEdit.rewrite(src.path, src.text, new_code, description)
    cells = _changed_cells(src, new_code)
    if cells is None:
        return None
    raw = _rewrite_sources(src.raw, cells)
    diff = "".join(unified_diff(f"{src.path} (cell {number})", old, new) for number, (old, new) in sorted(cells.items()))
    return FileEdit(src.path, raw, description=description, diff=diff)


def keyword_fix(src: Source, line: int, keyword: str, value: object, text: str,
                safety: Safety = Safety.SAFE) -> tuple[Fix, ...]:
    """A fix setting the keyword argument that starts on `line` of `src`'s code to `value`."""
    try:
        new_code = set_keyword(src.text, line, keyword, value)
    except MissingLibcst:
        return (Fix(f"{text} {MISSING_LIBCST}", Safety.MANUAL, "edit"),)
    edit = code_edit(src, new_code, text) if new_code is not None else None
    return (Fix(text, safety, "edit", edits=(edit,)),) if edit else ()


def _cell_sources(raw: str) -> dict[int, str]:
    notebook = json.loads(raw)
    out = {}
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        source = cell.get("source", "")
        out[number] = source if isinstance(source, str) else "".join(source)
    return out


def _changed_cells(src: Source, new_code: str) -> dict[int, tuple[str, str]] | None:
    """Cell number -> (old source, new source) of every cell the change touches."""
    old_lines, new_lines = src.text.split("\n"), new_code.split("\n")
    sources = _cell_sources(src.raw)
    cell_lines = {n: s.split("\n") for n, s in sources.items()}
    edits: list[tuple[int, int, int, list[str]]] = []   # cell, first line, last line (0-based, exclusive), new lines
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        anchor = src.places[min(i1, len(src.places) - 1)]
        touched = src.places[i1:i2]
        if any(p.cell != anchor.cell for p in touched):
            return None   # a change across two cells: not one a fix makes
        lines = cell_lines[anchor.cell]
        if any(lines[p.line - 1] != old_lines[i1 + k] for k, p in enumerate(touched)):
            return None   # the line is IPython's rewriting of a magic, not the cell's text
        first = anchor.line - 1 + (1 if i1 >= len(src.places) else 0)
        edits.append((anchor.cell, first, first + len(touched), new_lines[j1:j2]))
    out: dict[int, tuple[str, str]] = {}
    for cell, first, last, new in reversed(edits):   # from the end, so earlier places stay
        lines = cell_lines[cell]
        lines[first:last] = new
        out[cell] = (sources[cell], "\n".join(lines))
    return out


def _rewrite_sources(raw: str, cells: dict[int, tuple[str, str]]) -> str:
    spans = value_spans(raw)
    for number in sorted(cells, reverse=True):   # from the end of the file backwards
        span = spans[("cells", number - 1, "source")]
        raw = raw[:span.start] + _source_json(raw[span.start:span.end], cells[number][1]) + raw[span.end:]
    return raw


def _source_json(old: str, source: str) -> str:
    """`source` written as the old `source` value was: one string, or a list of lines with the
    same indentation, non-ASCII written as it was (escaped or not)."""
    ascii_only = "\\u" in old and old.isascii()
    if not old.startswith("["):
        return json.dumps(source, ensure_ascii=ascii_only)
    lines = source.splitlines(keepends=True)
    if not lines:
        return "[]"
    inner = old[1:old.index('"')] if '"' in old else ""
    close = old[old.rindex('"') + 1:-1] if '"' in old else ""
    sep = "," + inner if inner else (", " if '", "' in old else ",")
    return "[" + inner + sep.join(json.dumps(ln, ensure_ascii=ascii_only) for ln in lines) + close + "]"
