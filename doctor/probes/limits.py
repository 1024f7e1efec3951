"""How large and how deeply nested a user's file may be before a parser reads it.

The probes that parse whole files (configs, notebooks, scripts, model JSON files) read them
through these checks, so a broken or hostile file (a 10 GB "config", an array nested 100,000
deep) becomes a located finding instead of a hang, a multi-GB allocation or a RecursionError.
Each check raises `Refusal`; the probe turns its `kind` into its own knowledge entry.
"""
from __future__ import annotations

import io
import os
import json
import re

import orjson
from pathlib import Path
from typing import Any

MiB = 1 << 20

# Arrays/objects (JSON) or sequences/mappings (YAML) nested deeper than this are refused.
# Real files nest far less (a chat row with multimodal parts: 5 levels; tokenizer.json: about
# 6). The bound keeps recursive code (json's decoder, PyYAML's constructor, our YAML converter
# at 2 frames a level, our lenient JSON parser at 4) far below Python's default recursion
# limit of 1000 frames.
MAX_NESTING = 100

# Whole-file reads. Each limit is far above real files of its kind and keeps the parser's own
# memory (several times the file) near a gigabyte at most.
CONFIG_MAX_BYTES = 64 * MiB          # training configs are a few KB
MODEL_JSON_MAX_BYTES = 64 * MiB      # config.json, adapter_config.json, the shard index,
                                     # tokenizer_config.json: KBs to a few MB
TOKENIZER_JSON_MAX_BYTES = 256 * MiB  # tokenizer.json: about 35 MB for a 262k-token vocabulary
NOTEBOOK_MAX_BYTES = 256 * MiB       # outputs hold images (tens of MB happen); GitHub refuses
                                     # files over 100 MiB
SCRIPT_MAX_BYTES = 2 * MiB           # Python source: ast needs about 250 bytes of memory per
                                     # byte of source (measured: a 22 MB file took 5 GB, 60 s)

# Datasets are streamed whatever their size, but one JSONL line is held whole while it is
# parsed (about three times its size in memory). A record is text for a context of at most a
# few million tokens (tens of MB, even with images inlined as base64); a longer line is
# skipped unread, a MiB at a time, and reported.
DATASET_LINE_MAX_BYTES = 256 * MiB

# Values of a YAML document once its aliases are expanded. Composing and converting them costs
# about 22 µs and 700 bytes a value (measured: 5 million took 110 s and 3.4 GB); a training
# config has hundreds.
YAML_MAX_NODES = 100_000

# Refusal kinds; each probe maps them to its own entries.
TOO_LARGE = "too-large"              # bytes, or values of a YAML document
TOO_DEEP = "too-deep"
ALIAS_BOMB = "alias-bomb"            # YAML aliases expand past the value budget
RECURSIVE_ALIAS = "recursive-alias"  # a YAML alias inside the node it names


class Refusal(Exception):
    """The input is refused before parsing; `line`/`column` (1-based) say where."""

    def __init__(self, kind: str, line: int | None, column: int | None, values: dict[str, Any]) -> None:
        super().__init__(f"{kind} at {line}:{column}")
        self.kind = kind
        self.line = line
        self.column = column
        self.values = values


def human_bytes(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


def too_large(size: int, limit: int) -> Refusal:
    return Refusal(TOO_LARGE, 1, 1, {"size": human_bytes(size), "limit": human_bytes(limit)})


def check_size(data: str | bytes, limit: int) -> None:
    """Text already in memory (kb examples, notebook cells) against a file limit."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > limit:
        raise too_large(size, limit)


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The file's bytes; one larger than `limit` is refused before it is read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise too_large(size, limit)
        data = f.read(limit + 1)   # a file that grew, or a device that reports size 0
    if len(data) > limit:
        raise too_large(len(data), limit)
    return data


def read_text(path: str | Path, limit: int, errors: str = "strict") -> str:
    """As Path.read_text(encoding="utf-8") (universal newlines too), with a size limit."""
    return io.TextIOWrapper(io.BytesIO(read_bytes(path, limit)), encoding="utf-8", errors=errors).read()


_CONTAINERS = (list, dict)
_UNPARSED = object()
# A JSON string (escapes included), or one bracket outside strings.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def check_json_nesting(text: str, limit: int = MAX_NESTING) -> None:
    """Refuse JSON text whose arrays/objects nest deeper than `limit`, at the bracket that
    opens the first level past it. Linear, and never recursive."""
    if text.count("[") + text.count("{") <= limit:
        return   # too few brackets to nest that deep: most files stop here
    # At C speed: orjson parses (it stops at 1024 levels itself, with an error, not a crash),
    # and the parsed value's depth is walked level by level. Notebooks stop here.
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:   # not JSON (the caller's parser says so), or deeper than 1024
        parsed = _UNPARSED
    if parsed is not _UNPARSED and not nests_deeper(parsed, limit):
        return
    depth = 0
    for m in _TOKEN.finditer(text):   # only for a file that may be too deep: find the place
        ch = text[m.start()]
        if ch == '"':
            continue
        depth += 1 if ch in "[{" else -1
        if depth > limit:
            line, column = position(text, m.start())
            raise Refusal(TOO_DEEP, line, column, {"limit": limit})


def load_json(text: str, limit: int = MAX_NESTING) -> Any:
    """The parsed JSON text, refused (Refusal, at the place) when it nests deeper than
    `limit`; ValueError when it is not JSON. One parse serves the check and the caller."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        check_json_nesting(text, limit)        # too deep raises here, located
        return json.loads(text)                # what orjson refuses but Python reads (NaN)
    if nests_deeper(value, limit):
        check_json_nesting(text, limit)        # locates it
    return value


def nests_deeper(value: Any, limit: int = MAX_NESTING) -> bool:
    """Do the lists and dicts of a parsed value nest deeper than `limit`? Walked one level at a
    time (never recursive); only containers are kept for the next level."""
    if type(value) not in _CONTAINERS:
        return False
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if type(item) is dict else item) if type(c) in _CONTAINERS]
        level = below
    return False


def position(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of offset `pos`."""
    return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
