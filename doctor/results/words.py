"""Counted nouns in the messages code builds: "1 row", "2 rows", never "1 rows" or "row(s)"."""
from __future__ import annotations

_IRREGULAR = {"entry": "entries", "match": "matches", "GPU matmul": "GPU matmuls"}


def plural(word: str) -> str:
    return _IRREGULAR.get(word, word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou"
                          else word + "s")


def counted(n: int, word: str, many: str | None = None) -> str:
    """`n` and the noun in the number that agrees with it (`many` for an irregular plural)."""
    return f"{n} {word if n == 1 else many or plural(word)}"


_SHOWN_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def visible(text: str) -> str:
    """A marker as people type it: a line break shown as \\n (tab \\t, CR \\r), so a message
    that quotes it stays on one line and says exactly what was looked for."""
    return "".join(_SHOWN_ESCAPES.get(ch, ch) for ch in text)
