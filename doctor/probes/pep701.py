"""Python 3.12 f-strings (PEP 701) read on an older Python, in the same places.

Python 3.12 lets an f-string reuse its own quotes inside a replacement field, put backslashes
and comments there, and spread a single-quoted f-string's field over lines. Colab runs 3.12,
so official notebooks use that; Python 3.11's `ast.parse` calls them broken. `parse` reads
such code anyway: when the first parse fails before 3.12, a small PEP 701-aware lexer finds
the f-string literals, and each one 3.11 cannot parse is rewritten in place: the same
f-string with the inner quotes swapped where that keeps its value, else a plain string
literal of the same lines and UTF-8 length (only when each field holds an expression 3.12
accepts: an f-string broken on 3.12 too stays, for the parser to report). Everything outside
those literals keeps its line and column, so the checks see calls and keywords where 3.12
sees them. On 3.12 and later only `ast.parse` runs.
"""
from __future__ import annotations

import ast
import re
import sys
import warnings
from dataclasses import dataclass, field

_PREFIXES = frozenset({"", "r", "u", "f", "b", "fr", "rf", "br", "rb"})
# what the top level skips over: nothing in between starts a string or a comment
_NEXT_MARK = re.compile(r"[\"'#\\]")


class _LexError(ValueError):
    """The text ends inside a string or a replacement field: leave it to the parser."""


@dataclass(frozen=True)
class Field:
    """A replacement field: text[start:end] is its expression; `conversion` what follows a `!`
    ("r", "s", "a"; None without one)."""

    start: int
    end: int
    conversion: str | None


@dataclass
class _Parts:
    strings: list["Literal"] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)


@dataclass(frozen=True)
class Literal:
    """One string literal: text[start:end], and the strings directly inside its replacement
    fields (an f-string's; a plain string has none)."""

    start: int
    end: int
    prefix: str
    quote: str
    inner: tuple["Literal", ...] = ()
    fields: tuple["Field", ...] = ()    # its replacement fields, those in format specs too

    @property
    def is_f(self) -> bool:
        return "f" in self.prefix.lower()


