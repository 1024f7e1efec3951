"""Which kind of file a YAML/JSON config is, and its training settings in one neutral vocabulary.

People write the same run in several vocabularies: an SFTConfig / TrainingArguments dump
(`training_args.json`), axolotl (`sequence_len`, `micro_batch_size`, `adapter: qlora`),
LLaMA-Factory (`cutoff_len`, `lora_rank`, `quantization_bit`, `stage`), or keys named after
Unsloth's own arguments (`max_seq_length`, `load_in_4bit`, `r`). `recognise` names the
vocabulary from the keys; `settings` maps the file's keys onto neutral names (the names of
Unsloth's and trl's arguments), keeping each key's own spelling and place, so every rule is
written once. Files that are configs of something else (DeepSpeed, accelerate,
docker-compose, GitHub workflows, a model's config.json) are recognised so they are skipped
with a note, never judged as training configs.

Pure functions of parsed data: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

Path = tuple[Any, ...]

UNSLOTH, TRL, AXOLOTL, LLAMA_FACTORY = "unsloth", "trl", "axolotl", "llama-factory"
TRAINING = (UNSLOTH, TRL, AXOLOTL, LLAMA_FACTORY)
LABELS = {
    UNSLOTH: "Unsloth-style settings",
    TRL: "SFTConfig / TrainingArguments",
    AXOLOTL: "axolotl",
    LLAMA_FACTORY: "LLaMA-Factory",
}

# Configs of other tools: a label, and keys that all appear in such a file (any one set).
OTHER_KINDS: tuple[tuple[str, tuple[frozenset[str], ...]], ...] = (
    ("DeepSpeed config", (frozenset({"zero_optimization"}), frozenset({"train_micro_batch_size_per_gpu"}),
                          frozenset({"train_batch_size", "gradient_clipping"}))),
    ("accelerate config", (frozenset({"compute_environment", "distributed_type"}),
                           frozenset({"distributed_type", "num_processes"}))),
    ("docker-compose file", (frozenset({"services"}),)),
    ("GitHub workflow", (frozenset({"on", "jobs"}), frozenset({True, "jobs"}))),   # YAML 1.1 reads `on:` as True
    ("Kubernetes manifest", (frozenset({"apiVersion", "kind"}),)),
    ("conda environment", (frozenset({"dependencies", "channels"}), frozenset({"name", "dependencies"}))),
    ("pre-commit config", (frozenset({"repos"}),)),
    ("model config (config.json)", (frozenset({"architectures", "model_type"}), frozenset({"model_type", "hidden_size"}))),
    ("LoRA adapter config (adapter_config.json)", (frozenset({"peft_type", "target_modules"}),)),
    ("tokenizer config", (frozenset({"tokenizer_class"}), frozenset({"added_tokens_decoder"}))),
    ("generation config", (frozenset({"_from_model_config"}),)),
    ("trainer state (trainer_state.json)", (frozenset({"log_history", "global_step"}),)),
)

# Keys only one vocabulary uses: two of them name it. Shared keys (learning_rate, bf16,
# lora_alpha, gradient_accumulation_steps) say nothing about which it is.
_MARKERS = {
    LLAMA_FACTORY: {"stage", "finetuning_type", "cutoff_len", "lora_rank", "lora_target", "template",
                    "quantization_bit", "model_name_or_path", "plot_loss", "max_samples", "overwrite_cache",
                    "use_unsloth", "peft_config", "model_class", "train_dataset", "kernel_config", "dist_config",
                    "preprocessing_num_workers", "pure_bf16", "export_dir", "infer_backend"},
    AXOLOTL: {"base_model", "sequence_len", "micro_batch_size", "adapter", "lora_target_linear",
              "lora_target_modules", "num_epochs", "lr_scheduler", "optimizer", "val_set_size",
              "sample_packing", "datasets", "wandb_project", "dataset_prepared_path", "base_model_config",
              "tokenizer_type", "evals_per_epoch", "saves_per_epoch", "pad_to_sequence_len", "lora_model_dir"},
    TRL: {"per_device_train_batch_size", "lr_scheduler_type", "optim", "num_train_epochs", "logging_steps",
          "output_dir", "warmup_steps", "weight_decay", "dataset_text_field", "max_length", "packing",
          "per_device_eval_batch_size", "eval_strategy", "save_strategy", "report_to", "logging_dir",
          "adam_beta1", "adam_epsilon", "max_grad_norm", "num_generations", "beta"},
    UNSLOTH: {"model_name", "max_seq_length", "load_in_4bit", "load_in_8bit", "load_in_16bit",
              "full_finetuning", "use_gradient_checkpointing", "r", "target_modules", "lora_dropout",
              "fast_inference", "max_lora_rank", "save_method", "random_state", "use_rslora"},
}


@dataclass(frozen=True)
class Setting:
    """One training setting: its neutral name's value, the file's own key, and its path."""

    value: Any
    key: str
    path: Path


Settings = dict[str, Setting]


def _bits(n: int) -> Callable[[Any, dict[str, Any]], Iterator[tuple[str, Any]]]:
    def convert(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        # LLaMA-Factory: quantization_bit quantizes on the fly with bitsandbytes unless another
        # quantization_method is named (GPTQ/AWQ/... checkpoints are quantized already)
        if data.get("quantization_method", "bnb") in ("bnb", "bitsandbytes") and value == n:
            yield f"load_in_{n}bit", True
    return convert


def _same(name: str) -> Callable[[Any, dict[str, Any]], Iterator[tuple[str, Any]]]:
    def convert(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        yield name, value
    return convert


def _finetuning_type(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "finetuning", "full" if value == "full" else value


def _adapter(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "finetuning", value or "full"


def _lora_target(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    # LLaMA-Factory: a comma-separated string, "all" for every linear layer
    if isinstance(value, str):
        yield "target_modules", "all-linear" if value == "all" else [m.strip() for m in value.split(",")]


def _linear(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if value is True:
        yield "target_modules", "all-linear"


def _not(name: str) -> Callable[[Any, dict[str, Any]], Iterator[tuple[str, Any]]]:
    def convert(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        if isinstance(value, bool):
            yield name, not value
    return convert


def _pure_bf16(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if value is True:
        yield "bf16", True


def _muon(value: Any, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if value is True:   # LLaMA-Factory's switch to its Muon optimizer
        yield "optimizer", "muon"


Convert = Callable[[Any, dict[str, Any]], Iterator[tuple[str, Any]]]

# Each vocabulary's keys (at the top level, or inside any section) and the neutral settings
# they give. The neutral names are Unsloth's and trl's argument names.
_COMMON: dict[str, Convert] = {k: _same(k) for k in (
    "learning_rate", "bf16", "fp16", "tf32", "lora_alpha", "lora_dropout", "gradient_accumulation_steps",
    "gradient_checkpointing", "trust_remote_code", "max_steps", "per_device_train_batch_size",
    "load_in_4bit", "load_in_8bit", "save_method", "weight_decay", "warmup_ratio", "warmup_steps")}

VOCABULARY: dict[str, dict[str, Convert]] = {
    UNSLOTH: {**_COMMON, **{k: _same(k) for k in (
        "max_seq_length", "load_in_16bit", "full_finetuning", "use_gradient_checkpointing", "target_modules",
        "fast_inference", "max_lora_rank", "optimizer", "num_train_epochs", "dataset_text_field")},
        "r": _same("lora_r"), "lora_r": _same("lora_r"), "lora_rank": _same("lora_r"), "rank": _same("lora_r"),
        "alpha": _same("lora_alpha"), "lr": _same("learning_rate"), "optim": _same("optimizer"),
        "model_name": _same("model_name"), "base_model": _same("model_name"),
        "model_name_or_path": _same("model_name"), "max_length": _same("max_seq_length"),
        "sequence_len": _same("max_seq_length"), "max_seq_len": _same("max_seq_length"),
        "micro_batch_size": _same("per_device_train_batch_size"), "batch_size": _same("per_device_train_batch_size"),
        "bias": _same("lora_bias")},
    TRL: {**_COMMON, "optim": _same("optimizer"), "max_length": _same("max_seq_length"),
          "max_seq_length": _same("max_seq_length"), "num_train_epochs": _same("num_train_epochs"),
          "dataset_text_field": _same("dataset_text_field"), "packing": _same("packing"),
          "model_name_or_path": _same("model_name"), "model_name": _same("model_name"),
          "r": _same("lora_r"), "lora_r": _same("lora_r"), "lora_target_modules": _same("target_modules"),
          "use_gradient_checkpointing": _same("use_gradient_checkpointing")},
    AXOLOTL: {**_COMMON, "base_model": _same("model_name"), "sequence_len": _same("max_seq_length"),
              "micro_batch_size": _same("per_device_train_batch_size"), "optimizer": _same("optimizer"),
              "num_epochs": _same("num_train_epochs"), "lora_r": _same("lora_r"), "adapter": _adapter,
              "lora_target_modules": _same("target_modules"), "lora_target_linear": _linear,
              "dataset_text_field": _same("dataset_text_field"), "chat_template": _same("chat_template")},
    LLAMA_FACTORY: {**_COMMON, "model_name_or_path": _same("model_name"), "model": _same("model_name"),
                    "cutoff_len": _same("max_seq_length"), "lora_rank": _same("lora_r"), "r": _same("lora_r"),
                    "lora_target": _lora_target, "target_modules": _lora_target, "quantization_bit": _bits(4),
                    "finetuning_type": _finetuning_type, "optim": _same("optimizer"),
                    "micro_batch_size": _same("per_device_train_batch_size"),
                    "num_train_epochs": _same("num_train_epochs"), "pure_bf16": _pure_bf16,
                    "disable_gradient_checkpointing": _not("gradient_checkpointing"), "use_unsloth": _same("use_unsloth"),
                    "stage": _same("stage"), "use_muon": _muon, "template": _same("chat_template")},
}
_EIGHT_BIT = _bits(8)


@dataclass(frozen=True)
class Recognised:
    vocabulary: str | None   # one of TRAINING, or None
    other: str | None = None  # the kind of a config of another tool, when it is one

    @property
    def label(self) -> str:
        return LABELS.get(self.vocabulary or "", self.other or "unknown")


def recognise(data: Any) -> Recognised:
    """Which vocabulary a config's top-level keys are written in, or which other tool's
    config it is. A mapping with no vocabulary's markers is neither (not a config we read)."""
    if not isinstance(data, dict):
        return Recognised(None)
    keys = set(data)
    for label, key_sets in OTHER_KINDS:
        if any(needed <= keys for needed in key_sets):
            return Recognised(None, label)
    scores = {name: len(keys & markers) for name, markers in _MARKERS.items()}
    # LLaMA-Factory and axolotl configs also carry trl's TrainingArguments names: their own
    # markers decide first
    tools = [n for n in (LLAMA_FACTORY, AXOLOTL) if scores[n] >= 2]
    if tools:
        return Recognised(max(tools, key=lambda n: scores[n]))
    if max(scores[TRL], scores[UNSLOTH]) >= 2:
        return Recognised(UNSLOTH if scores[UNSLOTH] >= scores[TRL] else TRL)
    # a config of our users' own: at least two keys that name an Unsloth or trl argument
    return Recognised(UNSLOTH) if len(settings(data, UNSLOTH)) >= 2 else Recognised(None)


