"""Undo what terminals, notebooks, GitHub and torchrun do to a log line.

Each raw line becomes one `LogLine` with its original number, so evidence still points at
the line the user pasted.
"""
from __future__ import annotations

import re2

from doctor.results.explain import LogLine

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks), lone escapes.
_ANSI = re2.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# torchrun's per-rank prefixes: `[rank1]:` (torch >= 2.2) and `[default1]:` (--tee).
_RANK = re2.compile(r"^\[(?:rank|default)(\d+)\]:\s?")
# Python 3.11 exception groups draw `  | ` bars and `  +-+---- 1 ----` separators.
_GROUP_BAR = re2.compile(r"^\s*(?:\| ?)+|^\s*\+-+\+?-*(?: \d+ -*)?$|^\s*\+ (?:Exception Group Traceback)")
# Notebook output pasted as HTML: `<pre ...><span style="...">OutOfMemoryError</span>...`
_TAG = re2.compile(r"</?(?:span|pre|div|a|code|b|i|br|p|font)\b[^<>]*>")
# tqdm: `  3%|▎         | 12/400 [00:05<02:40,  2.41it/s]` possibly glued to what follows.
_PROGRESS = re2.compile(r"^\s*(?:[^|\n]{0,80}: )?\d{1,3}%\|[^|]{0,200}\|[^\[\n]{0,60}\[[^\]\n]{0,100}\]")


def clean_lines(raw: list[tuple[int, str]]) -> list[LogLine]:
    return [clean_line(no, text) for no, text in raw]


def clean_line(no: int, text: str) -> LogLine:
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        text = _last_update(text)
    text = _unquote(text)
    if text[:1] in (" ", "|", "+") and (m := _GROUP_BAR.search(text)):
        cut = m.end() - len("Exception Group Traceback") if m.group().endswith("Traceback") else m.end()
        text = text[cut:]
    rank = None
    if text.startswith("[") and (m := _RANK.search(text)):
        rank = int(m.group(1))
        text = text[m.end():]
    if "%|" in text and (m := _PROGRESS.search(text)) and m.end() < len(text):
        text = text[m.end():]   # keep what was printed after the bar, drop the bar
    if "<" in text and ("</" in text or "<br" in text) and _TAG.search(text):
        text = _TAG.sub("", text)
    if "&" in text and ";" in text:
        import html   # rare: tracebacks copied from rendered HTML; keep start-up light

        text = html.unescape(text)
    return LogLine(no, text.rstrip(), rank)


def _last_update(text: str) -> str:
    """A carriage-return line shows only its last non-empty update on screen."""
    for part in reversed(text.split("\r")):
        if part.strip():
            return part
    return ""


def _unquote(text: str) -> str:
    """Drop GitHub/e-mail quote markers (`> `, `> > `), but not a `>>>` prompt."""
    stripped = text.lstrip(" ")
    if not stripped.startswith(">") or stripped.startswith(">>>"):
        return text
    while stripped.startswith(">") and not stripped.startswith(">>>"):
        stripped = stripped[1:]
        if stripped.startswith(" "):
            stripped = stripped[1:]
    return stripped
