"""Edits of a training config's values that keep the rest of the file as it was.

YAML goes through ruamel.yaml's round-trip loader (comments, key order, quotes and flow
style kept); JSON has each value's span (`jsonmarks`), so exactly that value's text is
replaced and the indentation, key order and everything else stay byte for byte. An edit is
proposed as a `Fix` with a `FileEdit` (its diff shown without --fix, applied with it).
ruamel.yaml is the optional `fix` extra: without it a YAML config's fixes are offered as
text only, with a note saying what to install.
"""
from __future__ import annotations

import io
import json
from typing import Any

from doctor.findings import FileEdit, Fix, Safety
from doctor.probes.configfile import ConfigFile

MISSING_RUAMEL = "(install unsloth-doctor[fix] to have --fix apply it: YAML edits need ruamel.yaml)"


def set_value(cfg: ConfigFile, name: str, value: Any, text: str, safety: Safety = Safety.SAFE) -> tuple[Fix, ...]:
    """A fix that sets the setting `name` (the file's own key for it) to `value`."""
    if name not in cfg.settings:
        return ()
    new_text = rewrite(cfg, {cfg.settings[name].path: value})
    if new_text is None:
        return (Fix(f"{text} {MISSING_RUAMEL}", Safety.MANUAL, "config"),)
    if new_text == cfg.text:
        return ()
    return (Fix(text, safety, "config", edits=(FileEdit.rewrite(cfg.path, cfg.text, new_text, text),)),)


def rewrite(cfg: ConfigFile, changes: dict[tuple[Any, ...], Any]) -> str | None:
    """The config's text with the value at each path replaced; None when ruamel.yaml is missing."""
    if cfg.is_json:
        return _rewrite_json(cfg, changes)
    return _rewrite_yaml(cfg.text, changes)


def _rewrite_json(cfg: ConfigFile, changes: dict[tuple[Any, ...], Any]) -> str:
    text = cfg.text
    # from the end of the file backwards, so earlier spans stay where they are
    for path, value in sorted(changes.items(), key=lambda kv: -cfg.places[kv[0]].start):
        span = cfg.places[path]
        text = text[:span.start] + json.dumps(value, ensure_ascii=False) + text[span.end:]
    return text


def _rewrite_yaml(text: str, changes: dict[tuple[Any, ...], Any]) -> str | None:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        return None
    yaml = YAML()   # round trip: comments, order and style are kept
    yaml.preserve_quotes = True
    yaml.width = 4096   # never fold a long line that was not folded
    indent = _yaml_indent(text)
    if indent:
        yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    data = yaml.load(text)
    for path, value in changes.items():
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _yaml_indent(text: str) -> tuple[int, int, int] | None:
    """The file's own indentation of nested mappings and of list items (ruamel's defaults
    would re-indent every block: `- a` under a key becomes `  - a`)."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = next((len(ln) - len(ln.lstrip()) for ln in lines if ln[:1] == " " and not ln.lstrip().startswith("- ")), 2)
    for prev, ln in zip(lines, lines[1:]):
        stripped = ln.lstrip()
        if stripped.startswith("- ") and prev.rstrip().endswith(":"):
            offset = (len(ln) - len(stripped)) - (len(prev) - len(prev.lstrip()))
            return mapping, offset + 2, offset
    return mapping, mapping, 0
