"""Find where the text checks could fire in a buffer of JSON lines, at close to memchr speed.

The text checks (control characters, U+FFFD, mojibake, pasted template tokens, unfilled slots) are slow per
string, and almost every row passes them. So they run only on rows that hold one of the byte
patterns below. Each pattern starts with one fixed byte, which lets RE2 skip ahead with memchr;
one alternation of all of them would be ten times slower. Patterns for bytes that are common
in some languages run only when that byte occurs at all. A row is inspected iff it contains a
match itself, so whether it is checked never depends on its neighbours.
"""
from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Sequence

import re2

_LATIN1 = re2.Options()
_LATIN1.encoding = re2.Options.Encoding.LATIN1  # match bytes, not UTF-8 characters

_ALWAYS = [re2.compile(p, _LATIN1) for p in (
    # Escaped control characters (\u0000-\u001f, DEL, C1), U+FFFD, Ã/Â, and \b \f \r.
    rb"\\(?:u00[01cC89][0-9a-fA-F]|u00[d-fD-F][0-9a-fA-F]\\u|u007[fF]|u[fF][fF][fF][dD]|[bfr])",
)]
# (gate byte, pattern): the pattern only runs where the gate byte occurs, found with memchr.
_GATED = [(gate, re2.compile(p, _LATIN1)) for gate, p in (
    (b"<", rb"<(?:\||/?s>|start_of_turn>|end_of_turn>|bos>|eos>)"),   # chat-template tokens
    (b"[", rb"\[/?INST\]"),
    (b"\x7f", rb"\x7f"),                                  # DEL, raw
    (b"\xc2", rb"\xc2[\x80-\x9f]"),                      # C1 controls
    # mojibake: a UTF-8 lead byte read as cp1252 (Ã..ô), then a continuation byte read so
    (b"\xc3", rb"\xc3[\x82-\xb4](?:\xc2[\x80-\xbf]|\xc5[\x92\x93\xa0\xa1\xb8\xbd\xbe]|\xc6\x92|"
              rb"\xcb[\x86\x9c]|\xe2(?:\x80[\x93-\xba]|\x82\xac|\x84\xa2))"),
    (b"{", rb"\{\{\s*[A-Za-z_]|\{[A-Za-z_][A-Za-z0-9_]{2,}\}"),   # unfilled template slots
    (b"\xef", rb"\xef\xbf\xbd"),                          # U+FFFD, raw
)]


def suspect(buf: bytes) -> bool:
    """Does this (one row's) text need the text checks?"""
    for rx in _ALWAYS:
        if rx.search(buf):
            return True
    return any(gate in buf and rx.search(buf) for gate, rx in _GATED)


def suspect_rows(rows: Sequence[bytes]) -> set[int]:
    """Indexes of the rows that need the text checks, scanning them joined as one buffer."""
    buf = b"".join(rows)
    offsets: list[int] = []
    for rx in _ALWAYS:
        offsets.extend(m.start() for m in rx.finditer(buf))
    for gate, rx in _GATED:
        if gate in buf:
            offsets.extend(m.start() for m in rx.finditer(buf))
    if not offsets:
        return set()
    ends = list(accumulate(map(len, rows)))
    return {bisect_right(ends, at) for at in offsets}
