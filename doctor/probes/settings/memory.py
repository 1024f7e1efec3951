"""The run a training script describes, in the neutral settings the VRAM estimate reads
(doctor/probes/runmemory.py): the loader's model, length and bits, the adapter's rank,
targets and checkpointing, the trainer config's batch size and optimizer. A setting the text
does not fix keeps Unsloth's default (unsloth/models/loader.py:1241: max_seq_length 2048,
load_in_4bit True; llama.py:4571: r 16, use_gradient_checkpointing "unsloth";
rl.py:3313: batch 4, adamw_8bit)."""
from __future__ import annotations

from typing import Any, Sequence

from doctor.probes.settings.extract import CONFIG, LOAD, PEFT, UNKNOWN, SettingsCall

# RL trainers hold more than one step's worth: generations (and vLLM's share with
# fast_inference), a reference model, paired rows. The estimate is for supervised runs.
RL_CONFIGS = frozenset({"GRPOConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "PPOConfig", "RLOOConfig",
                        "OnlineDPOConfig", "GKDConfig", "CPOConfig", "NashMDConfig", "XPOConfig"})

_FROM_LOAD = ("max_seq_length", "load_in_4bit", "load_in_8bit", "full_finetuning")
_FROM_PEFT = ("r", "target_modules", "use_gradient_checkpointing")
_FROM_CONFIG = ("per_device_train_batch_size", "optim", "gradient_checkpointing", "max_length", "max_seq_length")


def _known(value: Any) -> bool:
    return value is not UNKNOWN and value is not None


def supervised_run(calls: Sequence[SettingsCall], model_name: Any) -> dict[str, Any]:
    """The settings of the script's first load and what follows it; {} where no estimate fits
    (no loader, an RL trainer, vLLM inside the run)."""
    loads = [c for c in calls if c.kind == LOAD]
    if not loads or not isinstance(model_name, str) or loads[0].value("fast_inference", False) is not False:
        return {}
    if any(c.kind == CONFIG and c.short in RL_CONFIGS for c in calls):
        return {}
    settings: dict[str, Any] = {"model_name": model_name}
    pairs = [(loads[0], _FROM_LOAD)] + [(c, _FROM_PEFT) for c in calls if c.kind == PEFT][:1] + \
        [(c, _FROM_CONFIG) for c in calls if c.kind == CONFIG][:1]
    for call, keys in pairs:
        for key in keys:
            value = call.value(key, None)
            if _known(value):
                settings.setdefault("max_seq_length" if key == "max_length" else key, value)
    settings.setdefault("load_in_4bit", True)   # the loaders' default
    return settings
