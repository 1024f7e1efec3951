"""The repairs a model folder's findings propose, as whole-file edits (shown as a diff by
`scan`, applied by `scan --fix`): a config key set, tokenizer files copied from the base
model, a shard index rebuilt from the shards' own headers, an auto_map removed.

Pure proposals: nothing is written here (doctor/fixes/model.py applies them).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from doctor.findings import FileEdit, Fix, Safety
from doctor.probes import limits
from doctor.results.words import counted

# What tokenizer.save_pretrained writes; copied from the base when the folder has none.
TOKENIZER_COPY = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                  "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json")


def _dump(data: Mapping[str, Any]) -> str:
    """transformers' own layout for config files (to_json_string): indent 2, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def set_config_key(path: Path, text: str, key: str, value: Any) -> tuple[Fix, ...]:
    """config.json with `key` set, the rest of the text kept where the key is already there."""
    literal = json.dumps(value)
    pattern = re.compile(r'("%s"\s*:\s*)(true|false|null|-?\d+(?:\.\d+)?|"[^"]*")' % re.escape(key))
    if pattern.search(text):
        new = pattern.sub(lambda m: m.group(1) + literal, text, count=1)
    else:
        try:
            data = json.loads(text)
        except ValueError:
            return ()
        if not isinstance(data, dict):
            return ()
        new = _dump({**data, key: value})
    return (Fix(f"Set {key} to {literal} in config.json, as the saved weights are.", Safety.SAFE, "model",
                edits=(FileEdit.rewrite(str(path), text, new, f"{key}: {literal}"),)),)


def remove_config_key(path: Path, text: str, key: str, why: str) -> tuple[Fix, ...]:
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, dict) or key not in data:
        return ()
    new = _dump({k: v for k, v in data.items() if k != key})
    return (Fix(f"Remove {key} from config.json ({why}).", Safety.UNSAFE, "model",
                edits=(FileEdit.rewrite(str(path), text, new, f"remove {key}"),)),)


def _copy_edit(source: Path, target: Path, max_bytes: int) -> FileEdit | None:
    try:
        data = limits.read_bytes(source, max_bytes)
    except (limits.Refusal, OSError):
        return None
    return FileEdit(str(target), new_bytes=data, description=f"copy of {source.name} from the base model",
                    diff=f"new file {target.name} ({len(data)} bytes, copied from the base model)\n")


def copy_tokenizer(root: Path, base: Path | None, max_bytes: int) -> tuple[Fix, ...]:
    """The base model's tokenizer files this folder lacks."""
    if base is None or not base.is_dir():
        return ()
    edits = [e for name in TOKENIZER_COPY if (base / name).is_file() and not (root / name).exists()
             for e in [_copy_edit(base / name, root / name, max_bytes)] if e is not None]
    if not edits:
        return ()
    names = ", ".join(Path(e.path).name for e in edits)
    return (Fix(f"Copy the base model's tokenizer files ({names}) from {base}.", Safety.SAFE, "model",
                edits=tuple(edits)),)


def copy_chat_template(root: Path, base: Path | None, max_bytes: int) -> tuple[Fix, ...]:
    """The base's chat template: its chat_template.jinja, or the key of its tokenizer_config.json."""
    if base is None or not base.is_dir():
        return ()
    for name in ("chat_template.jinja", "chat_template.json"):
        if (base / name).is_file():
            edit = _copy_edit(base / name, root / name, max_bytes)
            return (Fix(f"Copy {name} from the base model {base}.", Safety.SAFE, "model", edits=(edit,)),) if edit else ()
    try:
        base_config = json.loads(limits.read_text(base / "tokenizer_config.json", max_bytes))
        own_text = limits.read_text(root / "tokenizer_config.json", max_bytes)
        own = json.loads(own_text)
    except (limits.Refusal, OSError, ValueError):
        return ()
    template = base_config.get("chat_template") if isinstance(base_config, dict) else None
    if not template or not isinstance(own, dict):
        return ()
    new = _dump({**own, "chat_template": template})
    return (Fix(f"Copy the chat_template of the base model {base} into tokenizer_config.json.", Safety.SAFE, "model",
                edits=(FileEdit.rewrite(str(root / "tokenizer_config.json"), own_text, new, "chat_template"),)),)


def rebuilt_index(index_path: Path, old_text: str, per_file: Mapping[str, Mapping[str, Any]],
                  lost: list[str]) -> tuple[Fix, ...]:
    """An index whose weight_map is what each shard's header really holds. `per_file`: shard
    file -> {tensor name: Tensor (with start/end)}; `lost`: tensors the old index named that no
    shard holds (the new index drops them, so the fix is unsafe then)."""
    try:
        old = json.loads(old_text)
    except ValueError:
        old = {}
    metadata = dict(old.get("metadata") or {}) if isinstance(old, dict) and isinstance(old.get("metadata"), dict) else {}
    weight_map = {name: file for file, found in sorted(per_file.items()) for name in found}
    metadata["total_size"] = sum(t.end - t.start for found in per_file.values() for t in found.values())
    new = _dump({"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))})
    if lost:
        names = f"{counted(len(lost), 'tensor')} it names ({', '.join(lost[:3])}) " + ("is" if len(lost) == 1 else "are")
        text = (f"Rebuild {index_path.name} from the shards' headers; {names} in no shard and dropped: "
                f"the model's own weights of that name, if it has any, are initialized randomly.")
        safety = Safety.UNSAFE
    else:
        text = f"Rebuild {index_path.name} from the tensors each shard's header really holds."
        safety = Safety.SAFE
    return (Fix(text, safety, "model", edits=(FileEdit.rewrite(str(index_path), old_text, new, "weight_map"),)),)
