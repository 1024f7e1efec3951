"""The tokenizer files of a model or adapter folder: whether `tokenizers` loads tokenizer.json,
how many tokens it has (the base vocabulary plus added tokens), a chat template where the
model is a chat model, and eos/pad against generation_config.json.

`tokenizers` is a light Rust extension (no torch), so it is loaded in this process; without
it, only the JSON is read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctor.findings import Location, Observation

CHAT_NAME = re.compile(r"(instruct|chat|[-_]it(?:[-_.]|$)|assistant)", re.IGNORECASE)
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class TokenizerInfo:
    length: int | None           # ids 0..length-1 (vocabulary and added tokens), None if unknown
    ids: dict[str, int]          # token -> id, for the special tokens looked up


def token_ids(data: dict[str, Any]) -> dict[str, int]:
    """token -> id from tokenizer.json's model vocabulary and its added tokens."""
    vocab = (data.get("model") or {}).get("vocab") if isinstance(data.get("model"), dict) else None
    out: dict[str, int] = {}
    if isinstance(vocab, dict):
        out.update({k: v for k, v in vocab.items() if isinstance(v, int)})
    elif isinstance(vocab, list):   # Unigram: [[piece, score], ...]
        out.update({p[0]: i for i, p in enumerate(vocab) if isinstance(p, list) and p and isinstance(p[0], str)})
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and isinstance(added.get("content"), str) and isinstance(added.get("id"), int):
            out[added["content"]] = added["id"]
    return out


# Loaded in a child: a 150k-token tokenizer takes tens of MB the header scan should not hold.
_LOAD = """import sys
try:
    from tokenizers import Tokenizer
except ImportError:
    sys.exit(0)   # not installed there: nothing to say
try:
    Tokenizer.from_file(sys.argv[1])
except Exception as exc:
    print(str(exc).strip() or type(exc).__name__)
    sys.exit(3)
"""
LOAD_TIMEOUT_S = 30.0


def load_check(path: Path, python: str | None = None) -> str | None:
    """The error `tokenizers` raises loading tokenizer.json (in a child process of `python`),
    or None when it loads, or when the library is not installed there."""
    import sys

    from doctor.probes.system import run_bounded

    try:
        done = run_bounded([python or sys.executable, "-c", _LOAD, str(path)], LOAD_TIMEOUT_S, merge_stderr=True)
    except OSError:
        return None
    if done.timed_out:
        return f"loading it took longer than {LOAD_TIMEOUT_S:.0f} s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit code {done.returncode}")[:300]


def special(config: dict[str, Any], key: str) -> str | None:
    """eos_token / pad_token of tokenizer_config.json: a string or an AddedToken dict."""
    value = config.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def id_list(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)] if isinstance(value, list) else []


def has_chat_template(root: Path, tok_config: dict[str, Any]) -> bool:
    return bool(tok_config.get("chat_template")) or any((root / f).is_file() for f in TEMPLATE_FILES)


def looks_like_chat_model(root: Path, config: dict[str, Any] | None, adapter: dict[str, Any] | None) -> str | None:
    """The name that says chat/instruct (folder, _name_or_path, the adapter's base), if any."""
    names = [root.resolve().name]
    for data, key in ((config, "_name_or_path"), (adapter, "base_model_name_or_path")):
        if data and isinstance(data.get(key), str):
            names.append(data[key])
    return next((n for n in names if CHAT_NAME.search(n.rsplit("/", 1)[-1])), None)


def special_token_checks(root: Path, tok_config: dict[str, Any], tok_ids: dict[str, int],
                         generation: dict[str, Any] | None, at_tok: Location, at_gen: Location) -> list[Observation]:
    """eos defined somewhere, and the tokenizer's eos among generation_config's eos ids (or
    generate() runs past the end of every answer)."""
    out: list[Observation] = []
    eos = special(tok_config, "eos_token")
    gen_eos = id_list((generation or {}).get("eos_token_id"))
    if eos is None and not gen_eos:
        out.append(Observation("MODEL-NO-EOS", at_tok))
    if eos is not None and gen_eos and eos in tok_ids and tok_ids[eos] not in gen_eos:
        out.append(Observation("MODEL-EOS-MISMATCH", at_gen, {
            "eos": eos, "eos_id": tok_ids[eos], "generation_eos": ", ".join(map(str, gen_eos)),
            "source": Path(at_gen.path).name}))
    pad = special(tok_config, "pad_token")
    if pad is not None and tok_ids and pad not in tok_ids:
        out.append(Observation("MODEL-SPECIAL-TOKEN-UNKNOWN", at_tok, {"key": "pad_token", "token": pad}))
    if eos is not None and tok_ids and eos not in tok_ids:
        out.append(Observation("MODEL-SPECIAL-TOKEN-UNKNOWN", at_tok, {"key": "eos_token", "token": eos}))
    return out
