"""Rules over a script's settings (doctor/probes/settings/extract.py): located observations,
and the facts that rules needing the environment or a model folder read.

Every value judged here is one the text fixes; an unresolved value is never judged. Rules
about trl's keyword arguments read the installed trl's own source (trl_api.py), and are
skipped where the script installs another trl than the one installed here.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from doctor.findings import Location, Observation
from doctor.probes import runmemory
from doctor.probes.settings.extract import (CONFIG, LOAD, LORA_CONFIG, PEFT, TRAINER, UNKNOWN, SettingsCall)
from doctor.probes.settings.cross import MAX_SEQ, MAX_SEQ_AT, TEXT_FIELD, TEXT_FIELD_AT
from doctor.probes.settings.memory import supervised_run
from doctor.probes.settings.trl_api import TRANSFORMERS_CLASSES, TransformersApi, TrlApi
from doctor.probes.settings.unsloth_api import CONFIG_EXTRAS, TRAINER_EXTRAS, UnslothCompat

Place = Callable[[ast.AST], Location]

LORA_LR_CEILING = 5e-4        # the docs' LoRA range is 5e-6 .. 2e-4; the official notebooks go up to 5e-4 (TTS)
# The docs say 5e-6 for RL; the official notebooks go up to 2e-4 for both RL (gpt-oss 2048
# game) and full fine-tuning (Spark-TTS 0.5B), so only rates above that are judged.
RL_OR_FULL_LR_CEILING = 2e-4
RL_CONFIGS = frozenset({"GRPOConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "RLOOConfig", "CPOConfig",
                        "OnlineDPOConfig", "PPOConfig", "GKDConfig", "XPOConfig", "NashMDConfig", "GSPOConfig"})
MLP_MODULES = frozenset({"gate_proj", "up_proj", "down_proj", "w1", "w2", "w3", "fc1", "fc2", "mlp",
                         "dense_h_to_4h", "dense_4h_to_h", "gate_up_proj", "c_fc"})
ATTENTION_MODULES = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj"})
SMART_CHECKPOINTING_FROM = 512   # unsloth/models/_utils.py:506: below this "unsloth" is plain checkpointing
# Families Unsloth trains in float32 whatever fp16 says (FORCE_FLOAT32, unsloth/models/loader.py:206,
# model types gemma3/gemma3n/gemma4/gpt_oss/qwen3_5/qwen3_moe/glm4_moe), as their repo names spell them.
FORCED_FLOAT32_NAMES = ("gemma3", "gemma4", "embeddinggemma", "gptoss", "qwen35", "glm4", "a3b", "a22b", "qwen3moe")


@dataclass(frozen=True)
class ScriptFacts:
    """What the rules need to know about the script beyond its calls."""

    uses_unsloth: bool
    trl: TrlApi | None = None                 # None: not installed, or the script installs another trl
    unsloth: UnslothCompat | None = None
    trl_imports: frozenset[str] = frozenset()  # local names imported from trl
    transformers: TransformersApi | None = None   # None: not installed, or the script installs another
    transformers_imports: frozenset[str] = frozenset()
    line_name: Callable[[int], str] = field(default=lambda line: f"line {line}")
    # a node's place as plain data, resolved only if a finding is made of it (doctor/probes/settings/cross.py)
    where_later: Callable[[ast.AST], dict[str, Any]] = field(
        default=lambda node: {"path": "", "line": node.lineno, "column": node.col_offset + 1})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_bf16(dtype: Any) -> bool:
    return dtype in ("torch.bfloat16", "bfloat16", "bf16")


def settings_observations(calls: list[SettingsCall], script: ScriptFacts, place: Place
                          ) -> tuple[list[Observation], dict[str, Any]]:
    out: list[Observation] = []
    facts: dict[str, Any] = {}
    loads = [c for c in calls if c.kind == LOAD]
    full_ft = any(c.value("full_finetuning", False) is True for c in loads)
    out += _load_rules(loads, place)
    out += _precision_rules(calls, loads, script, place, facts, full_ft)
    out += _learning_rate_rules(calls, place, full_ft)
    out += _adapter_rules(calls, loads, script, place)
    if script.trl is not None:
        out += _trl_keyword_rules(calls, script, place)
    if script.transformers is not None:
        out += _transformers_keyword_rules(calls, script, place)
    run = supervised_run(calls, _model_name(loads[0]) if loads else None)
    if run:
        run_facts, notes = runmemory.estimate_run(run, place(_at(loads[0], "model_name")))
        out += notes
        facts.update({key: dict(fact, at=script.where_later(_at(loads[0], "model_name")))
                      for key, fact in run_facts.items()})
    sized = next((c for c in loads if _number(c.value("max_seq_length"))), None)
    if sized is not None:
        facts[MAX_SEQ] = sized.value("max_seq_length")
        facts[MAX_SEQ_AT] = script.where_later(_at(sized, "max_seq_length"))
    with_field = next((c for c in calls if isinstance(c.value("dataset_text_field"), str)), None)
    if with_field is not None:
        facts[TEXT_FIELD] = with_field.value("dataset_text_field")
        facts[TEXT_FIELD_AT] = script.where_later(_at(with_field, "dataset_text_field"))
    return [o for o in out if o is not None], facts


def _at(call: SettingsCall, key: str) -> ast.AST:
    arg = call.kwargs.get(key)
    return arg.node if arg is not None else call.node


# --- loading -----------------------------------------------------------------------------

def _load_rules(loads: Iterable[SettingsCall], place: Place) -> list[Observation]:
    out: list[Observation] = []
    for call in loads:
        flags = {"load_in_4bit": call.value("load_in_4bit", True), "load_in_8bit": call.value("load_in_8bit", False),
                 "load_in_16bit": call.value("load_in_16bit", False), "load_in_fp8": call.value("load_in_fp8", False)}
        if any(v is UNKNOWN for v in flags.values()) or "quantization_config" in call.kwargs:
            continue
        full_ft = call.value("full_finetuning", False)
        if full_ft is True:
            quantized = [k for k in ("load_in_4bit", "load_in_8bit") if k in call.kwargs and flags[k] is True]
            if quantized:
                out.append(Observation("SCRIPT-FULL-FT-QUANTIZED", place(_at(call, quantized[0])),
                                       {"flag": quantized[0], "call": call.name}))
            continue
        model = _model_name(call)
        if isinstance(model, str) and model.lower().endswith("-bf16"):
            continue   # a -bf16 repo turns the quantized flags off itself (unsloth/models/loader.py:1492)
        on = [k for k, v in flags.items() if v not in (False, None)]
        if len(on) >= 2:
            implied = [k for k in on if k not in call.kwargs]
            out.append(Observation("SCRIPT-LOAD-PRECISION-CONFLICT", place(_at(call, next(k for k in on if k in call.kwargs))),
                                   {"flags": " and ".join(f"{k}=True" for k in on), "call": call.name,
                                    "default_note": " (load_in_4bit=True is the default)" if "load_in_4bit" in implied else ""}))
    return out


def _model_name(call: SettingsCall) -> Any:
    """The model a loader call names (keyword or first argument), or UNKNOWN."""
    if "model_name" in call.kwargs:
        return call.kwargs["model_name"].value
    if call.node.args and isinstance(call.node.args[0], ast.Constant):
        return call.node.args[0].value
    return UNKNOWN


def _forced_float32(name: str) -> bool:
    flat = "".join(ch for ch in name.lower() if ch.isalnum())
    return any(family in flat for family in FORCED_FLOAT32_NAMES)


# --- precision ---------------------------------------------------------------------------

def _precision_rules(calls: list[SettingsCall], loads: list[SettingsCall], script: ScriptFacts, place: Place,
                     facts: dict[str, Any], full_ft: bool) -> list[Observation]:
    out: list[Observation] = []
    bf16_load = next((c for c in loads if _is_bf16(c.value("dtype", None)) or _is_bf16(c.value("torch_dtype", None))), None)
    names = [_model_name(c) for c in loads]
    if any(isinstance(n, str) and _forced_float32(n) for n in names):
        return out   # Unsloth switches these to float32 training: fp16=True raises nothing
    auto_dtype = bool(loads) and all(c.value("dtype", None) is None and c.value("torch_dtype", None) is None for c in loads)
    if bf16_load is not None:
        facts["script.bf16_at"] = script.line_name(bf16_load.node.lineno)
    for call in calls:
        if call.kind != CONFIG:
            continue
        fp16, bf16 = call.value("fp16", False), call.value("bf16", False)
        if bf16 is True:
            facts["script.bf16_at"] = script.line_name(call.kwargs["bf16"].node.lineno)
        if fp16 is not True:
            continue
        if bf16 is True:
            out.append(Observation("SCRIPT-FP16-AND-BF16", place(_at(call, "fp16")), {"call": call.name}))
            continue
        if not script.uses_unsloth or full_ft:
            continue   # Unsloth's trainer switches a full fine-tune to bf16 itself (rl.py:2647)
        if bf16_load is not None and isinstance(_model_name(bf16_load), str):   # a known model: not one trained in float32
            out.append(Observation("SCRIPT-FP16-ON-BF16-MODEL", place(_at(call, "fp16")),
                                   {"call": call.name, "load_at": script.line_name(bf16_load.node.lineno)}))
        elif auto_dtype:
            facts["script.fp16_auto_dtype_at"] = script.line_name(call.kwargs["fp16"].node.lineno)
    return out


# --- learning rate -----------------------------------------------------------------------

def _learning_rate_rules(calls: list[SettingsCall], place: Place, full_ft: bool) -> list[Observation]:
    out: list[Observation] = []
    own_optimizer = any(c.kind == TRAINER and ("optimizers" in c.kwargs or "optimizer_cls_and_kwargs" in c.kwargs)
                        for c in calls)
    for call in calls:
        lr = call.value("learning_rate")
        if call.kind not in (CONFIG, TRAINER) or not _number(lr) or own_optimizer:
            continue
        optim = call.value("optim", "")
        if isinstance(optim, str) and "muon" in optim.lower():
            continue   # Muon's rates (about 0.02) are another scale; its own docs set them
        regime = "RL" if call.short in RL_CONFIGS else "full fine-tuning" if full_ft else "LoRA"
        if regime == "LoRA" and lr > LORA_LR_CEILING:
            out.append(Observation("SCRIPT-LR-TOO-HIGH", place(_at(call, "learning_rate")),
                                   {"learning_rate": lr, "ceiling": LORA_LR_CEILING}))
        elif regime != "LoRA" and lr > RL_OR_FULL_LR_CEILING:
            out.append(Observation("SCRIPT-LR-TOO-HIGH-FOR-REGIME", place(_at(call, "learning_rate")),
                                   {"learning_rate": lr, "ceiling": RL_OR_FULL_LR_CEILING, "regime": regime,
                                    "typical": "5e-6" if regime == "RL" else "2e-5"}))
    return out


# --- adapters ----------------------------------------------------------------------------

def _adapter_rules(calls: list[SettingsCall], loads: list[SettingsCall], script: ScriptFacts,
                   place: Place) -> list[Observation]:
    out: list[Observation] = []
    max_lens = [c.value("max_seq_length", 2048) for c in loads]
    for call in calls:
        if call.kind not in (PEFT, LORA_CONFIG):
            continue
        r, alpha = call.value("r"), call.value("lora_alpha")
        rslora = call.value("use_rslora", False) is not False   # rank-stabilised: scaled by alpha / sqrt(r)
        if _number(r) and _number(alpha) and r > 0 and alpha not in (r, 2 * r) and not rslora:
            out.append(Observation("SCRIPT-LORA-ALPHA-RATIO", place(_at(call, "lora_alpha")),
                                   {"r": r, "lora_alpha": alpha, "scale": round(alpha / r, 4)}))
        modules = call.value("target_modules")
        if isinstance(modules, (list, tuple, set)) and all(isinstance(m, str) for m in modules):
            names = {m.rsplit(".", 1)[-1] for m in modules}
            if names & ATTENTION_MODULES and not names & MLP_MODULES:
                out.append(Observation("SCRIPT-LORA-NO-MLP", place(_at(call, "target_modules")),
                                       {"modules": ", ".join(sorted(names))}))
        if call.kind == PEFT and script.uses_unsloth and call.value("use_gradient_checkpointing") is True:
            known = [m for m in max_lens if _number(m)]
            if not known or max(known) >= SMART_CHECKPOINTING_FROM:
                out.append(Observation("SCRIPT-GRADIENT-CHECKPOINTING-TRUE", place(_at(call, "use_gradient_checkpointing")),
                                       {"max_seq_length": max(known) if known else "2048 (the default)"}))
    return out


# --- trl's keyword arguments -------------------------------------------------------------

def _trl_keyword_rules(calls: list[SettingsCall], script: ScriptFacts, place: Place) -> list[Observation]:
    trl = script.trl
    assert trl is not None
    out: list[Observation] = []
    for call in calls:
        if call.kind not in (CONFIG, TRAINER) or not _from_trl(call, script):
            continue
        signature = trl.signature(call.short)
        if signature is None or signature.params is None:
            continue
        config_name = call.short[: -len("Trainer")] + "Config" if call.kind == TRAINER else call.short
        config = trl.signature(config_name) if call.kind == TRAINER else signature
        config_params = config.params if config is not None and config.params is not None else frozenset()
        for key in call.kwargs:
            if key in signature.params:
                continue
            values = {"keyword": key, "call": call.short, "trl": trl.version, "declared_at": signature.where,
                      "config": config_name}
            outcome = _keyword_outcome(call, key, config_params, script)
            if outcome is not None:
                entry, extra = outcome
                out.append(Observation(entry, place(_at(call, key)), {**values, **extra}))
    return out


def _transformers_keyword_rules(calls: list[SettingsCall], script: ScriptFacts, place: Place) -> list[Observation]:
    """TrainingArguments and Trainer from transformers: Unsloth renames nothing on them."""
    api = script.transformers
    assert api is not None
    renames = script.unsloth.renames if script.unsloth else {}
    out: list[Observation] = []
    for call in calls:
        if call.short not in TRANSFORMERS_CLASSES or not _imported(call, script.transformers_imports, "transformers"):
            continue
        signature = api.signature(call.short)
        if signature is None or signature.params is None:
            continue
        for key in call.kwargs:
            if key in signature.params:
                continue
            new = "processing_class" if key == "tokenizer" else renames.get(key)
            hint = f"its name is now `{new}`" if new in signature.params else "no field of this name"
            out.append(Observation("SCRIPT-TRANSFORMERS-KWARG-REJECTED", place(_at(call, key)),
                                   {"keyword": key, "call": call.short, "transformers": api.version,
                                    "declared_at": signature.where, "hint": hint}))
    return out


def _gives_args(call: SettingsCall) -> bool:
    """The trainer call passes `args` (by keyword, a `**mapping` that may hold it, or second
    positional argument, as trl's trainers order them)."""
    return "args" in call.kwargs or call.open_ended or len(call.node.args) >= 2


def _keyword_outcome(call: SettingsCall, key: str, config_params: frozenset[str],
                     script: ScriptFacts) -> tuple[str, dict[str, Any]] | None:
    unsloth = script.uses_unsloth
    renames = script.unsloth.renames if script.unsloth else {}
    removed = script.unsloth.removed if script.unsloth else {}
    if call.kind == TRAINER:
        if unsloth and key in TRAINER_EXTRAS:
            return None
        in_config = key in config_params or (unsloth and key in CONFIG_EXTRAS) or renames.get(key) in config_params
        if in_config and unsloth and _gives_args(call):
            return "SCRIPT-TRL-KWARG-MOVED", {"how": f"unsloth moves it into `args` ({call.short}'s config)"}
        if in_config and unsloth:
            # unsloth/trainer.py:1732 moves config fields only `if "args" in kwargs`: without
            # args= Unsloth's trainer raises TypeError too (checked on a GPU with 2026.10.9)
            hint = (f"it is a field of {_config_of(call)}; Unsloth moves it there only when the trainer "
                    "is also given `args=`")
        else:
            hint = f"it is a field of {_config_of(call)}: set it there" if in_config else "no trl trainer or config takes it"
        return "SCRIPT-TRL-KWARG-REJECTED", {"hint": hint}
    if unsloth:
        if key in CONFIG_EXTRAS:
            return None
        if key in renames and renames[key] in config_params:
            return "SCRIPT-TRL-KWARG-MOVED", {"how": f"unsloth passes it on as `{renames[key]}`, its new name"}
        advice = removed.get(key)
        return "SCRIPT-TRL-KWARG-DROPPED", {"advice": advice or "check the spelling against trl's documentation"}
    near = renames.get(key)
    hint = f"trl renamed it to `{near}`" if near in config_params else (
        "its name in this trl is `max_length`" if key == "max_seq_length" and "max_length" in config_params else
        "no field of this name")
    return "SCRIPT-TRL-KWARG-REJECTED", {"hint": hint}


def _config_of(call: SettingsCall) -> str:
    return call.short[: -len("Trainer")] + "Config"


def _from_trl(call: SettingsCall, script: ScriptFacts) -> bool:
    return _imported(call, script.trl_imports, "trl")


def _imported(call: SettingsCall, names: frozenset[str], module: str) -> bool:
    """The callee is `module.X`, or a name imported from `module`."""
    head = call.name.split(".", 1)[0]
    return call.name == f"{module}.{call.short}" or (head == call.name and head in names)


def trl_import_observations(nodes: Sequence[ast.AST], trl: TrlApi, place: Place) -> list[Observation]:
    """`from trl import X` for names the installed trl does not export (moved, or gone)."""
    out: list[Observation] = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("trl."):
            if not trl.has_submodule(node.module[len("trl."):]):   # trl.experimental.openenv: no such module here
                out.append(Observation("SCRIPT-TRL-IMPORT-MISSING", place(node), {"name": node.module, "trl": trl.version}))
            continue
        if not (isinstance(node, ast.ImportFrom) and node.module == "trl" and node.level == 0):
            continue
        for alias in node.names:
            if alias.name == "*" or alias.name in trl.exports or alias.name.startswith("__"):
                continue
            moved = trl.moved_to(alias.name)
            if moved is not None:
                out.append(Observation("SCRIPT-TRL-IMPORT-MOVED", place(node),
                                       {"name": alias.name, "module": moved, "trl": trl.version}))
            elif not trl.has_submodule(alias.name):   # `from trl import trainer` imports the subpackage
                out.append(Observation("SCRIPT-TRL-IMPORT-MISSING", place(node), {"name": alias.name, "trl": trl.version}))
    return out


def imported_names(nodes: Sequence[ast.AST], module: str) -> frozenset[str]:
    """Local names bound by `from module... import X`."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == module:
            names.update(alias.asname or alias.name for alias in node.names)
    return frozenset(names)


__all__ = ["ScriptFacts", "settings_observations", "trl_import_observations", "imported_names"]
