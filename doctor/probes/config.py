"""Training configs (YAML or JSON: axolotl-style files, SFTConfig dumps, our users' own),
checked key by key with the line and column of each value.

The vocabulary (axolotl, LLaMA-Factory, an SFTConfig/TrainingArguments dump, Unsloth-style
keys) is recognised from the keys and mapped onto neutral settings (`configvocab`), so each
rule is written once. Configs of other tools (DeepSpeed, accelerate, docker-compose, GitHub
workflows) are named and skipped; files with no training keys are not examined.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation, Safety
from doctor.probes import configedit, configvocab, limits, runmemory, savemethod
from doctor.probes.configfile import ConfigFile
from doctor.probes.jsonmarks import value_spans
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.script import LR_CEILING  # one ceiling for scripts and configs

# What each refusal of limits/safeyaml is reported as.
_REFUSED = {
    limits.TOO_LARGE: "CONFIG-TOO-LARGE",
    limits.TOO_DEEP: "CONFIG-NESTING-TOO-DEEP",
    limits.ALIAS_BOMB: "CONFIG-YAML-ALIAS-BOMB",
    limits.RECURSIVE_ALIAS: "CONFIG-YAML-RECURSIVE-ALIAS",
}


def read_config(path: str, text: str | None = None, max_bytes: int = limits.CONFIG_MAX_BYTES,
                max_nodes: int = limits.YAML_MAX_NODES) -> ConfigFile | Observation:
    """The config at `path` read and recognised, or the observation saying why it was not read."""
    if text is None:
        try:
            text = limits.read_text(path, max_bytes, errors="replace")
        except limits.Refusal as refused:
            return _refused(path, refused)
    loaded = _load(path, text, max_bytes, max_nodes)
    if isinstance(loaded, Observation):
        return loaded
    data, places = loaded
    kind = configvocab.recognise(data)
    found = configvocab.settings(data, kind.vocabulary) if kind.vocabulary else {}
    return ConfigFile(path, text, data, places, kind, found)


def _load(path: str, text: str, max_bytes: int, max_nodes: int) -> tuple[Any, Mapping[Any, Any]] | Observation:
    """The config's data and the position of each value, or the observation saying why not.
    Size, nesting and aliases are checked before anything is built."""
    from doctor.kb.yamlnodes import YamlSyntaxError, load_with_marks

    try:
        limits.check_size(text, max_bytes)
        if path.lower().endswith(".json"):
            try:
                data = limits.load_json(text)   # one parse: the depth check's
            except ValueError as exc:
                return Observation("CONFIG-SYNTAX", Location(path, getattr(exc, "lineno", None),
                                                             getattr(exc, "colno", None)), {"error": str(exc)})
            return data, value_spans(text)
        from doctor.probes.safeyaml import check_yaml   # PyYAML loads only when a config is read

        check_yaml(text, max_nodes)
        return load_with_marks(text)
    except limits.Refusal as refused:
        return _refused(path, refused)
    except YamlSyntaxError as exc:
        return Observation("CONFIG-SYNTAX", Location(path, exc.line, exc.column), {"error": exc.message})


def _refused(path: str, refused: limits.Refusal) -> Observation:
    return Observation(_REFUSED[refused.kind], Location(path, refused.line, refused.column),
                       {"file": Path(path).name, **refused.values})


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return float(value)   # YAML 1.1 reads 2e-4 (no dot) as a string; axolotl and trl take it
        except ValueError:
            return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_config(cfg: ConfigFile) -> list[Observation]:
    value, at = cfg.value, cfg.at
    out: list[Observation] = []
    lr = _number(value("learning_rate"))
    optimizer = str(value("optimizer") or "").lower()
    # Muon's documented rates are two orders above AdamW's (0.02): the ceiling is AdamW's
    if lr is not None and lr > LR_CEILING and "muon" not in optimizer:
        out.append(Observation("CONFIG-LR-TOO-HIGH", at("learning_rate"), {"learning_rate": lr, "ceiling": LR_CEILING}))
    bits = [n for n in ("load_in_4bit", "load_in_8bit", "load_in_16bit") if value(n) is True]
    if len(bits) > 1:
        out.append(Observation("CONFIG-QUANT-CONFLICT", at(bits[1]), {"flags": ", ".join(
            cfg.settings[b].key for b in bits)}))
    if value("fp16") is True and value("bf16") is True:   # "auto" (axolotl) chooses one
        out.append(Observation("CONFIG-FP16-AND-BF16", at("bf16"), fixes=configedit.set_value(
            cfg, "fp16", False, "Set fp16 to false and keep bf16 (bf16 needs an Ampere or newer GPU)", Safety.UNSAFE)))
    r, rank_cap = value("lora_r"), value("max_lora_rank")
    lora = configvocab.is_lora(cfg.settings)
    if value("fast_inference") is True and isinstance(r, int) and isinstance(rank_cap, int) and rank_cap < r:
        out.append(Observation("CONFIG-MAX-LORA-RANK", at("max_lora_rank"), {"r": r, "max_lora_rank": rank_cap},
                               fixes=configedit.set_value(cfg, "max_lora_rank", r, f"Set max_lora_rank to r ({r})")))
    alpha = value("lora_alpha")
    if lora and isinstance(r, int) and isinstance(alpha, (int, float)) and r > 0 and alpha / r < 1:
        out.append(Observation("CONFIG-LORA-ALPHA-LOW", at("lora_alpha"), {"r": r, "alpha": alpha, "scale": alpha / r}))
    method = value("save_method")
    if method == "merged_4bit":
        out.append(Observation("CONFIG-MERGED-4BIT", at("save_method")))
    elif savemethod.unknown(method):
        meant = savemethod.intended(method)
        fixes = configedit.set_value(cfg, "save_method", meant, f'Set save_method to "{meant}"') \
            if meant and meant != "merged_4bit" else ()
        out.append(Observation("CONFIG-SAVE-METHOD-UNKNOWN", at("save_method"),
                               {"save_method": method, "meant": meant or "-"}, fixes=fixes))
    return out


def config_observations(path: str) -> list[Observation]:
    """What the probe observes in the config at `path` (what --fix re-checks after each edit)."""
    cfg = read_config(path)
    if isinstance(cfg, Observation):
        return [cfg]
    return check_config(cfg) if cfg.kind.vocabulary else []


def run_settings(cfg: ConfigFile) -> dict[str, Any]:
    """The config's settings as the VRAM estimate reads them. axolotl and LLaMA-Factory train
    with transformers' Trainer, whose optimizer defaults to AdamW in 32-bit state
    (transformers/training_args.py, `default_optim`), not Unsloth's adamw_8bit."""
    settings = {name: s.value for name, s in cfg.settings.items()}
    if cfg.kind.vocabulary in (configvocab.AXOLOTL, configvocab.LLAMA_FACTORY, configvocab.TRL):
        settings.setdefault("optimizer", "adamw_torch")
    data = cfg.data if isinstance(cfg.data, dict) else {}
    if cfg.kind.vocabulary == configvocab.LLAMA_FACTORY and not data.get("pure_bf16") and not data.get("use_badam"):
        # LLaMA-Factory casts the trainable weights to float32 unless pure_bf16 or BAdam
        # (src/llamafactory/model/adapter.py, cast_trainable_params_to_fp32)
        settings["fp32_trainable"] = True
    return settings