def _leaves(data: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(path, value) of every key: sections (lora:, training:, peft_config:) are looked into."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*path, k), v
            if isinstance(v, dict):
                yield from _leaves(v, (*path, k))


def settings(data: Any, vocabulary: str) -> Settings:
    """The neutral settings a config of `vocabulary` sets; the first spelling found wins."""
    table = VOCABULARY[vocabulary]
    out: Settings = {}
    if not isinstance(data, dict):
        return out
    for path, value in _leaves(data):
        key = path[-1]
        if not isinstance(key, str) or isinstance(value, dict):
            continue
        convert = table.get(key)
        if convert is None:
            continue
        pairs = list(convert(value, data))
        if vocabulary == LLAMA_FACTORY and key == "quantization_bit":
            pairs += list(_EIGHT_BIT(value, data))
        for name, converted in pairs:
            out.setdefault(name, Setting(converted, key, path))
    if vocabulary == AXOLOTL and "adapter" not in data:
        out.setdefault("finetuning", Setting("full", "adapter", ()))   # axolotl: no adapter is a full fine-tune
    return out


def is_lora(found: Settings) -> bool:
    """LoRA settings apply: the config trains an adapter (or does not say it does not)."""
    kind = found["finetuning"].value if "finetuning" in found else None
    return kind in (None, "lora", "qlora") and not (found.get("full_finetuning") and found["full_finetuning"].value is True)
