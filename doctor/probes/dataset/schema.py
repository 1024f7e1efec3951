"""Which dataset format a record is in, decided from its keys.

The formats are the ones Unsloth's docs and TRL accept
(https://unsloth.ai/docs/basics/datasets-guide): raw text, Alpaca-style instruct,
prompt/completion, conversational `messages`, ShareGPT `conversations`, and preference
data. Classification looks only at the key set, so it is cached per key tuple.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

ALPACA = "alpaca"
TEXT = "text"
PROMPT_COMPLETION = "prompt-completion"
MESSAGES = "messages"
SHAREGPT = "sharegpt"
PREFERENCE = "preference"
UNKNOWN = "unknown"

# For each format, the fields that must hold text, and fields that may be absent.
REQUIRED: dict[str, tuple[str, ...]] = {
    ALPACA: ("instruction", "output"),
    TEXT: ("text",),
    PROMPT_COMPLETION: ("prompt", "completion"),
    MESSAGES: ("messages",),
    SHAREGPT: ("conversations",),
    PREFERENCE: ("chosen", "rejected"),
    UNKNOWN: (),
}
OPTIONAL_TEXT: dict[str, tuple[str, ...]] = {ALPACA: ("input", "system"), PREFERENCE: ("prompt",)}

CHAT_FORMATS = frozenset({MESSAGES, SHAREGPT})


@dataclass(frozen=True)
class RecordSchema:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # Required fields this key set lacks (a record that is almost Alpaca, etc.).
    missing: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def classify(keys: tuple[str, ...]) -> RecordSchema:
    """The format whose distinguishing keys this record has; partial matches keep the name."""
    ks = set(keys)

    def make(name: str) -> RecordSchema:
        req = REQUIRED[name]
        return RecordSchema(name, req, OPTIONAL_TEXT.get(name, ()), tuple(f for f in req if f not in ks))

    if "messages" in ks:
        return make(MESSAGES)
    if "conversations" in ks:
        return make(SHAREGPT)
    if "chosen" in ks or "rejected" in ks:
        return make(PREFERENCE)
    if "instruction" in ks or ("input" in ks and "output" in ks):
        return make(ALPACA)
    if "completion" in ks or ("prompt" in ks and "text" not in ks):
        return make(PROMPT_COMPLETION)
    if "text" in ks:
        return make(TEXT)
    if "output" in ks:
        return make(ALPACA)
    return make(UNKNOWN)
