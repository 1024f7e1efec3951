"""A notebook cell as IPython reads it, turned into plain Python, without IPython.

IPython rewrites magics (`%pip`, `%%capture`), shell escapes (`!pip install ... \\`),
`x = !ls`, `x = %env` and help (`obj?`) into calls before running a cell. The doctor's base
install has no IPython, so this does the same job by hand, for reading only: each such
statement becomes a placeholder Python statement at the same indentation, and each line it
covered stays a line, so line numbers match the cell and an `if` body never ends up empty.
"""
from __future__ import annotations

import re

# Cell magics whose body IPython runs as Python; every other cell magic's body (%%bash,
# %%writefile, %%html...) is another language and is not read.
PYTHON_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug"})

_ESCAPES = ("!", "%", "?", "/", ",", ";")    # IPython's single-character escapes at a statement's start
_ASSIGN = re.compile(r"^(?P<lhs>[A-Za-z_][\w\s.,\[\]()*]*?)\s*=\s*[!%]")
_CELL_MAGIC = re.compile(r"^%%(\w+)")
PLACEHOLDER = "pass"


class _Scanner:
    """Just enough of Python's tokenizer to know where a statement starts: brackets,
    strings (triple-quoted ones span lines), comments and backslash continuations."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.continued = False

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> str:
        """Read one line; return its code (the part before a comment, strings included)."""
        i, n, code_end = 0, len(line), len(line)
        while i < n:
            ch = line[i]
            if self.quote is not None:
                if ch == "\\":
                    i += 2
                elif line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                else:
                    i += 1
                continue
            if ch == "#":
                code_end = i
                break
            if ch in "'\"":
                self.quote = line[i:i + 3] if line[i:i + 3] in ('"""', "'''") else ch
                i += len(self.quote)
                continue
            if ch in "([{":
                self.depth += 1
            elif ch in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        code = line[:code_end].rstrip()
        ends_in_backslash = code.endswith("\\")
        if self.quote is not None and len(self.quote) == 1 and not ends_in_backslash:
            self.quote = None   # an unclosed one-line string: Python's error, not ours to carry on
        self.continued = self.quote is None and ends_in_backslash
        return code


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _continues(line: str) -> bool:
    return line.rstrip().endswith("\\")


def _dedent_leading(lines: list[str]) -> list[str]:
    """IPython drops the first line's indentation from every line that has it."""
    first = next((ln for ln in lines if ln.strip()), "")
    prefix = _indent(first)
    if not prefix:
        return lines
    return [ln[len(prefix):] if ln.startswith(prefix) else ln for ln in lines]


def python_lines(cell: str, commands: list[tuple[int, str]] | None = None) -> list[str]:
    """The cell's lines as Python: one output line for every line of the cell. `commands`,
    when given, receives (line index, text) of each magic and shell escape, with its
    continuation lines (`!pip install a \\` then `    b`: both lines, as written)."""
    lines = _dedent_leading(cell.split("\n"))
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None:
        magic = _CELL_MAGIC.match(lines[first])
        if magic:
            if magic.group(1) not in PYTHON_CELL_MAGICS:
                return [""] * len(lines)       # %%bash, %%writefile...: the body is not Python
            found: list[tuple[int, str]] = []
            body = transform_lines(lines[first + 1:], found)
            if commands is not None:
                commands += [(i + first + 1, text) for i, text in found]
            return [""] * (first + 1) + body
    return transform_lines(lines, commands)


def transform_lines(lines: list[str], commands: list[tuple[int, str]] | None = None) -> list[str]:
    """Line magics, shell escapes, magic assignments and help, each made a placeholder
    (`commands`, when given, receives each one's line index and joined text)."""
    out: list[str] = []
    scanner = _Scanner()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if scanner.at_statement_start and stripped:
            statement = _escaped(stripped)
            if statement is not None:
                at, parts = len(out), [stripped]
                out.append(_indent(line) + statement)
                i += 1
                while i < len(lines) and _continues(lines[i - 1]):   # `!pip install a \` then `    b`
                    parts.append(lines[i])
                    out.append("")
                    i += 1
                if commands is not None:
                    commands.append((at, "\n".join(parts)))
                continue
            code = scanner.feed(line)
            if scanner.at_statement_start and code.endswith("?"):   # `obj?`, `obj.method??`
                out.append(_indent(line) + PLACEHOLDER)
            else:
                out.append(line)
            i += 1
            continue
        scanner.feed(line)
        out.append(line)
        i += 1
    return out


def _escaped(stripped: str) -> str | None:
    """The placeholder for a statement IPython rewrites, or None for plain Python."""
    if stripped.startswith(_ESCAPES):
        return PLACEHOLDER
    assign = _ASSIGN.match(stripped)
    if assign:
        return f"{assign.group('lhs').strip()} = None"
    return None


def cell_to_python(cell: str) -> str:
    return "\n".join(python_lines(cell))
