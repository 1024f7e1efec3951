"""Diagnose a JSON record that a strict parser refused, and parse it leniently where safe.

One hand-written parser does both jobs: it reads JSON plus the usual mistakes (single quotes,
trailing commas, comments, NaN, Python literals, stray backslashes, raw control characters),
records each mistake with its column, and returns the value it would have meant. Mistakes it
cannot read past (an unterminated string, two objects on one line) stop it with a located
issue. It only runs on lines the fast strict parser rejected, so clarity beats speed here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from doctor.probes.limits import MAX_NESTING

# Entry ids of knowledge/dataset.yaml this module reports.
SINGLE_QUOTES = "DATA-JSON-SINGLE-QUOTES"
TRAILING_COMMA = "DATA-JSON-TRAILING-COMMA"
COMMENT = "DATA-JSON-COMMENT"
NAN = "DATA-JSON-NAN"
PYTHON_LITERAL = "DATA-JSON-PYTHON-LITERAL"
BAD_ESCAPE = "DATA-JSON-BAD-ESCAPE"
CONTROL_CHAR = "DATA-JSON-RAW-CONTROL-CHAR"
BOM = "DATA-FILE-BOM"
TWO_VALUES = "DATA-JSON-TWO-OBJECTS"
UNTERMINATED = "DATA-JSON-UNTERMINATED"
INVALID = "DATA-JSON-INVALID"
TOO_DEEP = "DATA-NESTING-TOO-DEEP"

EMPTY_RECORD = "the record is empty"
_WS = " \t\r\n"
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN = {'"': re.compile(r'[^"\\\x00-\x1f]+'), "'": re.compile(r"[^'\\\x00-\x1f]+")}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_CONTROL_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}


@dataclass(frozen=True)
class SyntaxIssue:
    entry_id: str
    pos: int                 # 0-based offset in the record text
    detail: str = ""
    repairable: bool = True


@dataclass
class Diagnosis:
    """What the lenient parser made of a record: a value (when readable) and every issue."""

    value: Any = None
    issues: list[SyntaxIssue] = field(default_factory=list)
    fatal: SyntaxIssue | None = None

    @property
    def repairable(self) -> bool:
        return self.fatal is None

    def without_fatal(self) -> "Diagnosis":
        """The same issues without the fatal one (for text that is only comments)."""
        return Diagnosis(self.value, self.issues, None)


class _Stop(Exception):
    def __init__(self, issue: SyntaxIssue) -> None:
        super().__init__(issue.detail)
        self.issue = issue


def _describe(ch: str) -> str:
    if ch in _CONTROL_NAMES:
        return _CONTROL_NAMES[ch]
    if ch < " " or ch == "\x7f":
        return f"control character U+{ord(ch):04X}"
    return repr(ch)


class _Parser:
    def __init__(self, text: str, max_depth: int = MAX_NESTING) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        self.issues: list[SyntaxIssue] = []
        # Each level costs four Python frames here: past the limit the record is refused
        # rather than the recursion limit reached (orjson refused it before us past 1024).
        self.depth = 0
        self.max_depth = max_depth

    def note(self, entry_id: str, pos: int, detail: str = "") -> None:
        self.issues.append(SyntaxIssue(entry_id, pos, detail))

    def stop(self, entry_id: str, pos: int, detail: str) -> None:
        raise _Stop(SyntaxIssue(entry_id, pos, detail, repairable=False))

    # -- whitespace and comments -------------------------------------------------------
    def ws(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in _WS:
                self.i += 1
            elif c == "/" and s.startswith("//", self.i) or c == "#":
                self.note(COMMENT, self.i, "line comment")
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end
            elif c == "/" and s.startswith("/*", self.i):
                end = s.find("*/", self.i + 2)
                if end < 0:
                    self.stop(UNTERMINATED, self.i, "a /* comment that is never closed")
                self.note(COMMENT, self.i, "block comment")
                self.i = end + 2
            else:
                return

    # -- values --------------------------------------------------------------------------
    def value(self) -> Any:
        self.ws()
        if self.i >= self.n:
            self.stop(UNTERMINATED, self.i, "the record ends where a value was expected")
        c = self.s[self.i]
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c == '"':
            return self.string('"')
        if c == "'":
            self.note(SINGLE_QUOTES, self.i)
            return self.string("'")
        return self.bare()

    def bare(self) -> Any:
        s, i = self.s, self.i
        for word, val in (("true", True), ("false", False), ("null", None)):
            if s.startswith(word, i):
                self.i += len(word)
                return val
        for word, val in (("NaN", math.nan), ("-Infinity", -math.inf), ("Infinity", math.inf),
                          ("+Infinity", math.inf), ("-NaN", math.nan)):
            if s.startswith(word, i):
                self.note(NAN, i, word)
                self.i += len(word)
                return None  # NaN has no JSON spelling; null is what pandas meant by it
        for word, val in (("True", True), ("False", False), ("None", None)):
            if s.startswith(word, i):
                self.note(PYTHON_LITERAL, i, word)
                self.i += len(word)
                return val
        m = _NUMBER.match(s, i)
        if m and m.end() > i:
            self.i = m.end()
            text = m.group()
            return float(text) if any(ch in text for ch in ".eE") else int(text)
        m = _LOOSE_NUMBER.match(s, i)
        if m and m.end() > i:
            self.stop(INVALID, i, f"the number {m.group()!r} is not valid JSON")
        self.stop(INVALID, i, f"unexpected {_describe(s[i])} where a value was expected")
        return None  # unreachable

    def obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {}

        def member(start: int) -> None:
            c = self.s[self.i]
            if c == '"':
                key = self.string('"')
            elif c == "'":
                self.note(SINGLE_QUOTES, self.i)
                key = self.string("'")
            else:
                self.stop(INVALID, self.i, f"expected a quoted key but found {_describe(c)}")
            self.ws()
            if self.i >= self.n:
                self.stop(UNTERMINATED, start, "this object is not closed before the record ends")
            if self.s[self.i] != ":":
                self.stop(INVALID, self.i, f"expected ':' after the key {key!r}")
            self.i += 1
            out[key] = self.value()

        self.items("}", "object", member)
        return out

    def arr(self) -> list[Any]:
        out: list[Any] = []
        self.items("]", "array", lambda start: out.append(self.value()))
        return out

    def items(self, close: str, what: str, item: Callable[[int], None]) -> None:
        """The comma-separated members of an object or array, from its opening bracket to
        `close`; `item` reads one member (it gets the opening bracket's position)."""
        start = self.i
        self.depth += 1
        if self.depth > self.max_depth:
            self.stop(TOO_DEEP, start, f"this {what} opens {self.depth} levels deep; records are read "
                      f"to {self.max_depth} levels")
        self.i += 1
        comma_at = -1
        first = True
        while True:
            self.ws()
            if self.i >= self.n:
                self.stop(UNTERMINATED, start, f"this {what} is not closed before the record ends")
            c = self.s[self.i]
            if c == close:
                if comma_at >= 0:
                    self.note(TRAILING_COMMA, comma_at, f"before the closing '{close}'")
                self.i += 1
                self.depth -= 1
                return
            if not first and comma_at < 0:
                self.stop(INVALID, self.i, f"expected ',' or '{close}' but found {_describe(c)}")
            item(start)
            first = False
            self.ws()
            comma_at = -1
            if self.i < self.n and self.s[self.i] == ",":
                comma_at = self.i
                self.i += 1

    def string(self, quote: str) -> str:
        start = self.i
        self.i += 1
        s, n = self.s, self.n
        plain = _PLAIN[quote]
        parts: list[str] = []
        while True:
            m = plain.match(s, self.i)
            if m:
                parts.append(m.group())
                self.i = m.end()
            if self.i >= n:
                self.stop(UNTERMINATED, start, "this string is never closed (a missing quote, "
                          "or a line break inside the text)")
            c = s[self.i]
            if c == quote:
                self.i += 1
                return "".join(parts)
            if c == "\\":
                parts.append(self.escape(quote))
                continue
            # A raw control character: JSON wants it escaped; the value it meant is plain.
            self.note(CONTROL_CHAR, self.i, _describe(c))
            parts.append(c)
            self.i += 1

    def escape(self, quote: str) -> str:
        s, i = self.s, self.i
        nxt = s[i + 1] if i + 1 < self.n else ""
        if nxt in _ESCAPES and nxt:
            self.i += 2
            return _ESCAPES[nxt]
        if nxt == "'" and quote == "'":
            self.i += 2
            return "'"
        if nxt == "u" and _HEX4.match(s, i + 2):
            self.i += 6
            code = int(s[i + 2:i + 6], 16)
            if 0xD800 <= code < 0xDC00 and s.startswith("\\u", self.i) and _HEX4.match(s, self.i + 2):
                low = int(s[self.i + 2:self.i + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    self.i += 6
                    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            return chr(code)
        # A lone backslash (a Windows path, a regex, LaTeX): keep it as the text meant it.
        # \x41, \u12, \a, \v, \0, \N{..}, \U.. may instead be Python escapes: say so, and let
        # the repair leave them to a person.
        detail = "\\" + nxt if nxt else "\\ at the end"
        ambiguous = nxt in ("x", "u", "a", "v", "0", "N", "U")
        self.issues.append(SyntaxIssue(BAD_ESCAPE, i, detail + (" (a Python escape or a literal backslash?)"
                                                                if ambiguous else ""), not ambiguous))
        self.i += 1
        return "\\"


def diagnose(text: str, max_depth: int = MAX_NESTING) -> Diagnosis:
    """Parse `text` leniently; report every mistake with its offset."""
    p = _Parser(text, max_depth)
    if text.startswith("\ufeff"):
        p.note(BOM, 0)
        p.i = 1
    try:
        p.ws()
        if p.i >= p.n:
            return Diagnosis(None, p.issues, SyntaxIssue(INVALID, 0, EMPTY_RECORD, False))
        value = p.value()
        p.ws()
        if p.i < p.n:
            c = p.s[p.i]
            if c in "{[":
                p.stop(TWO_VALUES, p.i, "a second JSON value starts here")
            p.stop(INVALID, p.i, f"unexpected {_describe(c)} after the end of the record")
    except _Stop as stop:
        return Diagnosis(None, p.issues, stop.issue)
    return Diagnosis(value, p.issues, None)


def only_comments(d: Diagnosis) -> bool:
    """The text held comments and nothing else (between array elements: no record)."""
    return (d.fatal is not None and d.fatal.detail == EMPTY_RECORD and bool(d.issues)
            and all(issue.entry_id == COMMENT for issue in d.issues))


def line_col(text: str, pos: int) -> tuple[int, int]:
    """0-based line offset and 1-based column (in characters) of `pos` in `text`."""
    line = text.count("\n", 0, pos)
    start = text.rfind("\n", 0, pos) + 1
    return line, pos - start + 1
