"""What an architecture's config.json needs, read from the installed transformers' source with
`ast` (never imported): the model types AutoConfig knows, and each config class's fields with
their defaults. A key config.json leaves out takes the class default, which is what makes a
hand-written config load 32 layers of random weights onto a 2-layer checkpoint.

Handles both shapes of config class: transformers 5 (`@strict` dataclass fields,
`vocab_size: int = 32000`) and 4.x (`def __init__(self, vocab_size=32000, ...)`).
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctor.paths import state_dir
from doctor.probes import pep701

# The fields the weights' shapes (or their count) depend on: left out, the class default is
# used and the checkpoint no longer fits the model transformers builds.
SHAPE_FIELDS = frozenset({
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "n_embd", "n_layer", "n_head", "d_model", "num_layers", "num_heads",
    "ffn_dim", "moe_intermediate_size", "num_experts", "num_local_experts", "tie_word_embeddings",
})
_BASES = ("PreTrainedConfig", "PretrainedConfig")
CACHE_FORMAT = 2


@dataclass(frozen=True)
class Architecture:
    model_type: str
    config_class: str
    source: str                    # "transformers/models/llama/configuration_llama.py:47"
    defaults: dict[str, Any]       # field -> default ("?" when not a literal)
    lines: dict[str, int]          # field -> line of its declaration
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)   # attribute_map: name -> field

    def given(self, config: dict[str, Any], field_name: str) -> str | None:
        """The key of config.json that sets `field_name` (itself or an attribute_map alias)."""
        if field_name in config:
            return field_name
        return next((alias for alias, target in self.aliases.items() if target == field_name and alias in config), None)


@dataclass(frozen=True)
class Transformers:
    root: Path
    version: str


def installed_transformers() -> Transformers | None:
    """The transformers package this interpreter would import, found without importing it."""
    try:
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    version = "?"
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("transformers")
    except Exception:   # a source checkout without metadata
        pass
    return Transformers(root, version)


def _literal(node: ast.AST | None) -> Any:
    if node is None:
        return "?"
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # `interval(min=0.0, max=1.0)(default=0.02)`: the default keyword of a validator call
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "default":
                    return _literal(kw.value)
        return "?"


def _parse(path: Path) -> ast.Module | None:
    try:
        return pep701.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def known_model_types(tf: Transformers) -> dict[str, str]:
    """model_type -> config class name, from CONFIG_MAPPING_NAMES (auto_mappings.py in 5.x,
    configuration_auto.py in 4.x), with its `.update({...})` additions."""
    out: dict[str, str] = {}
    for name in ("auto_mappings.py", "configuration_auto.py"):
        tree = _parse(tf.root / "models" / "auto" / name)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                key, value = node.elts[0].value, node.elts[1].value   # type: ignore[attr-defined]
                if value.endswith("Config"):
                    out.setdefault(key, value)
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant) and str(v.value).endswith("Config"):
                        out.setdefault(str(k.value), str(v.value))
    return out


def _module_names(tf: Transformers) -> dict[str, str]:
    """SPECIAL_MODEL_TYPE_TO_MODULE_NAME: model types whose folder is named otherwise."""
    out: dict[str, str] = {}
    for name in ("auto_mappings.py", "configuration_auto.py"):
        tree = _parse(tf.root / "models" / "auto" / name)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SPECIAL_MODEL_TYPE_TO_MODULE_NAME"
                                                    for t in node.targets):
                for pair in ast.walk(node.value):
                    if isinstance(pair, ast.Tuple) and len(pair.elts) == 2:
                        k, v = (_literal(e) for e in pair.elts)
                        if isinstance(k, str) and isinstance(v, str):
                            out[k] = v
    return out


def _aliases(cls: ast.ClassDef) -> dict[str, str]:
    """The class's attribute_map literal ({"hidden_size": "n_embd"}: hidden_size sets n_embd)."""
    for stmt in cls.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else stmt.targets[0] if isinstance(stmt, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id == "attribute_map":
            value = _literal(stmt.value)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    return {}


def _class_fields(tree: ast.Module, cls: ast.ClassDef) -> tuple[dict[str, Any], dict[str, int]]:
    defaults: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = ast.unparse(stmt.annotation)
            if "ClassVar" not in annotation:
                defaults[stmt.target.id] = _literal(stmt.value)
                lines[stmt.target.id] = stmt.lineno
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            args = stmt.args.args[1:]
            values = [None] * (len(args) - len(stmt.args.defaults)) + list(stmt.args.defaults)
            for arg, value in zip(args, values):
                defaults[arg.arg] = _literal(value)
                lines[arg.arg] = arg.lineno
    return defaults, lines


def _find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _parent(tf: Transformers, file: Path, tree: ast.Module, cls: ast.ClassDef, depth: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Fields inherited from another model's config class (`class X(LlamaConfig)`), one file away."""
    for base in cls.bases:
        name = base.id if isinstance(base, ast.Name) else None
        if not name or name in _BASES or depth > 3:
            continue
        local = _find_class(tree, name)
        if local is not None:
            return _fields_of(tf, file, tree, local, depth + 1)
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names) and node.module:
                target = (file.parent / ("../" * (node.level - 1)) / (node.module.replace(".", "/") + ".py")).resolve()
                other = _parse(target)
                found = _find_class(other, name) if other else None
                if other is not None and found is not None:
                    return _fields_of(tf, target, other, found, depth + 1)
    return {}, {}


def _fields_of(tf: Transformers, file: Path, tree: ast.Module, cls: ast.ClassDef, depth: int = 0) -> tuple[dict[str, Any], dict[str, int]]:
    defaults, lines = _parent(tf, file, tree, cls, depth)
    own, own_lines = _class_fields(tree, cls)
    return {**defaults, **own}, {**lines, **own_lines}


def _architecture(tf: Transformers, model_type: str) -> Architecture | None:
    class_name = _known_types_cached(tf).get(model_type)
    if class_name is None:
        return None
    module = _module_names(tf).get(model_type, model_type.replace("-", "_"))
    file = tf.root / "models" / module / f"configuration_{module}.py"
    tree = _parse(file)
    cls = _find_class(tree, class_name) if tree else None
    if tree is None or cls is None:
        return None
    defaults, lines = _fields_of(tf, file, tree, cls)
    return Architecture(model_type, class_name, f"transformers/models/{module}/configuration_{module}.py:{cls.lineno}",
                        defaults, lines, _aliases(cls))


def _cache_file(tf: Transformers) -> Path:
    return state_dir() / "cache" / f"transformers-arch-{tf.version}.json"


@functools.lru_cache(maxsize=64)
def architecture(model_type: str, tf: Transformers | None = None) -> Architecture | None:
    """The config class of `model_type` in the installed transformers; parsed once per version
    and kept in the state folder's cache (a few KB per architecture)."""
    tf = tf or installed_transformers()
    if tf is None:
        return None
    cache = _cache_file(tf)
    key = f"{tf.root}:{model_type}"
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("format") == CACHE_FORMAT and key in stored.get("types", {}):
            entry = stored["types"][key]
            return Architecture(**entry) if entry else None
    except (OSError, ValueError, TypeError):
        stored = {}
    found = _architecture(tf, model_type)
    types = dict(stored.get("types", {})) if isinstance(stored, dict) else {}
    types[key] = found.__dict__ if found else None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "types": types}, default=str), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:   # a read-only home: the in-process cache still serves
        pass
    return found


def is_known_type(model_type: str, tf: Transformers) -> bool:
    return model_type in _known_types_cached(tf)


@functools.lru_cache(maxsize=4)
def _known_types_cached(tf: Transformers) -> dict[str, str]:
    return known_model_types(tf)
