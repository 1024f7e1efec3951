"""Which dataset format a record is in, decided from its keys.

The formats are the ones Unsloth's docs and TRL accept
(https://unsloth.ai/docs/basics/datasets-guide): raw text, Alpaca-style instruct,
prompt/completion, conversational `messages`, ShareGPT `conversations`, and preference
data (paired, and unpaired KTO). Classification looks only at the key set, so it is cached per
key tuple. The order follows trl 1.15.0: preference keys first (trl/data_utils.py:180-188, the
key sets apply_chat_template accepts), then "messages", then "prompt" before the text field
(trl/trainer/sft_trainer.py:1320, 1370), whose default name is "text"
(trl/trainer/sft_config.py:179): a row with "text" trains on it whatever else it holds.
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
KTO = "kto"
# LLaMA-Factory v1's preference rows: two whole conversations (its data/v1_dpo_demo.jsonl).
LF_PREFERENCE = "llamafactory-v1-preference"
UNKNOWN = "unknown"

# For each format, the fields that must hold text, and fields that may be absent.
REQUIRED: dict[str, tuple[str, ...]] = {
    ALPACA: ("instruction", "output"),
    TEXT: ("text",),
    PROMPT_COMPLETION: ("prompt", "completion"),
    MESSAGES: ("messages",),
    SHAREGPT: ("conversations",),
    PREFERENCE: ("chosen", "rejected"),
    KTO: ("prompt", "completion", "label"),
    LF_PREFERENCE: ("chosen_messages", "rejected_messages"),
    UNKNOWN: (),
}
OPTIONAL_TEXT: dict[str, tuple[str, ...]] = {ALPACA: ("input", "system"), PREFERENCE: ("prompt",)}

CHAT_FORMATS = frozenset({MESSAGES, SHAREGPT})
# Columns that hold a KTO row's desirable/undesirable flag: trl's "label", LLaMA-Factory's "kto_tag".
KTO_LABELS = ("label", "kto_tag")
# Where a conversation can sit; LLaMA-Factory keeps ranking and KTO prompts in them too.
CHAT_FIELDS = ("messages", "conversations")


@dataclass(frozen=True)
class RecordSchema:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # Required fields this key set lacks (a record that is almost Alpaca, etc.).
    missing: tuple[str, ...] = ()
    # The field holding a list of turns that check_chat reads, if any.
    chat_field: str | None = None
    # The columns that decided the format, as the report names them.
    decided_by: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def classify(keys: tuple[str, ...]) -> RecordSchema:
    """The format whose distinguishing keys this record has; partial matches keep the name."""
    ks = set(keys)
    chat = next((f for f in CHAT_FIELDS if f in ks), None)

    def make(name: str, required: tuple[str, ...] | None = None) -> RecordSchema:
        req = REQUIRED[name] if required is None else required
        optional = OPTIONAL_TEXT.get(name, ())
        deciding = tuple(k for k in keys if k in req or k in optional or k == chat and name == PREFERENCE)
        return RecordSchema(name, req, optional, tuple(f for f in req if f not in ks),
                            chat if name in CHAT_FORMATS or chat in req or name == PREFERENCE else None,
                            deciding)

    if "chosen" in ks or "rejected" in ks:
        return make(PREFERENCE)
    if "chosen_messages" in ks or "rejected_messages" in ks:
        return make(LF_PREFERENCE)
    label = next((f for f in KTO_LABELS if f in ks), None)
    if label and chat:   # LLaMA-Factory's KTO rows: the answer is the conversation's last turn
        return make(KTO, (chat, label))
    if label and "completion" in ks:
        return make(KTO, ("prompt", "completion", label))
    if chat == "messages":
        return make(MESSAGES)
    if chat == "conversations":
        return make(SHAREGPT)
    if "completion" in ks or ("prompt" in ks and "text" not in ks):
        return make(PROMPT_COMPLETION)
    if "text" in ks:
        return make(TEXT)
    if "instruction" in ks or "output" in ks:
        return make(ALPACA)
    return make(UNKNOWN)
