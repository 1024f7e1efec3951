"""config.json against its architecture and against the weights' headers: the keys the
architecture's shapes depend on, the layer count and width the tensors really have, and
tie_word_embeddings against whether lm_head.weight is saved (and differs from the embedding).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from doctor.findings import Location, Observation
from doctor.probes import model_arch

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
WIDTH_KEYS = ("hidden_size", "n_embd", "d_model")
COMPARED_BYTES = 1 << 20   # lm_head vs embed_tokens: a first MiB that differs proves them different

Locate = Callable[[str], Location]


def key_locator(config_path: Path, text: str) -> Locate:
    """The line and column of `"key":` in config.json (line 1 when it is not there)."""
    from doctor.probes import limits

    def at(key: str) -> Location:
        pos = text.find(json.dumps(key) + ":")
        if pos < 0:
            pos = text.find(json.dumps(key))
        return Location(str(config_path), *limits.position(text, pos)) if pos >= 0 else Location(str(config_path), 1, 1)
    return at


def architecture_checks(config: dict[str, Any], tensor_shapes: dict[str, tuple[int, ...]], at: Locate,
                        tf: model_arch.Transformers | None) -> tuple[list[Observation], model_arch.Architecture | None]:
    """model_type known to the installed transformers, shape keys present, and the config's
    layer count and width against the tensors. Returns the architecture too (its defaults
    decide tie_word_embeddings)."""
    if tf is None:
        return [], None
    model_type = config.get("model_type")
    remote = isinstance(config.get("auto_map"), dict)
    if not isinstance(model_type, str) or not model_type:
        if remote:
            return [], None
        return [Observation("MODEL-CONFIG-NO-MODEL-TYPE", at("architectures"),
                            {"architectures": ", ".join(map(str, config.get("architectures") or [])) or "none"})], None
    if not model_arch.is_known_type(model_type, tf):
        if remote:
            return [], None   # its own code defines the config class
        return [Observation("MODEL-CONFIG-UNKNOWN-TYPE", at("model_type"),
                            {"model_type": model_type, "version": tf.version})], None
    arch = model_arch.architecture(model_type, tf)
    if arch is None:
        return [], None
    out: list[Observation] = []
    missing = sorted(k for k in model_arch.SHAPE_FIELDS if k in arch.defaults and arch.given(config, k) is None
                     and k != "tie_word_embeddings" and arch.defaults[k] not in (None, "?"))
    if missing:
        out.append(Observation("MODEL-CONFIG-KEY-DEFAULTED", at("model_type"), {
            "keys": ", ".join(f"{k}={arch.defaults[k]}" for k in missing), "count": len(missing),
            "config_class": arch.config_class, "source": arch.source}))
    if tensor_shapes:
        out += _against_weights(config, arch, tensor_shapes, at)
    return out, arch


def effective(config: dict[str, Any], arch: model_arch.Architecture | None, keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """(key, value) transformers will use for the first of `keys` the architecture declares."""
    for key in keys:
        given = arch.given(config, key) if arch is not None else (key if key in config else None)
        if given is not None:
            return given, config[given]
        if arch is not None and key in arch.defaults:
            return key, arch.defaults[key]
    return None


def _against_weights(config: dict[str, Any], arch: model_arch.Architecture, shapes: dict[str, tuple[int, ...]],
                     at: Locate) -> list[Observation]:
    out: list[Observation] = []
    layers = {int(m.group(1)) for name in shapes for m in [_LAYER.search(name)] if m}
    declared = effective(config, arch, LAYER_KEYS)
    if layers and declared and isinstance(declared[1], int) and declared[1] != max(layers) + 1:
        out.append(Observation("MODEL-CONFIG-SHAPE-MISMATCH", at(declared[0]), {
            "key": declared[0], "value": declared[1], "weights": max(layers) + 1, "what": "layers in the weights"}))
    embed = next((s for n, s in shapes.items() if n.endswith(("embed_tokens.weight", "wte.weight"))), None)
    width = effective(config, arch, WIDTH_KEYS)
    if embed and len(embed) == 2 and width and isinstance(width[1], int) and width[1] != embed[1]:
        out.append(Observation("MODEL-CONFIG-SHAPE-MISMATCH", at(width[0]), {
            "key": width[0], "value": width[1], "weights": embed[1], "what": "columns of the embedding"}))
    return out


def tied(config: dict[str, Any], arch: model_arch.Architecture | None) -> bool:
    """Whether transformers ties lm_head to the embedding: the key, else the class default
    (LlamaConfig False, GemmaConfig True), else False as modeling_utils' getattr does."""
    value = config.get("tie_word_embeddings")
    if value is None and isinstance(config.get("text_config"), dict):
        value = config["text_config"].get("tie_word_embeddings")
    if value is None and arch is not None:
        value = arch.defaults.get("tie_word_embeddings")
    return bool(value) if value is not None and value != "?" else False


def same_start(a: tuple[Path, int, int], b: tuple[Path, int, int]) -> bool:
    """Whether two tensors' first bytes (file, start, length) are equal: a differing first MiB
    proves them different; an equal one is taken as the same tensor saved twice."""
    (fa, sa, la), (fb, sb, lb) = a, b
    if la != lb:
        return False
    n = min(la, COMPARED_BYTES)
    try:
        with open(fa, "rb") as x, open(fb, "rb") as y:
            x.seek(sa)
            y.seek(sb)
            return x.read(n) == y.read(n)
    except OSError:   # unreadable now: no claim either way
        return True
