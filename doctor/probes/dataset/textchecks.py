"""Detectors for two text problems, pure functions over one string: mojibake (UTF-8 text
decoded as Windows-1252 or Latin-1) and unfilled prompt-template placeholders."""
from __future__ import annotations

import re

# Characters a UTF-8 continuation byte (0x80-0xBF) becomes when decoded as Windows-1252 or
# Latin-1: U+0080-U+00BF, and the 27 Windows-1252 characters that replace 0x80-0x9F.
_CONTINUATION_CHARS = ("\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                       "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a"
                       "\u20ac\u2122")
# A UTF-8 lead byte (0xC2-0xF4) as Windows-1252/Latin-1, then continuation bytes: the shape
# every mis-decoded non-ASCII character takes (é -> Ã©, ’ -> â€™, 中 -> ä¸­, т -> Ñ‚).
_MOJIBAKE_RUN = re.compile(f"[\u00c2-\u00f4][{_CONTINUATION_CHARS}]+")
# Which characters a lead byte's mis-decoding yields, by sequence length, where they are
# plausible text: rules out "ß“" (U+07D3) and other chance pairs of real Latin-1 text.
_PLAUSIBLE = ((0x80, 0x590), (0x5D0, 0x700), (0x800, 0xD800), (0xE000, 0xFFFE), (0x10000, 0x110000))
# C1 controls: Windows-1252 text (’ = 0x92) decoded as Latin-1.
_C1 = re.compile("[\u0080-\u009f]")


def _as_cp1252_byte(ch: str) -> int:
    try:
        return ch.encode("cp1252")[0]
    except UnicodeEncodeError:
        return ord(ch)   # U+0080-U+00FF: Latin-1 (cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined)


def mojibake_at(text: str) -> tuple[int, int] | None:
    """(start, end) of the first run of characters that is UTF-8 read as Windows-1252 or
    Latin-1: its bytes in that code page decode as UTF-8 to one plausible character."""
    for m in _MOJIBAKE_RUN.finditer(text):
        run = m.group()
        lead = ord(run[0])
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if len(run) < size:
            continue
        try:
            decoded = bytes(map(_as_cp1252_byte, run[:size])).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(lo <= ord(decoded) < hi for lo, hi in _PLAUSIBLE):
            return m.start(), m.start() + size
    at = text.find("â€")   # ” is â€ and 0x9D, a byte Windows-1252 leaves undefined (often dropped)
    if at >= 0:
        return at, at + 2
    m = _C1.search(text)
    return (m.start(), m.end()) if m else None


# {{ name }} (Jinja, Mustache, LLaMA-Factory's identity data) and {name} (str.format): a prompt
# template's slot that nobody filled. Not {0}, not {} (positional), not LaTeX (\frac{ab}{cd},
# x^{abc}), not a Python dict or set literal ({name: 1}), not a JSON object ({"a": 1}).
_DOUBLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
# A slot's name is a word of two letters or more, maybe snake_case: not {x_n} (a sequence).
_SINGLE = re.compile(r"(?<![\\\w$^_{}%#@'\"])\{([A-Za-z][A-Za-z0-9]+(?:_[A-Za-z0-9]+)*)\}(?![}'\"])")
# Text that is or quotes code, templates or math: braces there are its syntax, not a slot.
_CODE = re.compile(r"^\s*\w+\s*=\s*['\"\[{\d]|```|\{%|</?[A-Za-z][\w-]*[ />]|\bdef |=>|;\s*$|\breturn\b|\bfunction\b|\bprint\(|"
                   r"\.format\(|\bf[\"']|\$|\\[A-Za-z]+\{|\bconst |\blet |\bvar |::|\w\.\w+\(|"
                   r"\bfor \w+ in\b", re.M)


def placeholder_at(text: str) -> str | None:
    """An unfilled template slot in training text ({{name}} or {name}), if there is one."""
    if "{" not in text:
        return None
    m = _DOUBLE.search(text) or _SINGLE.search(text)
    if m is None or _CODE.search(text):
        return None
    return m.group()
