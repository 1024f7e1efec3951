"""Checks on one parsed record: required fields, text hygiene, and conversation shape.

All functions are pure apart from `hits.add`. They run on every row, so the common case
(a well-formed record) takes the shortest path.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from doctor.probes.dataset.hits import Hits
from doctor.probes.dataset.llamafactory import LF_PARTS, check_media_markers, lf_value_parts, part_text
from doctor.probes.dataset.textchecks import mojibake_at, placeholder_at
from doctor.probes.dataset.schema import KTO_LABELS, MESSAGES, PREFERENCE, SHAREGPT, TEXT, UNKNOWN, RecordSchema

FIELD_MISSING = "DATA-FIELD-MISSING"
FIELD_NULL = "DATA-FIELD-NULL"
FIELD_TYPE = "DATA-FIELD-TYPE"
FIELD_EMPTY = "DATA-FIELD-EMPTY"
CONTROL_CHARS = "DATA-TEXT-CONTROL-CHARS"
REPLACEMENT_CHAR = "DATA-TEXT-REPLACEMENT-CHAR"
MOJIBAKE = "DATA-TEXT-MOJIBAKE"
CRLF = "DATA-TEXT-CRLF"
PLACEHOLDER = "DATA-TEXT-PLACEHOLDER"
SHAREGPT_UNMAPPED = "DATA-SHAREGPT-UNMAPPED-ROLE"
TEMPLATE_TOKENS = "DATA-CHAT-TEMPLATE-TOKENS"
SHAREGPT_ROLES = "DATA-CHAT-SHAREGPT-ROLES"
ROLE_UNKNOWN = "DATA-CHAT-ROLE-UNKNOWN"
NOT_ALTERNATING = "DATA-CHAT-NOT-ALTERNATING"
SYSTEM_NOT_FIRST = "DATA-CHAT-SYSTEM-NOT-FIRST"
NO_ASSISTANT = "DATA-CHAT-NO-ASSISTANT"
EMPTY_TURN = "DATA-CHAT-EMPTY-TURN"
BAD_TURN = "DATA-CHAT-BAD-TURN"

# unsloth_zoo/dataset_utils.py:2482-2490 (standardize_data_formats defaults).
ROLE_ALIASES: dict[str, str] = {
    "system": "system", "user": "user", "human": "user", "input": "user",
    "assistant": "assistant", "gpt": "assistant", "output": "assistant",
}
# Roles chat templates accept besides the three above (tool calling).
TOOL_ROLES = frozenset({"tool", "function", "ipython", "observation", "function_call", "developer"})
# Of those, the ones that hold a tool's result (OpenAI's legacy "function" role is a result too).
TOOL_RESULT_ROLES = frozenset({"tool", "function", "ipython", "observation"})

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEMPLATE_TOKEN = re.compile(
    r"<\|(?:im_start|im_end|eot_id|eom_id|start_header_id|end_header_id|begin_of_text|end_of_text"
    r"|endoftext|user|assistant|system|end|start|channel|message|return)\|>"
    r"|<start_of_turn>|<end_of_turn>|\[/?INST\]|</?s>|<bos>|<eos>"
)


def field_column(raw: bytes, name: str) -> int | None:
    """1-based character column where `"name"` appears in the raw line, if it does."""
    at = raw.find(b'"' + name.encode() + b'"')
    if at < 0:
        return None
    return len(raw[:at].decode("utf-8", "replace")) + 1


def is_blank(value: str) -> bool:
    return not value or value.isspace()


def check_fields(obj: dict[str, Any], schema: RecordSchema, line: int, raw: bytes, hits: Hits) -> None:
    """Required fields present, not null, of the right type, not empty."""
    for name in schema.required:
        if name not in obj:
            hits.add(FIELD_MISSING, line, None, field=name, schema=schema.name)
            continue
        value = obj[name]
        if value is None:
            hits.add(FIELD_NULL, line, field_column(raw, name), field=name, schema=schema.name)
        elif name == schema.chat_field:
            if type(value) is not list:
                hits.add(FIELD_TYPE, line, field_column(raw, name), field=name, schema=schema.name,
                         expected="a list of turns", found=type(value).__name__)
            elif not value:
                hits.add(FIELD_EMPTY, line, field_column(raw, name), field=name, schema=schema.name)
        elif name in KTO_LABELS:
            # trl's KTOTrainer and LLaMA-Factory's kto_tag read it as a bool (desirable or not).
            if type(value) is not bool:
                hits.add(FIELD_TYPE, line, field_column(raw, name), field=name, schema=schema.name,
                         expected="true or false", found=type(value).__name__)
        elif type(value) is str:
            if is_blank(value):
                hits.add(FIELD_EMPTY, line, field_column(raw, name), field=name, schema=schema.name)
        elif type(value) is list and schema.name != TEXT:
            pass  # conversational prompt/completion rows hold message lists
        else:
            hits.add(FIELD_TYPE, line, field_column(raw, name), field=name, schema=schema.name,
                     expected="a string", found=type(value).__name__)
    for name in schema.optional:
        value = obj.get(name, "")
        if value is None:
            hits.add(FIELD_NULL, line, field_column(raw, name), field=name, schema=schema.name)
        elif type(value) is not str and type(value) is not list:
            hits.add(FIELD_TYPE, line, field_column(raw, name), field=name, schema=schema.name,
                     expected="a string", found=type(value).__name__)


def iter_texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a value, in order, with a readable path like `messages[2].content`.

    A stack, not recursion: a row the strict parser accepts may nest 1024 levels deep."""
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        if type(value) is str:
            yield path, value
        elif type(value) is dict:
            stack.extend(reversed([(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]))
        elif type(value) is list:
            stack.extend(reversed([(f"{path}[{index}]", item) for index, item in enumerate(value)]))


# Columns that hold no training text: tool schemas, media paths, ids, metadata.
NOT_TRAINING_TEXT = frozenset({"tools", "images", "videos", "audios", "image", "id", "source", "url",
                               "category", "metadata", "meta", "tags"})


def check_text(obj: dict[str, Any], schema: RecordSchema, line: int, raw: bytes, hits: Hits) -> None:
    """Control characters, mojibake, CR line ends, pasted chat-template tokens, and unfilled
    template slots."""
    template_ok = schema.name == TEXT  # pre-rendered text is supposed to hold template tokens
    for path, text in iter_texts(obj, ""):
        top = path.split(".", 1)[0].split("[", 1)[0]
        col = field_column(raw, top)
        if schema.name != UNKNOWN and top not in NOT_TRAINING_TEXT and ".function." not in path:
            slot = placeholder_at(text)
            if slot:
                hits.add(PLACEHOLDER, line, col, field=path, placeholder=slot)
        m = _CONTROL.search(text)
        if m:
            hits.add(CONTROL_CHARS, line, col, field=path, char=f"U+{ord(m.group()):04X}",
                     count=len(_CONTROL.findall(text)))
        if "\ufffd" in text:
            hits.add(REPLACEMENT_CHAR, line, col, field=path, count=text.count("\ufffd"))
        at = None if text.isascii() else mojibake_at(text)
        if at:
            start = max(0, at[0] - 12)
            hits.add(MOJIBAKE, line, col, field=path, sample=text[start:at[1] + 12])
        if "\r" in text:
            hits.add(CRLF, line, col, field=path)
        if not template_ok:
            m = TEMPLATE_TOKEN.search(text)
            if m:
                hits.add(TEMPLATE_TOKENS, line, col, field=path, token=m.group())


def turns(obj: dict[str, Any], schema: RecordSchema) -> list[Any] | None:
    value = obj.get(schema.chat_field) if schema.chat_field else None
    return value if type(value) is list else None


def turn_role_content(turn: Any) -> tuple[Any, Any]:
    """(role, content) of one turn in either messages or ShareGPT spelling. An assistant turn
    that only calls tools has no content (OpenAI's format, which chat templates render): its
    content reads as ""."""
    if "role" in turn or "content" in turn:
        role, content = turn.get("role"), turn.get("content")
    else:
        role, content = turn.get("from"), turn.get("value")
    if content is None and calls_tools(turn):
        content = ""
    return role, content


def calls_tools(turn: dict[str, Any]) -> bool:
    calls = turn.get("tool_calls")
    return type(calls) is list and bool(calls)


def content_text(content: Any) -> str | None:
    """The text of a turn's content: a string, or the text parts of a multimodal list."""
    if type(content) is str:
        return content
    if type(content) is list:
        return "".join(part_text(p) for p in content)
    return None


@lru_cache(maxsize=4096)
def role_findings(schema_name: str, roles: tuple[str, ...], answered_elsewhere: bool = False
                  ) -> tuple[tuple[str, int | None, str], ...]:
    """What is wrong with the names and order of a conversation's roles: (entry, turn, detail).
    `answered_elsewhere`: the answers are in `chosen`/`rejected` (LLaMA-Factory's ranking rows
    keep only the prompt in `conversations`), so no assistant turn is expected in it.

    Pure and cached: datasets repeat a handful of role sequences over millions of rows.
    """
    mapped_roles: list[str] = []
    for index, role in enumerate(roles):
        key = role.strip().lower()
        mapped = ROLE_ALIASES.get(key)
        if mapped is None and key not in TOOL_ROLES:
            return ((ROLE_UNKNOWN, index, role),)
        mapped_roles.append(mapped or key)
    out: list[tuple[str, int | None, str]] = []
    if schema_name == MESSAGES and any(r.strip().lower() in ("human", "gpt") for r in roles):
        out.append((SHAREGPT_ROLES, None, ""))
    if "system" in mapped_roles[1:]:
        out.append((SYSTEM_NOT_FIRST, mapped_roles.index("system", 1), ""))
    if "assistant" not in mapped_roles and not answered_elsewhere:
        out.append((NO_ASSISTANT, None, ""))
    spoken = [(i, r) for i, r in enumerate(mapped_roles) if r in ("user", "assistant")]
    if spoken and spoken[0][1] != "user":
        out.append((NOT_ALTERNATING, spoken[0][0], "the conversation starts with an assistant turn"))
    else:
        # A tool turn (a call, or its result) between two assistant turns is how tool use
        # reads, and chat templates accept it: only turns with nothing between them count.
        turns = [(i, "tool" if r in TOOL_ROLES else r) for i, r in enumerate(mapped_roles) if r != "system"]
        for (before_at, before), (index, after) in zip(turns, turns[1:]):
            if before == after and after != "tool":
                out.append((NOT_ALTERNATING, index, f"two {after} turns in a row"))
                break
            if before == "user" and mapped_roles[index] in TOOL_RESULT_ROLES:
                # A tool's result answers a call: an assistant turn (or a function_call) comes first.
                out.append((NOT_ALTERNATING, index, f"a tool result ({roles[index]}) right after a user turn, "
                                                    "with no tool call before it"))
                break
    return tuple(out)


def check_chat(obj: dict[str, Any], schema: RecordSchema, line: int, raw: bytes, hits: Hits) -> None:
    """Shape, role names and order, and content of the turns of one conversation."""
    convo = turns(obj, schema)
    if not convo:
        return
    field = schema.chat_field or ""
    col = field_column(raw, field)
    roles: list[str] = []
    texts: list[str] = []
    tool_calls: set[int] = set()
    lf_parts = False
    for index, turn in enumerate(convo):
        if type(turn) is not dict:
            hits.add(BAD_TURN, line, col, field=field, turn=index,
                     detail=f"turn {index} is a {type(turn).__name__}, not an object")
            return
        role, content = turn_role_content(turn)
        if type(role) is not str:
            hits.add(BAD_TURN, line, col, field=field, turn=index,
                     detail=f"turn {index} has no role ('role' or 'from')")
            return
        text = content_text(content)
        if content is None or text is None and type(content) is not list:
            hits.add(BAD_TURN, line, col, field=field, turn=index,
                     detail=f"turn {index} ({role}) has no text content")
            return
        roles.append(role)
        texts.append(text or "")
        if calls_tools(turn):
            tool_calls.add(index)
        if lf_value_parts(content):
            lf_parts = True
    if lf_parts:
        hits.add(LF_PARTS, line, col, field=field)
    if schema.name == SHAREGPT:
        unmapped = sorted({r for r in roles if r.strip().lower() not in ROLE_ALIASES})
        if unmapped:
            hits.add(SHAREGPT_UNMAPPED, line, col, field=field, roles=", ".join(unmapped))
    check_media_markers(obj, texts, line, col, field, hits)
    # Ranking rows keep only the prompt in the conversation; chosen/rejected hold the answers.
    ranking = schema.name == PREFERENCE
    for entry_id, turn, detail in role_findings(schema.name, tuple(roles), ranking):
        if entry_id == ROLE_UNKNOWN:
            hits.add(ROLE_UNKNOWN, line, col, field=field, turn=turn, role=detail)
            return
        values = {"detail": detail} if detail else {}
        hits.add(entry_id, line, col, field=field, turn=turn, **values)
    for index, (role, text) in enumerate(zip(roles, texts)):
        if (ROLE_ALIASES.get(role.strip().lower()) in ("user", "assistant") and is_blank(text)
                and index not in tool_calls):
            hits.add(EMPTY_TURN, line, col, field=field, turn=index, role=role)
