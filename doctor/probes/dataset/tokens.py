"""Token measurements of what will actually be trained, with the user's own tokenizer.

The tokenizer comes from a local folder: `tokenizer.json` through the `tokenizers` library,
and the chat template from `tokenizer_config.json` or `chat_template.jinja`, rendered in a
sandboxed Jinja environment the way transformers renders it. Nothing here imports
transformers or reaches the network.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from doctor.results.words import visible
from doctor.findings import Location
from doctor.probes import limits
from doctor.probes.dataset.content import ROLE_ALIASES, content_text, turn_role_content
from doctor.probes.dataset.hits import Hits
from doctor.probes.dataset.schema import (ALPACA, MESSAGES, PREFERENCE, PROMPT_COMPLETION, SHAREGPT,
                                          TEXT)

RENDER_FAILED = "DATA-TEMPLATE-RENDER-FAILED"
NO_TEMPLATE = "DATA-TOKENIZER-NO-CHAT-TEMPLATE"
TEXT_NO_EOS = "DATA-TEXT-NO-EOS"
CHAT_NO_EOS = "DATA-CHAT-NO-EOS"
MARKER_MISSING = "DATA-RESPONSE-MARKER-MISSING"
RESPONSE_TRUNCATED = "DATA-RESPONSE-TRUNCATED"
TRUNCATED = "DATA-TOKENS-TRUNCATED"
DOUBLE_BOS = "DATA-TEXT-DOUBLE-BOS"

# The prompt of Unsloth's Alpaca notebook (nb/Llama3.1_(8B)-Alpaca.ipynb cell 10), which
# appends EOS to every row.
ALPACA_PROMPT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n{}"
)


class TokenizerProblem(Exception):
    """The tokenizer folder cannot be used; the message says why and what to do, `where` the
    file, line and column at fault when one is."""

    def __init__(self, message: str, where: Location | None = None, missing_package: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.missing_package = missing_package   # an optional package of the doctor's, not the folder


def _read_file(file: Path) -> str:
    """A text file of the tokenizer folder, refused unread past the size limit."""
    try:
        return limits.read_text(file, limits.MODEL_JSON_MAX_BYTES)
    except limits.Refusal as refused:
        raise TokenizerProblem(f"{file}: not read: it is {refused.values['size']}, over the "
                               f"{refused.values['limit']} limit", Location(str(file), 1, 1)) from None
    except ValueError as err:   # not UTF-8
        raise TokenizerProblem(f"{file}: not readable as UTF-8 text: {err}", Location(str(file))) from None


def _read_json_object(file: Path) -> dict[str, Any]:
    """A JSON object of the tokenizer folder, bounded in size and nesting."""
    text = _read_file(file)
    try:
        data = limits.load_json(text)   # one parse: the depth check\'s
    except limits.Refusal as refused:
        raise TokenizerProblem(f"{file}: not read: it nests more than {refused.values['limit']} levels deep "
                               f"(line {refused.line}, column {refused.column})",
                               Location(str(file), refused.line, refused.column)) from None
    except ValueError as err:
        raise TokenizerProblem(f"{file}: not valid JSON: {err}",
                               Location(str(file), getattr(err, "lineno", None), getattr(err, "colno", None))) from err
    if not isinstance(data, dict):
        raise TokenizerProblem(f"{file}: not a JSON object but a {type(data).__name__}", Location(str(file), 1, 1))
    return data


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _sandbox() -> Any:
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as err:
        raise TokenizerProblem(
            "rendering the chat template needs jinja2, which is not installed (the doctor's 'data' "
            "extra installs it)", missing_package=True) from err

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False,
               sort_keys: bool = False, separators: Any = None) -> str:
        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys,
                          separators=separators)

    # The same settings transformers uses for chat templates.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _find_template(folder: Path, config: dict[str, Any]) -> str | None:
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return _read_file(jinja_file)
    json_file = folder / "chat_template.json"
    if json_file.is_file():
        template = _read_json_object(json_file).get("chat_template")
        if isinstance(template, str):
            return template
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: prefer "default"
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None


@dataclass
class TokenizerBundle:
    path: str
    tokenizer: Any
    template: Any | None
    eos: str | None
    bos: str | None
    adds_bos: bool = False      # encoding with special tokens puts BOS in front by itself


def _adds_bos(tokenizer: Any, bos: str | None) -> bool:
    bos_id = tokenizer.token_to_id(bos) if bos else None
    return bos_id is not None and tokenizer.encode("", add_special_tokens=True).ids[:1] == [bos_id]


def load_tokenizer(folder: str) -> TokenizerBundle:
    root = Path(folder)
    if not root.is_dir():
        raise TokenizerProblem(f"{folder}: not a folder (give a local tokenizer or model folder)")
    tok_file = root / "tokenizer.json"
    if not tok_file.is_file():
        raise TokenizerProblem(
            f"{folder}: no tokenizer.json (a 'fast' tokenizer file is needed; save one with "
            "tokenizer.save_pretrained(folder) from a fast tokenizer)")
    try:
        from tokenizers import Tokenizer
    except ImportError as err:
        raise TokenizerProblem("measuring tokens needs the tokenizers package, which is not installed "
                               "(the doctor's 'data' extra installs it)", missing_package=True) from err
    try:
        tokenizer = Tokenizer.from_file(str(tok_file))
    except Exception as err:  # the library raises plain Exception on a bad file
        raise TokenizerProblem(f"{tok_file}: cannot be read by tokenizers: {err}") from err
    config: dict[str, Any] = {}
    config_file = root / "tokenizer_config.json"
    if config_file.is_file():
        config = _read_json_object(config_file)
    source = _find_template(root, config)
    template = None
    if source is not None:
        try:
            template = _sandbox().from_string(source)
        except TokenizerProblem:
            raise
        except Exception as err:
            raise TokenizerProblem(f"{folder}: the chat template does not compile: {err}") from err
    bos = _token_text(config.get("bos_token"))
    return TokenizerBundle(str(root), tokenizer, template, _token_text(config.get("eos_token")), bos,
                           _adds_bos(tokenizer, bos))


def standard_messages(convo: list[Any]) -> list[dict[str, Any]]:
    """Turns in the user/assistant spelling that chat templates expect (what
    standardize_sharegpt does)."""
    out = []
    for turn in convo:
        role, content = turn_role_content(turn)
        role = ROLE_ALIASES.get(str(role).strip().lower(), role)
        text = content_text(content)
        out.append({"role": role, "content": text if text is not None else content})
    return out


@dataclass
class Piece:
    """One text to tokenize, and what to check on it."""

    line: int
    text: str
    special: bool              # add the tokenizer's special tokens (BOS) when encoding
    eos_entry: str | None      # entry to report when the text lacks EOS


@dataclass
class TokenStats:
    lengths: Counter[int] = field(default_factory=Counter)
    truncated: int = 0
    measured: int = 0
    render_failed: int = 0

    def merge(self, other: "TokenStats") -> None:
        self.lengths.update(other.lengths)
        self.truncated += other.truncated
        self.measured += other.measured
        self.render_failed += other.render_failed


class TokenMeter:
    """Renders rows into the text that will be trained and measures it in batches."""

    def __init__(self, bundle: TokenizerBundle, max_seq_length: int | None,
                 response_part: str | None, hits: Hits, batch: int = 1024) -> None:
        self.bundle = bundle
        self.max_len = max_seq_length
        self.response_part = response_part
        self.hits = hits
        self.batch = batch
        self.pending: list[Piece] = []
        self.stats = TokenStats()
        self._no_template_reported = False
        encode = getattr(bundle.tokenizer, "encode_batch_fast", None)
        self._encode_batch = encode or bundle.tokenizer.encode_batch

    def render_chat(self, line: int, convo: list[Any]) -> str | None:
        b = self.bundle
        if b.template is None:
            if not self._no_template_reported:
                self._no_template_reported = True
                self.hits.add(NO_TEMPLATE, line, None, tokenizer=b.path)
            return None
        try:
            return b.template.render(messages=standard_messages(convo), add_generation_prompt=False,
                                     bos_token=b.bos or "", eos_token=b.eos or "", tools=None)
        except Exception as err:  # a template's raise_exception, or a bad row shape
            self.stats.render_failed += 1
            self.hits.add(RENDER_FAILED, line, None, error=f"{type(err).__name__}: {err}")
            return None

    def add(self, line: int, obj: dict[str, Any], schema: str) -> None:
        eos = self.bundle.eos or ""
        if schema == TEXT:
            text = obj.get("text")
            if type(text) is str:
                self.pending.append(Piece(line, text, True, TEXT_NO_EOS if eos else None))
        elif schema == ALPACA:
            parts = [obj.get("instruction"), obj.get("input") or "", obj.get("output")]
            if all(type(p) is str for p in parts):
                self.pending.append(Piece(line, ALPACA_PROMPT.format(*parts) + eos, True, None))
        elif schema in (MESSAGES, SHAREGPT):
            convo = obj.get("messages" if schema == MESSAGES else "conversations")
            if type(convo) is list and all(type(t) is dict for t in convo):
                text = self.render_chat(line, convo)
                if text is not None:
                    self.pending.append(Piece(line, text, False, CHAT_NO_EOS if eos else None))
        elif schema == PROMPT_COMPLETION:
            self._add_pair(line, obj.get("prompt"), obj.get("completion"))
        elif schema == PREFERENCE:
            chosen, rejected = obj.get("chosen"), obj.get("rejected")
            longer = chosen if len(str(chosen)) >= len(str(rejected)) else rejected
            self._add_pair(line, obj.get("prompt", ""), longer)
        if len(self.pending) >= self.batch:
            self.flush()

    def _add_pair(self, line: int, prompt: Any, answer: Any) -> None:
        if type(prompt) is str and type(answer) is str:
            self.pending.append(Piece(line, prompt + answer + (self.bundle.eos or ""), True, None))
        elif type(prompt) is list and type(answer) is list:
            text = self.render_chat(line, [*prompt, *answer])
            if text is not None:
                self.pending.append(Piece(line, text, False, None))

    def flush(self) -> None:
        if not self.pending:
            return
        pieces, self.pending = self.pending, []
        for special in (True, False):
            group = [p for p in pieces if p.special is special]
            if group:
                encodings = self._encode_batch([p.text for p in group], add_special_tokens=special)
                for piece, enc in zip(group, encodings):
                    self._check(piece, len(enc))

    def _check(self, piece: Piece, length: int) -> None:
        stats = self.stats
        stats.measured += 1
        stats.lengths[length] += 1
        eos = self.bundle.eos
        if piece.eos_entry and eos and eos not in piece.text[-len(eos) - 64:]:
            self.hits.add(piece.eos_entry, piece.line, None, eos=eos)
        bos = self.bundle.bos
        if piece.special and self.bundle.adds_bos and bos and piece.text.lstrip().startswith(bos):
            self.hits.add(DOUBLE_BOS, piece.line, None, bos=bos)
        too_long = self.max_len is not None and length > self.max_len
        if too_long:
            stats.truncated += 1
            self.hits.add(TRUNCATED, piece.line, None, tokens=length, max_seq_length=self.max_len)
        marker = self.response_part
        if marker is None:
            return
        at = piece.text.find(marker)
        if at < 0:
            self.hits.add(MARKER_MISSING, piece.line, None, response_part=visible(marker))
        elif too_long:
            # Tokens up to the end of the marker: if they fill the window, no label survives.
            prefix = piece.text[:at + len(marker)]
            kept = len(self.bundle.tokenizer.encode(prefix, add_special_tokens=piece.special))
            if kept >= (self.max_len or 0):
                self.hits.add(RESPONSE_TRUNCATED, piece.line, None, response_part=visible(marker),
                              tokens=length, marker_end=kept, max_seq_length=self.max_len)


def percentile(lengths: Counter[int], q: float) -> int:
    """The nearest-rank percentile of a length histogram (q in 0..100)."""
    total = sum(lengths.values())
    if total == 0:
        return 0
    rank = max(1, -(-q * total // 100))  # ceil without floats drifting
    seen = 0
    for value in sorted(lengths):
        seen += lengths[value]
        if seen >= rank:
            return value
    return max(lengths)


def recommend_max_seq_length(lengths: Counter[int]) -> int:
    """The p99 length rounded up to a multiple of 256 (at least 256)."""
    p99 = percentile(lengths, 99)
    return max(256, -(-p99 // 256) * 256)


def length_histogram(lengths: Counter[int], max_seq_length: int | None, bins: int = 30) -> dict[str, Any]:
    """Token lengths in `bins` equal-width bins from 0 to past the longest row and past
    max_seq_length, so both show on one axis: the data of the HTML report's plot, kept as a
    fact because the reporters never see the lengths themselves."""
    top = max(max(lengths, default=0), max_seq_length or 0, 1)
    width = max(1, -(-top // bins))   # whole tokens per bin, the last bin holding `top`
    counts = [0] * (top // width + 1)
    for length, n in lengths.items():
        counts[min(length // width, len(counts) - 1)] += n
    return {"bin_width": width, "counts": counts, "max_seq_length": max_seq_length,
            "rows": sum(lengths.values()), "longest": max(lengths, default=0)}