def run_estimate(cfg: ConfigFile) -> tuple[dict[str, Any], list[Observation]]:
    """The VRAM estimate of the run the config describes (its model's size from its name).
    Preference, reward and RL stages are left out, as for scripts (settings/memory.py): they
    hold paired rows, generations or a second model."""
    data = cfg.data if isinstance(cfg.data, dict) else {}
    if data.get("rl") or str(data.get("stage") or "sft").lower() not in ("sft", "pt"):
        return {}, []
    settings = run_settings(cfg)
    where = cfg.at("model_name") if "model_name" in cfg.settings else Location(cfg.path, 1, 1)
    return runmemory.estimate_run(settings, where)


def scan_config(path: str) -> ProbeResult:
    cfg = read_config(path)
    if isinstance(cfg, Observation):
        detail = "does not parse" if cfg.entry_id == "CONFIG-SYNTAX" else "not checked"
        return ProbeResult(observations=[cfg], areas=[AreaStatus("config", f"Config {path}", detail, path=path)])
    if cfg.kind.other:
        # another tool's config: said once, never judged by training rules
        return ProbeResult(areas=[AreaStatus("config", f"Config {path}",
                                             f"{cfg.kind.other}: not a training config, not checked", path=path)])
    if cfg.kind.vocabulary is None:
        return ProbeResult()
    facts = FactCollector(f"config:{path}")
    facts.set(f"config.{Path(path).name}.vocabulary", cfg.kind.vocabulary)
    for name, setting in cfg.settings.items():
        if isinstance(setting.value, (int, float, str, bool)):
            facts.set(f"config.{name}", setting.value)
    memory_facts, memory_notes = run_estimate(cfg)
    for key, value in memory_facts.items():
        facts.set(key, value)
    detail = f"{cfg.kind.label}, {len(cfg.settings)} training settings"
    return ProbeResult(facts=facts.freeze(), observations=check_config(cfg) + memory_notes,
                       areas=[AreaStatus("config", f"Config {path}", detail, path=path)])


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    bounds = {k: int(v) for k, v in options.items() if k in ("max_bytes", "max_nodes")}   # small limits, for examples
    cfg = read_config(options.get("name", "config.yaml"), text, **bounds)
    if isinstance(cfg, Observation):
        return [cfg]
    return check_config(cfg) if cfg.kind.vocabulary else []   # not config_observations: the text is given


class ConfigProbe(Probe):
    """Training configs (YAML, JSON), checked key by key at their lines."""

    name, area, label = "config", "config", "Config"
    headings = {"config": "Config"}
    suffixes = (".yaml", ".yml", ".json")
    option, option_help = "--config", "a training config (YAML or JSON)"
    examples = {"config.yaml": _example, "run.vram": runmemory.example}

    not_found_reason = "a YAML or JSON file without training settings"

    def finds(self, path: Path) -> bool:
        # In a folder, another tool's config (DeepSpeed, accelerate...) is skipped and counted
        # under its name; .json is also every package's, editor's and model's file, so only
        # JSON whose keys name a training vocabulary is taken
        if not self.claims_file(path):
            return False
        kind = _kind_of(path)
        if kind is not None and kind.other:
            return False
        return path.suffix.lower() != ".json" or (kind is not None and kind.vocabulary is not None)

    def skip_reason(self, path: Path) -> str | None:
        kind = _kind_of(path)
        return f"{kind.other}: not a training config" if kind is not None and kind.other else None

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_config(target.path)


_FIND_MAX_BYTES = 1 << 20   # a training config is a few KB: larger JSON is data


def _kind_of(path: Path) -> configvocab.Recognised | None:
    """What the small config at `path` is; None when it cannot be read as one."""
    try:
        if path.stat().st_size > _FIND_MAX_BYTES:
            return None
        cfg = read_config(str(path))
    except OSError:
        return None
    return None if isinstance(cfg, Observation) else cfg.kind


PROBE = ConfigProbe()
