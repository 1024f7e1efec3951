"""The VRAM estimate: shapes and LoRA sizes against real transformers/PEFT models, the
settings vocabularies, and the recorded GPU calibration against the stated band."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from doctor.probes import vram
from tests.helpers.cli import ROOT

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 300, "tie_word_embeddings": False}
QWEN_TIED = {"model_type": "qwen2", "hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 6, "num_key_value_heads": 2, "vocab_size": 500, "tie_word_embeddings": True}

COUNT_CHILD = r"""
import json, sys
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
cfg = json.loads(sys.argv[1])
config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
model = AutoModelForCausalLM.from_config(config)
total = sum(p.numel() for p in model.parameters())
linear = sum(m.weight.numel() for n, m in model.named_modules()
             if type(m).__name__ == "Linear" and "lm_head" not in n)
peft = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                           "gate_proj", "up_proj", "down_proj"]))
lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
print(json.dumps({"total": total, "linear": linear, "lora": lora}))
"""


def real_counts(config: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", COUNT_CHILD, json.dumps(config)], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("config", [LLAMA, QWEN_TIED], ids=["llama", "qwen2-tied"])
def test_shape_and_lora_size_match_real_models(config):
    real = real_counts(config)
    shape = vram.shape_from_config(config)
    # Qwen2's q/k/v carry biases that the estimate leaves out (a few hundred parameters).
    assert abs(shape.params - real["total"]) <= 3 * config["num_hidden_layers"] * config["hidden_size"]
    assert shape.linear_params == real["linear"]
    assert vram.lora_params(shape, rank=8) == real["lora"]


def test_headers_count_wins_over_the_computed_one():
    shape = vram.shape_from_config(LLAMA, stored_params=123_456, linear_params=100_000)
    assert (shape.params, shape.linear_params) == (123_456, 100_000)
    assert "headers" in shape.source


def test_multimodal_config_uses_the_text_model():
    shape = vram.shape_from_config({"model_type": "gemma3", "text_config": dict(LLAMA), "vision_config": {}})
    assert shape.hidden == 64 and shape.layers == 3


@pytest.mark.parametrize("name,expected", [
    ("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit", 8e9),
    ("unsloth/Llama-3.2-1B-Instruct", 1e9),
    ("Qwen/Qwen2.5-0.5B", 0.5e9),
    ("unsloth/gemma-3-270m-it", 0.27e9),
    ("unsloth/Qwen3-30B-A3B", 30e9),          # every expert is loaded
    ("unsloth/Phi-3.5-mini-instruct", None),
    ("./outputs/checkpoint-60", None),
])
def test_parameter_count_from_a_model_name(name, expected):
    got = vram.params_from_name(name)
    assert got == (int(expected) if expected else None)


def test_each_setting_moves_the_estimate_the_way_unsloth_does():
    shape = vram.shape_from_params(8_000_000_000)
    base = vram.RunSettings(batch=2, seq=2048, load_in_4bit=True, optimizer="adamw_8bit")
    e = vram.estimate(shape, base)
    sixteen = vram.estimate(shape, vram.RunSettings(batch=2, seq=2048))
    assert e.weights_mib < sixteen.weights_mib / 2.5   # embeddings and lm_head stay 16-bit
    no_gc = vram.estimate(shape, vram.RunSettings(batch=2, seq=2048, load_in_4bit=True, gradient_checkpointing=False))
    plain_gc = vram.estimate(shape, vram.RunSettings(batch=2, seq=2048, load_in_4bit=True, gradient_checkpointing=True))
    assert e.activations_mib < plain_gc.activations_mib < no_gc.activations_mib
    adamw = vram.estimate(shape, vram.RunSettings(batch=2, seq=2048, load_in_4bit=True, optimizer="adamw_torch"))
    assert adamw.optimizer_mib == 4 * e.optimizer_mib
    full = vram.estimate(shape, vram.RunSettings(batch=2, seq=2048, full_finetuning=True))
    # Unsloth trains a bf16 model's weights in bf16: 2 bytes of weight, 2 of gradient, 2 of 8-bit AdamW
    assert full.trainable_params == shape.params and full.counted_mib == shape.params * 6 / vram.MIB
    torch_adamw = vram.estimate(shape, vram.RunSettings(full_finetuning=True, optimizer="adamw_torch"))
    assert torch_adamw.optimizer_mib == shape.params * 4 / vram.MIB   # zeros_like(bf16 weight): 2 + 2
    master = vram.estimate(shape, vram.RunSettings(full_finetuning=True, optimizer="adamw_torch", fp32_trainable=True))
    assert master.counted_mib == shape.params * 16 / vram.MIB         # float32 master weights: 4 + 4 + 8
    assert e.band == vram.BAND_FROM_NAME   # a shape guessed from the name is less certain


def test_unsloth_checkpointing_below_512_tokens_is_plain_checkpointing():
    assert vram.effective_checkpointing("unsloth", 256) is True
    assert vram.effective_checkpointing("unsloth", 512) == "unsloth"


def test_logits_are_one_chunk_of_rows_as_unsloths_fused_loss_holds_them():
    """unsloth_zoo/fused_losses/fused_linear.py fused_linear_rows: a power of two near
    tokens * hidden / vocab, at least 512 * 151936 / vocab rows (at least 512), at most 4096
    and 2 GiB of float32 logits; never more rows than tokens."""
    shape = vram.shape_from_config(dict(LLAMA, vocab_size=128256))
    assert vram.fused_ce_rows(256, 4096, 128256) == 256            # fewer tokens than a chunk
    assert vram.fused_ce_rows(8 * 8192, 4096, 128256) == 2048      # 65536 * 4096 / 128256 = 2093
    assert vram.fused_ce_rows(2 * 2048, 4096, 128256) == 512       # the least for this vocabulary
    assert vram.fused_ce_rows(2 * 2048, 1024, 32000) == 2048       # 512 * 151936 / 32000 = 2431
    assert vram.fused_ce_rows(10**6, 8192, 262144) == 2048         # 2 GiB / (262144 * 4 bytes)
    small = vram.estimate(shape, vram.RunSettings(batch=1, seq=256))
    assert small.logits_mib == 256 * 128256 * 4 / vram.MIB


def test_unknown_optimizer_is_counted_as_adamw_and_said():
    shape = vram.shape_from_config(LLAMA)
    e = vram.estimate(shape, vram.RunSettings(optimizer="my_fancy_opt"))
    assert any("my_fancy_opt" in n for n in e.notes)
    assert e.optimizer_mib == e.trainable_params * 8 / vram.MIB


@pytest.mark.parametrize("values,expected", [
    # An Unsloth notebook's keywords
    ({"load_in_4bit": True, "max_seq_length": 2048, "per_device_train_batch_size": 2, "r": 16,
      "optim": "adamw_8bit", "use_gradient_checkpointing": "unsloth"},
     {"batch": 2, "seq": 2048, "rank": 16, "load_in_4bit": True, "optimizer": "adamw_8bit"}),
    # axolotl
    ({"adapter": "qlora", "sequence_len": 4096, "micro_batch_size": 1, "lora_r": 32, "optimizer": "paged_adamw_8bit",
      "gradient_checkpointing": True, "lora_target_modules": ["q_proj", "v_proj"]},
     {"batch": 1, "seq": 4096, "rank": 32, "load_in_4bit": True, "gradient_checkpointing": True,
      "targets": ("q_proj", "v_proj")}),
    # LLaMA-Factory
    ({"finetuning_type": "lora", "quantization_bit": 8, "cutoff_len": 1024, "lora_rank": 8, "lora_target": "all",
      "per_device_train_batch_size": 4},
     {"batch": 4, "seq": 1024, "rank": 8, "load_in_8bit": True, "targets": vram.PROJECTIONS}),
    ({"finetuning_type": "full", "cutoff_len": 512}, {"full_finetuning": True, "seq": 512}),
])
def test_settings_of_each_vocabulary_map_onto_one_run(values, expected):
    run = vram.run_from_settings(values)
    for key, value in expected.items():
        assert getattr(run, key) == value, key


CALIBRATION = ROOT / "bench" / "results" / "vram-2026-12-07" / "vram-measured.json"


@pytest.mark.skipif(not CALIBRATION.exists(), reason="no recorded GPU calibration")
def test_recorded_gpu_runs_fall_inside_the_stated_band():
    sys.path.insert(0, str(ROOT / "bench"))
    import vram_table

    data = json.loads(CALIBRATION.read_text())
    _, errors = vram_table.table(data)
    assert len(errors) >= 12            # 3 widths x 2 sequence lengths x (16-bit, 4-bit)
    assert all(abs(e) <= vram.BAND for e in errors), errors


# ---------------------------------------------------------------- in a scan
from doctor.findings import Location  # noqa: E402
from doctor.probes import runmemory  # noqa: E402


def test_a_config_scan_gives_the_runs_estimate_at_the_model_line(tmp_path, knowledge_base):
    from doctor import api

    cfg = tmp_path / "qlora.yml"
    cfg.write_text("base_model: NousResearch/Meta-Llama-3-8B\nadapter: qlora\nload_in_4bit: true\n"
                   "sequence_len: 4096\nmicro_batch_size: 2\nlora_r: 32\nlora_alpha: 64\nlearning_rate: 0.0002\n"
                   "optimizer: paged_adamw_8bit\ngradient_checkpointing: true\n")
    report = api.scan([], configs=[str(cfg)], env=False)
    (f,) = [f for f in report.findings if f.id == "RUN-VRAM-ESTIMATE"]
    assert f.location.line == 1 and "4-bit LoRA r=32" in f.title and "2 × 4096" in f.title


def _facts(settings: dict) -> dict:
    facts, _ = runmemory.estimate_run(settings, Location("train.yml", 3, 5))
    return facts


@pytest.mark.parametrize("memory,expected", [(81559, []), (19456, ["RUN-VRAM-TIGHT"]), (15360, ["RUN-VRAM-WONT-FIT"])])  # a T4
def test_the_verdict_against_the_gpu(memory, expected):
    facts = _facts({"model_name": "unsloth/Meta-Llama-3.1-8B-Instruct", "max_seq_length": 2048})   # 16-bit
    got = runmemory.memory_observations({**facts, runmemory.MEMORY_FACT: memory})
    assert [o.entry_id for o in got] == expected
    assert all(o.location.path == "train.yml" and o.location.line == 3 for o in got)


def test_a_prequantized_checkpoint_is_counted_in_4bit():
    facts = _facts({"model_name": "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit", "max_seq_length": 2048})
    (fact,) = facts.values()
    assert fact["kind"].startswith("4-bit")
    assert runmemory.memory_observations({**facts, runmemory.MEMORY_FACT: 16384}) == []


def test_no_gpu_or_no_size_means_no_verdict():
    assert runmemory.memory_observations(_facts({"model_name": "meta-llama/Llama-3.1-70B"})) == []
    assert _facts({"model_name": "./outputs/checkpoint-60"}) == {}


def test_an_official_notebook_gets_its_runs_estimate_at_the_loader():
    from doctor.probes.script import scan_script

    nb = ROOT / "fixtures" / "notebooks" / "official" / "Llama3.1_(8B)-Alpaca.ipynb"
    (note,) = [o for o in scan_script(str(nb)).observations if o.entry_id == "RUN-VRAM-ESTIMATE"]
    assert note.location.cell is not None and note.location.line   # the cell, and the raw .ipynb line
    assert note.values["kind"] == "4-bit LoRA r=16" and note.values["batch"] == 2 and note.values["seq"] == 2048
    assert "Llama-3.1-8B" in note.values["model"] or "llama-3-8b" in note.values["model"].lower()


def test_rl_runs_get_no_supervised_estimate(tmp_path):
    from doctor.probes.script import scan_script

    script = tmp_path / "grpo.py"
    script.write_text("from unsloth import FastLanguageModel\nfrom trl import GRPOConfig\n"
                      "model, tok = FastLanguageModel.from_pretrained('unsloth/Qwen3-4B-Base', max_seq_length=2048)\n"
                      "args = GRPOConfig(per_device_train_batch_size=1, num_generations=4)\n")
    assert [o for o in scan_script(str(script)).observations if o.entry_id == "RUN-VRAM-ESTIMATE"] == []


def test_the_html_reports_plot_holds_each_runs_estimate_against_the_gpu():
    from doctor.results.plots import plots_for

    facts = _facts({"model_name": "unsloth/Meta-Llama-3.1-8B-Instruct", "max_seq_length": 2048})
    (plot,) = plots_for({**facts, "gpu.0.memory_total_mib": 16384})
    assert [p.label for p in plot.parts][:3] == ["weights", "trainable + gradients", "optimizer state"]
    assert plot.limit == 16384 and "does not fit" in plot.caption and "train.yml" in plot.caption
    (fact,) = facts.values()
    assert abs(plot.total - fact["total_mib"]) < 5


@pytest.mark.parametrize("name,active", [("unsloth/Qwen3-30B-A3B-Instruct-2507", 3e9),
                                         ("unsloth/diffusiongemma-26B-A4B-it", 4e9),
                                         ("unsloth/Llama-3.1-8B", None), ("unsloth/gpt-oss-20b", None)])
def test_a_mixture_of_experts_name_gives_its_active_size(name, active):
    assert vram.active_params_from_name(name) == (int(active) if active else None)


def test_a_mixture_of_experts_sizes_its_activations_by_the_active_experts():
    run = {"model_name": "unsloth/Qwen3-30B-A3B", "load_in_4bit": False, "max_seq_length": 2048,
           "use_gradient_checkpointing": False}
    (moe,) = _facts(run).values()
    (dense,) = _facts(dict(run, model_name="unsloth/Qwen2.5-32B")).values()
    moe_parts, dense_parts = dict(moe["parts"]), dict(dense["parts"])
    assert moe_parts["activations"] < dense_parts["activations"] / 3
    assert moe_parts["weights"] > 0.8 * dense_parts["weights"]   # every expert is loaded


def test_targets_given_as_a_regular_expression_count_every_projection():
    # axolotl's voxtral example: lora_target_modules is a regular expression over module paths
    regex = "language_model.model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj"
    run = vram.run_from_settings({"lora_target_modules": regex})
    assert run.targets == vram.PROJECTIONS
    assert vram.run_from_settings({"target_modules": ["q_proj", "v_proj"]}).targets == ("q_proj", "v_proj")


@pytest.mark.parametrize("extra", ["rl: dpo\n", "stage: dpo\n", "stage: rm\n"])
def test_preference_and_rl_configs_get_no_supervised_estimate(tmp_path, extra):
    from doctor.probes.config import scan_config

    cfg = tmp_path / "run.yml"
    cfg.write_text("base_model: meta-llama/Meta-Llama-3-8B-Instruct\nadapter: lora\nsequence_len: 4096\n"
                   "micro_batch_size: 2\nlearning_rate: 0.0002\n" + extra)
    assert [o for o in scan_config(str(cfg)).observations if o.entry_id == "RUN-VRAM-ESTIMATE"] == []
    cfg.write_text(cfg.read_text().replace(extra, ""))
    assert [o.entry_id for o in scan_config(str(cfg)).observations].count("RUN-VRAM-ESTIMATE") == 1
