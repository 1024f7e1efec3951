"""Training configs in the vocabularies people use, on real files of axolotl and LLaMA-Factory
(fixtures/configs/, vendored with their licenses) and on dumps written here."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.config import read_config, scan_config
from doctor.probes.configvocab import recognise, settings
from doctor.targets import discover_project

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "configs"

# file -> (vocabulary or the other tool's kind, the findings that are true of it)
EXPECTED = {
    "axolotl/llama-3_qlora.yml": ("axolotl", ["CONFIG-LORA-ALPHA-LOW"]),   # lora_r 32, lora_alpha 16
    "axolotl/mistral_lora.yml": ("axolotl", ["CONFIG-LORA-ALPHA-LOW"]),
    "axolotl/gemma3_gemma-3-1b-qlora.yml": ("axolotl", ["CONFIG-LORA-ALPHA-LOW"]),
    # Muon's rate (0.02) is not AdamW's: no learning-rate warning
    "axolotl/qwen2_muon-pretrain-fsdp2.yaml": ("axolotl", []),
    # LoRA at 3e-3 with AdamW: 15 times the documented 2e-4
    "axolotl/expert_parallel_qwen3_30ba3b_ep_lora_4gpu.yaml": ("axolotl", ["CONFIG-LORA-ALPHA-LOW", "CONFIG-LR-TOO-HIGH"]),
    "llama-factory/train_lora_qwen3_lora_sft.yaml": ("llama-factory", []),
    "llama-factory/train_lora_qwen3_lora_dpo.yaml": ("llama-factory", []),
    "llama-factory/extras_fsdp_qlora_llama3_lora_sft.yaml": ("llama-factory", []),
    "llama-factory/train_full_qwen3_full_sft.yaml": ("llama-factory", []),
    "llama-factory/extras_muon_qwen2_full_sft.yaml": ("llama-factory", []),
    "llama-factory/v1_train_lora_train_lora_sft.yaml": ("llama-factory", []),
    "llama-factory/accelerate_fsdp_config.yaml": ("accelerate config", []),
    "llama-factory/deepspeed_ds_z3_config.json": ("DeepSpeed config", []),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_configs_are_recognised_and_judged_only_where_true(name: str) -> None:
    kind, ids = EXPECTED[name]
    path = str(REAL / name)
    cfg = read_config(path)
    assert cfg.kind.vocabulary == kind or cfg.kind.other == kind
    # the run's VRAM estimate is a note on every config whose model's size its name gives
    assert sorted(o.entry_id for o in scan_config(path).observations if o.entry_id != "RUN-VRAM-ESTIMATE") == ids


def test_every_vendored_config_is_listed() -> None:
    on_disk = {str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.suffix in (".yml", ".yaml", ".json")}
    assert on_disk == set(EXPECTED)


def test_other_tools_configs_get_a_note_and_no_finding() -> None:
    result = scan_config(str(REAL / "llama-factory/deepspeed_ds_z3_config.json"))
    assert result.observations == []
    assert [a.detail for a in result.areas] == ["DeepSpeed config: not a training config, not checked"]


def test_llama_factory_keys_map_onto_the_neutral_settings() -> None:
    cfg = read_config(str(REAL / "llama-factory/extras_fsdp_qlora_llama3_lora_sft.yaml"))
    found = {name: s.value for name, s in cfg.settings.items()}
    assert found["load_in_4bit"] is True            # quantization_bit: 4 (bitsandbytes)
    assert found["lora_r"] == 8 and found["target_modules"] == "all-linear"
    assert found["max_seq_length"] == 2048 and found["finetuning"] == "lora"
    assert cfg.settings["max_seq_length"].key == "cutoff_len"
    assert (cfg.at("load_in_4bit").line, cfg.at("load_in_4bit").column) == (3, 19)


def test_a_gptq_checkpoint_is_not_read_as_4bit_loading() -> None:
    data = {"stage": "sft", "finetuning_type": "lora", "quantization_bit": 4, "quantization_method": "gptq"}
    assert "load_in_4bit" not in settings(data, recognise(data).vocabulary)


def test_axolotl_keys_map_onto_the_neutral_settings() -> None:
    cfg = read_config(str(REAL / "axolotl/llama-3_qlora.yml"))
    found = {name: s.value for name, s in cfg.settings.items()}
    assert found["finetuning"] == "qlora" and found["load_in_4bit"] is True
    assert found["per_device_train_batch_size"] == cfg.data["micro_batch_size"]
    assert found["max_seq_length"] == cfg.data["sequence_len"] and found["bf16"] == "auto"
    assert found["optimizer"] == "paged_adamw_32bit"


def test_axolotl_full_fine_tune_is_not_judged_by_lora_rules(tmp_path: Path) -> None:
    cfg = tmp_path / "fft.yml"
    cfg.write_text("base_model: x\nsequence_len: 2048\nmicro_batch_size: 1\nlora_r: 32\nlora_alpha: 16\n")
    assert scan_config(str(cfg)).observations == []
    (tmp_path / "lora.yml").write_text(cfg.read_text() + "adapter: lora\n")
    assert [o.entry_id for o in scan_config(str(tmp_path / "lora.yml")).observations] == ["CONFIG-LORA-ALPHA-LOW"]


def test_training_args_dump_is_checked_with_json_lines_and_columns(tmp_path: Path) -> None:
    dump = {"output_dir": "out", "per_device_train_batch_size": 2, "learning_rate": 2e-4,
            "lr_scheduler_type": "linear", "optim": "adamw_8bit", "fp16": True, "bf16": True,
            "logging_steps": 1, "num_train_epochs": 1}
    path = tmp_path / "training_args.json"
    path.write_text(json.dumps(dump, indent=2))
    result = scan_config(str(path))
    (obs,) = result.observations
    assert obs.entry_id == "CONFIG-FP16-AND-BF16"
    assert (obs.location.line, obs.location.column) == (8, 11)   # the value of "bf16"
    assert result.areas[0].detail.startswith("SFTConfig / TrainingArguments")


def test_json_values_deep_inside_are_placed(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"model_name": "x",\n "lora": {"r": 128, "alpha": [1, {"k": "v"}]},\n'
                    ' "fast_inference": true, "max_lora_rank": 64}')
    cfg = read_config(str(path))
    assert (cfg.at("lora_r").line, cfg.at("lora_r").column) == (2, 16)
    assert (cfg.at("max_lora_rank").line, cfg.at("max_lora_rank").column) == (3, 43)
    assert cfg.places[("lora", "alpha", 1, "k")].line == 2


def test_a_folder_scan_names_other_tools_configs_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "ds_z3_config.json").write_text((REAL / "llama-factory/deepspeed_ds_z3_config.json").read_text())
    (tmp_path / "fsdp.yaml").write_text((REAL / "llama-factory/accelerate_fsdp_config.yaml").read_text())
    (tmp_path / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    (tmp_path / "training_args.json").write_text('{"output_dir": "o", "optim": "adamw_8bit", "logging_steps": 1}')
    (tmp_path / "sft.yaml").write_text((REAL / "llama-factory/train_lora_qwen3_lora_sft.yaml").read_text())
    (tmp_path / "data.json").write_text('[{"text": "a"}]')
    found = discover_project(tmp_path)
    assert found.of("config") == [str(tmp_path / "sft.yaml"), str(tmp_path / "training_args.json")]
    assert found.of("dataset") == [str(tmp_path / "data.json")]
    assert found.skipped == {"DeepSpeed config: not a training config": 1,
                             "accelerate config: not a training config": 1,
                             "a YAML or JSON file without training settings": 1}   # package.json


def test_the_console_says_what_was_skipped(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    (tmp_path / "ds_z3_config.json").write_text((REAL / "llama-factory/deepspeed_ds_z3_config.json").read_text())
    (tmp_path / "sft.yaml").write_text((REAL / "llama-factory/train_lora_qwen3_lora_sft.yaml").read_text())
    out = run_cli("scan", "--no-env", str(tmp_path)).stdout
    assert "Skipped: 1 file (DeepSpeed config: not a training config)." in out


@pytest.mark.parametrize("data, kind", [
    ({"services": {"trainer": {"image": "unsloth/unsloth"}}, "version": "3"}, "docker-compose file"),
    ({True: "push", "jobs": {"test": {"runs-on": "ubuntu-latest"}}}, "GitHub workflow"),   # YAML 1.1's `on:`
    ({"apiVersion": "batch/v1", "kind": "Job"}, "Kubernetes manifest"),
    ({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16}, "model config (config.json)"),
    ({"peft_type": "LORA", "r": 16, "target_modules": ["q_proj"]}, "LoRA adapter config (adapter_config.json)"),
    ({"train_micro_batch_size_per_gpu": "auto", "bf16": {"enabled": "auto"}}, "DeepSpeed config"),
    ({"stage": "sft", "finetuning_type": "lora", "per_device_train_batch_size": 2, "output_dir": "o"}, "llama-factory"),
    ({"base_model": "x", "datasets": [{"path": "d", "type": "alpaca"}], "num_epochs": 1}, "axolotl"),
    ({"output_dir": "o", "optim": "adamw_8bit", "logging_steps": 1, "max_length": 1024}, "trl"),
    ({"model_name": "unsloth/x", "max_seq_length": 2048, "r": 16, "output_dir": "o"}, "unsloth"),
    ({"learning_rate": 2e-4, "lora_r": 16}, "unsloth"),   # two keys of Unsloth's arguments: ours
    ({"<|start|>": "start token", "<|end|>": "end token"}, None),
])
def test_vocabularies_and_other_tools_are_told_apart(data: dict, kind: str | None) -> None:
    found = recognise(data)
    assert (found.vocabulary or found.other) == kind
