"""Edits of a training config's values that keep the rest of the file byte for byte.

Only the text of the value a fix changes is replaced: in JSON at the value's span
(`jsonmarks`), in YAML at the span of its scalar node as PyYAML composes it, written in the
old value's style (plain, single- or double-quoted). Comments, key order, indentation, quotes
and blank lines stay as they were. (A ruamel.yaml round trip, tried first, re-indents nested
blocks: with its best single setting it reproduced 296 of the 347 axolotl and LLaMA-Factory
example configs unchanged, so a fix through it would have touched lines it was not asked to.)
An edit is proposed as a `Fix` with a `FileEdit`: its diff shown without --fix, applied with it.
"""
from __future__ import annotations

import json
from typing import Any

from doctor.findings import FileEdit, Fix, Safety
from doctor.probes.configfile import ConfigFile


def set_value(cfg: ConfigFile, name: str, value: Any, text: str, safety: Safety = Safety.SAFE) -> tuple[Fix, ...]:
    """A fix that sets the setting `name` (the file's own key for it) to `value`."""
    if name not in cfg.settings:
        return ()
    new_text = rewrite(cfg, {cfg.settings[name].path: value})
    if new_text is None or new_text == cfg.text:
        return ()
    return (Fix(text, safety, "config", edits=(FileEdit.rewrite(cfg.path, cfg.text, new_text, text),)),)


def rewrite(cfg: ConfigFile, changes: dict[tuple[Any, ...], Any]) -> str | None:
    """The config's text with the value at each path replaced; None when a value is not a
    scalar that can be replaced in place."""
    if cfg.is_json:
        spans = {path: (cfg.places[path].start, cfg.places[path].end) for path in changes}
        return _splice(cfg.text, {spans[p]: json.dumps(v, ensure_ascii=False) for p, v in changes.items()})
    return _rewrite_yaml(cfg.text, changes)


def _splice(text: str, replacements: dict[tuple[int, int], str]) -> str:
    for (start, end), new in sorted(replacements.items(), reverse=True):   # from the end backwards
        text = text[:start] + new + text[end:]
    return text


def _rewrite_yaml(text: str, changes: dict[tuple[Any, ...], Any]) -> str | None:
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    replacements = {}
    for path, value in changes.items():
        node = _node_at(root, path)
        if not isinstance(node, yaml.ScalarNode):
            return None
        replacements[(node.start_mark.index, node.end_mark.index)] = _yaml_scalar(value, node.style)
    new = _splice(text, replacements)
    data = yaml.safe_load(new)   # the edit reads back as the values it meant to write
    return new if all(_value_at(data, p) == v for p, v in changes.items()) else None


def _node_at(node: Any, path: tuple[Any, ...]) -> Any:
    import yaml

    for key in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return None
    return node


def _value_at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _yaml_scalar(value: Any, style: str | None) -> str:
    if isinstance(value, str) and style == "'":
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, str) and style == '"':
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value.strip() == value and _reads_as_string(value) else json.dumps(value, ensure_ascii=False)
    return repr(value)


def _reads_as_string(text: str) -> bool:
    import yaml

    try:
        return yaml.safe_load(f"k: {text}") == {"k": text}
    except yaml.YAMLError:
        return False
