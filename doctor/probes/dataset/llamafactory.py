"""LLaMA-Factory's own spellings inside chat rows: v1 content parts ({"type", "value"}) and
multimodal markers (<image>, <video>, <audio>) that stand for the items of a media column."""
from __future__ import annotations

from typing import Any

from doctor.probes.dataset.hits import Hits

LF_PARTS = "DATA-LF-CONTENT-PARTS"
LF_IMAGE_MARKERS = "DATA-LF-IMAGE-MARKERS"
LF_MEDIA_COUNT = "DATA-LF-MEDIA-COUNT"
# LLaMA-Factory v1 parts that hold text under "value" (its media parts hold a path there).
LF_TEXT_PARTS = frozenset({"text", "reasoning", "tool_call"})


def part_text(part: Any) -> str:
    """The text of one content part: trl's {"type": "text", "text": ...}, or LLaMA-Factory v1's
    {"type": "text" | "reasoning" | "tool_call", "value": ...}."""
    if type(part) is not dict:
        return ""
    text = part.get("text")
    if type(text) is str:
        return text
    value = part.get("value")
    return value if type(value) is str and part.get("type") in LF_TEXT_PARTS else ""


def lf_value_parts(content: Any) -> bool:
    """Content parts in LLaMA-Factory v1's spelling ("value", no "text")."""
    return type(content) is list and any(
        type(p) is dict and "value" in p and "text" not in p for p in content)


# LLaMA-Factory's media columns and the marker each item stands for in the text
# (src/llamafactory/data/mm_plugin.py:189-216 _validate_messages).
MEDIA_MARKERS = (("images", "<image>"), ("videos", "<video>"), ("audios", "<audio>"))


def check_media_markers(obj: dict[str, Any], texts: list[str], line: int, col: int | None, field: str,
                        hits: Hits) -> None:
    """<image>/<video>/<audio> markers with a media column: LLaMA-Factory's multimodal rows,
    whose marker count must equal the column's item count."""
    seen = False
    for column, marker in MEDIA_MARKERS:
        if column not in obj:
            continue
        markers = sum(text.count(marker) for text in texts)
        items = obj[column]
        count = len(items) if type(items) is list else int(items is not None)
        if markers:
            seen = True
        if markers and markers != count:
            hits.add(LF_MEDIA_COUNT, line, col, field=field, media=column, marker=marker,
                     markers=markers, items=count)
    if seen:
        hits.add(LF_IMAGE_MARKERS, line, col, field=field)