def parse(text: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, accepting 3.12 f-strings on any Python. A SyntaxError means the code is
    broken on 3.12 too: raised where the parser of the rewritten text stops when that is
    outside the rewritten literals (where 3.12 stops), else this Python's own error."""
    with warnings.catch_warnings():   # "invalid escape sequence" is the user's to see when run, not ours to print
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return ast.parse(text, filename=filename)
        except SyntaxError as original:
            if sys.version_info >= (3, 12):
                raise
            rewritten, spans = downlevel(text)
            if not spans:
                raise
            try:
                return ast.parse(rewritten, filename=filename)
            except SyntaxError as again:
                if again.lineno is not None and not _inside(rewritten, spans, again.lineno, (again.offset or 1) - 1):
                    raise again from None
                raise original from None


def downlevel(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` with every f-string this Python cannot parse rewritten in place, and the
    (start, end) offsets of the rewritten literals in the new text; (text, []) unchanged
    when nothing needs it or the lexer cannot read the text."""
    try:
        literals = find_literals(text)
    except (_LexError, RecursionError):   # an f-string nested hundreds deep: leave it to the parser
        return text, []
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    at, length = 0, 0
    for lit in literals:
        source = text[lit.start:lit.end]
        if not lit.is_f or _parses(source):
            continue
        swapped = _swap_inner_quotes(text, lit)
        if swapped is not None and _parses(swapped):
            new = swapped
        elif _fields_parse(text, lit):
            new = _blank(source, lit)
        else:
            continue   # broken on 3.12 too: left as it is, for the parser to say where
        parts.append(text[at:lit.start])
        length += lit.start - at
        spans.append((length, length + len(new)))
        parts.append(new)
        length += len(new)
        at = lit.end
    parts.append(text[at:])
    return "".join(parts), spans


def find_literals(text: str) -> list[Literal]:
    """The string literals of Python source, outermost only, read by 3.12's rules."""
    out: list[Literal] = []
    i = 0
    while True:
        mark = _NEXT_MARK.search(text, i)
        if mark is None:
            return out
        i = mark.start()
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c == "\\":
            i += 2
        else:
            start = i
            while start > 0 and i - start <= 2 and _is_name_char(text[start - 1]):
                start -= 1
            prefix = text[start:i]
            if prefix.lower() not in _PREFIXES or (start > 0 and _is_name_char(text[start - 1])):
                start, prefix = i, ""   # `x"..."` or `print"...`: a name, then a string
            lit, i = _string(text, start, prefix)
            out.append(lit)


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _string(text: str, start: int, prefix: str) -> tuple[Literal, int]:
    """The literal starting at `start` (its prefix first), and the offset after it."""
    q = start + len(prefix)
    quote = text[q:q + 3] if text[q:q + 3] in ('"""', "'''") else text[q]
    raw = "r" in prefix.lower()
    parts = _Parts()
    if "f" in prefix.lower():
        end = _fstring_body(text, q + len(quote), quote, raw, parts, in_spec=False)
    else:
        end = _plain_body(text, q + len(quote), quote)
    return Literal(start, end, prefix, quote, tuple(parts.strings), tuple(parts.fields)), end


def _plain_body(text: str, i: int, quote: str) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif text.startswith(quote, i):
            return i + len(quote)
        elif c == "\n" and len(quote) == 1:
            break
        else:
            i += 1
    raise _LexError("unterminated string")


def _fstring_body(text: str, i: int, quote: str, raw: bool, parts: _Parts, in_spec: bool) -> int:
    """Scans an f-string's literal part (or a format spec, which ends at its `}`) from `i`;
    returns the offset after the closing quote (for a spec: of the `}`)."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if not raw and text.startswith("N{", i + 1):   # \N{NAME}: its braces open no field
                close = text.find("}", i)
                i = n if close < 0 else close + 1
            else:   # an escape, but a brace after a backslash still opens or closes a field
                i += 1 if text[i + 1:i + 2] in ("{", "}") else 2
        elif text.startswith(quote, i):
            if in_spec:
                break
            return i + len(quote)
        elif c == "{":
            if text.startswith("{{", i) and not in_spec:
                i += 2
            else:
                i = _field(text, i + 1, quote, raw, parts)
        elif c == "}":
            if in_spec:
                return i
            i += 2 if text.startswith("}}", i) else 1
        elif c == "\n" and len(quote) == 1:
            break
        else:
            i += 1
    raise _LexError("unterminated f-string")


def _field(text: str, i: int, quote: str, raw: bool, parts: _Parts) -> int:
    """Scans a replacement field's expression from `i` (after its `{`), with nested strings,
    brackets, comments and line continuations; returns the offset after its `}`."""
    n, depth, start = len(text), 0, i
    while i < n:
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                if c == "}":
                    parts.fields.append(Field(start, i, None))
                    return i + 1
                raise _LexError("unbalanced bracket")
            depth -= 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c == "\\":
            i += 2
            continue
        elif c == "!" and depth == 0 and not text.startswith("!=", i):
            end = i + 1   # a conversion (!r, !s, !a); then a spec or the end
            while end < n and text[end].isalnum():
                end += 1
            conversion = text[i + 1:end]
            while end < n and text[end] in " \t":   # 3.12 takes f"{3!s  }"
                end += 1
            if text[end:end + 1] == ":":
                parts.fields.append(Field(start, i, conversion))
                return _fstring_body(text, end + 1, quote, raw, parts, in_spec=True) + 1
            if text[end:end + 1] == "}":
                parts.fields.append(Field(start, i, conversion))
                return end + 1
            parts.fields.append(Field(start, i, "!"))   # no conversion 3.12 knows: the field is broken
            i = end
            continue
        elif c == ":" and depth == 0:
            parts.fields.append(Field(start, i, None))
            return _fstring_body(text, i + 1, quote, raw, parts, in_spec=True) + 1
        elif c in "\"'":
            lit, i = _string(text, i, "")
            parts.strings.append(lit)
            continue
        elif c.isidentifier():
            end = i
            while end < n and _is_name_char(text[end]):
                end += 1
            if end < n and text[end] in "\"'" and text[i:end].lower() in _PREFIXES:
                lit, i = _string(text, i, text[i:end])
                parts.strings.append(lit)
            else:
                i = end
            continue
        i += 1
    raise _LexError("unterminated replacement field")


def _parses(literal: str) -> bool:
    try:
        ast.parse(f"(\n{literal}\n)", mode="eval")
        return True
    except (SyntaxError, ValueError):
        return False


_CONVERSIONS = (None, "r", "s", "a")


def _fields_parse(text: str, lit: Literal) -> bool:
    """Whether each replacement field of the f-string holds an expression, as 3.12 reads it
    (what a blank string would hide), with a conversion 3.12 knows."""
    for f in lit.fields:
        expr = _without_debug_equals(text[f.start:f.end])
        if f.conversion not in _CONVERSIONS or not expr.strip():
            return False
        try:   # 3.12 reads a field as if in parentheses; f-strings inside it by the same rules
            ast.parse(f"(\n{downlevel(expr)[0]}\n)", mode="eval")
        except (SyntaxError, ValueError, RecursionError):
            return False
    return True


def _without_debug_equals(expr: str) -> str:
    """The expression of a self-documenting field (f"{x = }", f"{x = # note\n}"): its last
    `=` blanked when only blanks and comments follow it."""
    k = len(expr)
    while (k := expr.rfind("=", 0, k)) >= 0:
        rest = expr[k + 1:].split("\n")
        if all(not line.strip() or line.lstrip().startswith("#") for line in rest):
            if not expr[k - 1:k] in ("=", "!", "<", ">", ":"):
                return expr[:k] + " " + expr[k + 1:]
            return expr
    return expr


def _swap_inner_quotes(text: str, lit: Literal) -> str | None:
    """The f-string with each inner string that reuses its quote written with the other
    quote (the same value: that string holds neither quote nor a backslash); None when
    there is no such string, or one cannot be swapped."""
    if len(lit.quote) != 1:
        return None
    other = "'" if lit.quote == '"' else '"'
    chars = list(text[lit.start:lit.end])
    swapped = False
    for child in lit.inner:
        if child.quote[0] != lit.quote:
            continue
        body = text[child.start + len(child.prefix):child.end]
        if other in body or "\\" in body:
            return None
        opening = child.start + len(child.prefix) - lit.start
        closing = child.end - len(child.quote) - lit.start
        for k in range(len(child.quote)):
            chars[opening + k] = chars[closing + k] = other
        swapped = True
    return "".join(chars) if swapped else None


def _blank(source: str, lit: Literal) -> str:
    """A plain string literal in the place of `source`: the same lines and, line by line,
    the same UTF-8 length (ast counts columns in bytes). Its content is not the f-string's."""
    def fill(s: str) -> str:   # non-ASCII kept: a string may hold it, and it keeps the byte count
        return "".join(ch if ch in "\r\n" or not ch.isascii() else " " for ch in s)

    lines = source.split("\n")
    if len(lines) == 1:
        return '"' + fill(source[1:-1]) + '"'
    if len(lit.quote) == 3 or len(lines[-1]) >= 3:   # a 3.12 field over lines, with room for a triple quote
        return '"""' + fill(source[3:-3]) + '"""'
    # else a string continued with backslashes, when each line but the last has room for
    # one (an ASCII character before its newline)
    if all(line and line[-1].isascii() for line in lines[1:-1]) and len(lines[0]) >= 2 and lines[0][-1].isascii():
        body = [fill(line[:-1]) + "\\" for line in lines[:-1]]
        body[0] = '"' + body[0][1:]
        return "\n".join([*body, fill(lines[-1][:-1]) + '"'])
    # else an empty string in parentheses, the rest blank (bytes as spaces: no text may stand
    # outside a string); only there the string node starts one column late and ends early
    spaces = ["".join(" " * len(ch.encode("utf-8")) if ch != "\r" else ch for ch in line) for line in lines]
    spaces[0] = '(""' + spaces[0][3:]
    spaces[-1] = spaces[-1][:-1] + ")"
    return "\n".join(spaces)


def _inside(text: str, spans: list[tuple[int, int]], line: int, col: int) -> bool:
    """Whether (1-based line, 0-based character column) of `text` falls in one of `spans`."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return False
    offset = sum(len(s) + 1 for s in lines[: line - 1]) + col
    return any(start <= offset < end for start, end in spans)
