"""Training configs (YAML or JSON: axolotl-style files, SFTConfig dumps, our users' own),
checked key by key with the line and column of each value.

Only files that look like training configs are examined: at least two known keys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation
from doctor.probes import limits
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.script import LR_CEILING  # one ceiling for scripts and configs

# canonical name -> the spellings configs use for it
ALIASES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("learning_rate", "lr"),
    "lora_r": ("lora_r", "r", "lora_rank", "rank"),
    "lora_alpha": ("lora_alpha", "alpha"),
    "lora_dropout": ("lora_dropout",),
    "max_seq_length": ("max_seq_length", "sequence_len", "max_length", "max_seq_len"),
    "max_lora_rank": ("max_lora_rank",),
    "load_in_4bit": ("load_in_4bit",),
    "load_in_8bit": ("load_in_8bit",),
    "load_in_16bit": ("load_in_16bit",),
    "fp16": ("fp16",),
    "bf16": ("bf16",),
    "fast_inference": ("fast_inference",),
    "trust_remote_code": ("trust_remote_code",),
    "save_method": ("save_method",),
    "model_name": ("model_name", "base_model", "model_name_or_path"),
    "per_device_train_batch_size": ("per_device_train_batch_size", "micro_batch_size", "batch_size"),
}
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in aliases}


def _flatten(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, leaf value): keys may sit at the top or inside sections (lora:, training:)."""
    if isinstance(data, dict):
        out = []
        for k, v in data.items():
            out += _flatten(v, (*path, k))
        return out
    return [(path, data)]


# What each refusal of limits/safeyaml is reported as.
_REFUSED = {
    limits.TOO_LARGE: "CONFIG-TOO-LARGE",
    limits.TOO_DEEP: "CONFIG-NESTING-TOO-DEEP",
    limits.ALIAS_BOMB: "CONFIG-YAML-ALIAS-BOMB",
    limits.RECURSIVE_ALIAS: "CONFIG-YAML-RECURSIVE-ALIAS",
}


def read_config(path: str, text: str | None = None, max_bytes: int = limits.CONFIG_MAX_BYTES,
                max_nodes: int = limits.YAML_MAX_NODES) -> tuple[dict[str, tuple[Any, Location]], list[Observation]]:
    loaded = _load(path, text, max_bytes, max_nodes)
    if isinstance(loaded, Observation):
        return {}, [loaded]
    data, marks = loaded
    found: dict[str, tuple[Any, Location]] = {}
    for key_path, value in _flatten(data):
        if not key_path or not isinstance(key_path[-1], str):
            continue
        name = _LOOKUP.get(key_path[-1])
        if name and name not in found:
            mark = marks.get(key_path)
            found[name] = (value, Location(path, mark.line if mark else None, mark.column if mark else None))
    return found, []


def _load(path: str, text: str | None, max_bytes: int, max_nodes: int) -> tuple[Any, dict[Any, Any]] | Observation:
    """The config's data and the position of each value, or the observation saying why not.
    Size, nesting and aliases are checked before anything is built."""
    from doctor.kb.yamlnodes import YamlSyntaxError, load_with_marks

    try:
        if text is None:
            text = limits.read_text(path, max_bytes, errors="replace")
        else:
            limits.check_size(text, max_bytes)
        if path.endswith(".json"):
            try:
                return limits.load_json(text), {}   # one parse: the depth check's
            except ValueError as exc:
                return Observation("CONFIG-SYNTAX", Location(path, getattr(exc, "lineno", None),
                                                             getattr(exc, "colno", None)), {"error": str(exc)})
        from doctor.probes.safeyaml import check_yaml   # PyYAML loads only when a config is read

        check_yaml(text, max_nodes)
        return load_with_marks(text)
    except limits.Refusal as refused:
        return Observation(_REFUSED[refused.kind], Location(path, refused.line, refused.column),
                           {"file": Path(path).name, **refused.values})
    except YamlSyntaxError as exc:
        return Observation("CONFIG-SYNTAX", Location(path, exc.line, exc.column), {"error": exc.message})


def looks_like_training_config(found: dict[str, Any]) -> bool:
    return len(found) >= 2


def check_config(found: dict[str, tuple[Any, Location]]) -> list[Observation]:
    def value(name: str) -> Any:
        return found[name][0] if name in found else None

    def at(name: str) -> Location:
        return found[name][1]

    out: list[Observation] = []
    lr = value("learning_rate")
    if isinstance(lr, str):
        try:
            lr = float(lr)   # YAML reads 2e-4 without a dot as a string
        except ValueError:
            lr = None
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > LR_CEILING:
        out.append(Observation("CONFIG-LR-TOO-HIGH", at("learning_rate"), {"learning_rate": lr, "ceiling": LR_CEILING}))
    bits = [n for n in ("load_in_4bit", "load_in_8bit", "load_in_16bit") if value(n) is True]
    if len(bits) > 1:
        out.append(Observation("CONFIG-QUANT-CONFLICT", at(bits[1]), {"flags": ", ".join(bits)}))
    if value("fp16") is True and value("bf16") is True:
        out.append(Observation("CONFIG-FP16-AND-BF16", at("bf16")))
    r, rank_cap = value("lora_r"), value("max_lora_rank")
    if value("fast_inference") is True and isinstance(r, int) and isinstance(rank_cap, int) and rank_cap < r:
        out.append(Observation("CONFIG-MAX-LORA-RANK", at("max_lora_rank"), {"r": r, "max_lora_rank": rank_cap}))
    alpha = value("lora_alpha")
    if isinstance(r, int) and isinstance(alpha, (int, float)) and r > 0 and alpha / r < 1:
        out.append(Observation("CONFIG-LORA-ALPHA-LOW", at("lora_alpha"), {"r": r, "alpha": alpha, "scale": alpha / r}))
    if value("save_method") == "merged_4bit":
        out.append(Observation("CONFIG-MERGED-4BIT", at("save_method")))
    return out


def scan_config(path: str) -> ProbeResult:
    found, problems = read_config(path)
    if problems:
        detail = "does not parse" if problems[0].entry_id == "CONFIG-SYNTAX" else "not checked"
        return ProbeResult(observations=problems, areas=[AreaStatus("config", f"Config {path}", detail, path=path)])
    if not looks_like_training_config(found):
        return ProbeResult()
    observations = check_config(found)
    facts = FactCollector(f"config:{path}")
    for name, (v, _) in found.items():
        if isinstance(v, (int, float, str, bool)):
            facts.set(f"config.{name}", v)
    return ProbeResult(facts=facts.freeze(), observations=observations,
                       areas=[AreaStatus("config", f"Config {path}", f"{len(found)} training settings", path=path)])


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    bounds = {k: int(v) for k, v in options.items() if k in ("max_bytes", "max_nodes")}   # small limits, for examples
    found, problems = read_config(options.get("name", "config.yaml"), text, **bounds)
    return problems or check_config(found)


class ConfigProbe(Probe):
    """Training configs (YAML, JSON), checked key by key at their lines."""

    name, area, label = "config", "config", "Config"
    headings = {"config": "Config"}
    suffixes = (".yaml", ".yml")
    option, option_help = "--config", "a training config (YAML or JSON)"
    examples = {"config.yaml": _example}

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_config(target.path)


PROBE = ConfigProbe()
