"""Checks on one parsed record: required fields, text hygiene, and conversation shape.

All functions are pure apart from `hits.add`. They run on every row, so the common case
(a well-formed record) takes the shortest path.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from doctor.probes.dataset.hits import Hits
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
LF_PARTS = "DATA-LF-CONTENT-PARTS"
LF_IMAGE_MARKERS = "DATA-LF-IMAGE-MARKERS"
LF_MEDIA_COUNT = "DATA-LF-MEDIA-COUNT"
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
# Characters a UTF-8 continuation byte (0x80-0xBF) becomes when decoded as Windows-1252 or
# Latin-1: U+0080-U+00BF, and the 27 Windows-1252 characters that replace 0x80-0x9F.
_CONTINUATION_CHARS = ("\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                       "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a"
                       "\u20ac\u2122")
# A UTF-8 lead byte (0xC2-0xF4) as Windows-1252/Latin-1, then continuation bytes: the shape
# every mis-decoded non-ASCII character takes (é -> Ã©, ’ -> â€™, 中 -> ä¸­, я -> Ñ).
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


# LLaMA-Factory v1 parts that hold text under "value" (its media parts hold a path there).
LF_TEXT_PARTS = frozenset({"text", "reasoning", "tool_call"})


def lf_value_parts(content: Any) -> bool:
    """Content parts in LLaMA-Factory v1's spelling ("value", no "text")."""
    return type(content) is list and any(
        type(p) is dict and "value" in p and "text" not in p for p in content)


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
