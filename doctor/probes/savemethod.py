"""The save_method values Unsloth's merged save accepts, and the one a typo meant.

unsloth 2026.10.9, unsloth/save.py: `save_pretrained_merged` / `push_to_hub_merged` lower-case
the value and turn spaces into underscores (line 1416), then raise "You must select one of 3
options" for anything but "lora", "merged_16bit" or "merged_4bit" (line 1418);
"merged_4bit_forced" is turned into "merged_4bit" before (line 1385). Compressed exports
(fp8, int8, w8a8, torchao...: COMPRESSED_EXPORT_SCHEMES line 205, TORCHAO_EXPORT_SCHEMES line
239, near misses raised at line 562) take other paths: a value naming one is never judged here.
"""
from __future__ import annotations

import difflib
from typing import Any

ACCEPTED = ("lora", "merged_16bit", "merged_4bit", "merged_4bit_forced")
_OTHER_PATHS = ("fp8", "fp4", "mxfp", "nvfp", "w4a", "w8a", "int4", "int8", "torchao")


def unknown(value: Any) -> bool:
    """Unsloth's merged save raises for this value."""
    if not isinstance(value, str):
        return False
    key = value.lower().replace(" ", "_")
    return key not in ACCEPTED and not any(tag in key.replace("-", "_") for tag in _OTHER_PATHS)


def intended(value: str) -> str | None:
    """The accepted value a misspelt one is closest to, when one clearly is and it names the
    same bit width ("merged_8bit" meant no accepted value)."""
    key = value.lower().strip().replace(" ", "_").replace("-", "_")
    match = difflib.get_close_matches(key, ACCEPTED, n=2, cutoff=0.75)
    if not match or _digits(match[0]) != _digits(key):
        return None
    if len(match) == 2 and _ratio(key, match[1]) == _ratio(key, match[0]):
        return None
    return match[0]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()
