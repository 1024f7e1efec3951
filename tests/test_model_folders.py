"""Model folders built with transformers and PEFT on the CPU, then broken the way real ones
are: what the folder is and how it loads, an adapter for another base, a stale shard index,
an auto_map pointing at a file that is not there."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.model import scan_model

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")


def ids(result) -> list[str]:
    return sorted(o.entry_id for o in result.observations if o.entry_id != "MODEL-NO-TOKENIZER")


def tiny_llama(folder: Path, hidden: int = 16, vocab: int = 64, **save: object) -> Path:
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)
    transformers.LlamaForCausalLM(config).save_pretrained(folder, **save)
    return folder


def adapter_over(base: Path, folder: Path, resize: int | None = None, **lora: object) -> Path:
    from peft import LoraConfig, get_peft_model

    model = transformers.LlamaForCausalLM.from_pretrained(base)
    if resize:
        model.resize_token_embeddings(resize)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], **lora)).save_pretrained(folder)
    return folder


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_each_kind_of_folder_says_what_it_is_and_how_it_loads(tmp_path: Path) -> None:
    import torch

    merged = tiny_llama(tmp_path / "merged32")
    result = scan_model(str(merged))
    assert result.facts.get("model.kind") == "merged-32bit"
    assert "AutoModelForCausalLM (no trust_remote_code)" in result.areas[0].detail

    half = tmp_path / "merged16"
    transformers.LlamaForCausalLM.from_pretrained(merged, torch_dtype=torch.bfloat16).save_pretrained(half)
    assert scan_model(str(half)).facts.get("model.kind") == "merged-16bit"

    edit_json(half / "config.json", quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True})
    four = scan_model(str(half))
    assert four.facts.get("model.kind") == "merged-4bit" and "bitsandbytes" in four.areas[0].detail

    adapter = scan_model(str(adapter_over(merged, tmp_path / "adapter")))
    assert adapter.facts.get("model.kind") == "lora-adapter" and adapter.facts.get("model.lora_r") == 4
    assert "PeftModel" in adapter.areas[0].detail and "FastLanguageModel" in adapter.areas[0].detail
    assert adapter.facts.get("model.base_local") is True and ids(adapter) == []

    gguf = tmp_path / "gguf"
    gguf.mkdir()
    (gguf / "model-Q4_K_M.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    result = scan_model(str(gguf))
    assert result.facts.get("model.kind") == "gguf" and "llama.cpp" in result.areas[0].detail
    assert result.observations == []   # a GGUF file carries its own tokenizer

    empty = tmp_path / "empty"
    empty.mkdir()
    assert scan_model(str(empty)).facts.get("model.kind") == "unknown"


def test_adapter_trained_for_another_base_width(tmp_path: Path) -> None:
    from peft import PeftModel

    small, wide = tiny_llama(tmp_path / "small", hidden=16), tiny_llama(tmp_path / "wide", hidden=32)
    adapter = adapter_over(wide, tmp_path / "adapter")
    assert ids(scan_model(str(adapter))) == []
    edit_json(adapter / "adapter_config.json", base_model_name_or_path=str(small))
    found = [o for o in scan_model(str(adapter)).observations if o.entry_id == "MODEL-ADAPTER-BASE-MISMATCH"]
    (first,) = found   # one finding for the adapter: the first tensor, and how many mismatch
    assert first.values["count"] == 8   # lora_A and lora_B of q_proj and v_proj in 2 layers
    assert first.values["tensor"] == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert first.values["shape"] == "[4, 32]" and first.values["base_shape"] == "[16, 16]"
    assert first.values["base_tensor"] == "model.layers.0.self_attn.q_proj.weight"
    # what the finding predicts: PEFT refuses it
    with pytest.raises(RuntimeError, match="size mismatch"):
        PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(small), adapter)


def test_adapter_config_rank_that_does_not_fit_the_weights(tmp_path: Path) -> None:
    adapter = adapter_over(tiny_llama(tmp_path / "base"), tmp_path / "adapter")
    edit_json(adapter / "adapter_config.json", r=8)
    found = [o for o in scan_model(str(adapter)).observations if o.entry_id == "MODEL-LORA-RANK-MISMATCH"]
    assert [(o.values["count"], o.values["shape"]) for o in found] == [(8, "[4, 16]")]
    edit_json(adapter / "adapter_config.json", r=4, rank_pattern={"q_proj": 2})
    assert [(o.values["tensor"].split(".")[-3], o.values["count"]) for o in scan_model(str(adapter)).observations
            if o.entry_id == "MODEL-LORA-RANK-MISMATCH"] == [("q_proj", 4)]


def test_adapter_with_added_tokens_in_modules_to_save(tmp_path: Path) -> None:
    base = tiny_llama(tmp_path / "base", vocab=64)
    adapter = adapter_over(base, tmp_path / "adapter", resize=72, modules_to_save=["embed_tokens", "lm_head"])
    grown = {o.values["module"]: (o.values["rows"], o.values["base_rows"])
             for o in scan_model(str(adapter)).observations if o.entry_id == "MODEL-ADAPTER-EMBEDDINGS-GROWN"}
    assert grown == {"model.embed_tokens": (72, 64), "lm_head": (72, 64)}


def test_stale_shard_index(tmp_path: Path) -> None:
    folder = tiny_llama(tmp_path / "sharded", max_shard_size="20KB")
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and ids(scan_model(str(folder))) == []
    # the index of another save: one tensor is said to live in a shard that does not hold it
    name = next(n for n, s in index["weight_map"].items() if s == shards[0])
    index["weight_map"][name] = shards[1]
    index_path.write_text(json.dumps(index, indent=2))
    result = scan_model(str(folder))
    # another shard the index names holds it: transformers 5.x still loads it, other tools don't
    assert ids(result) == ["MODEL-INDEX-MISPLACED"]
    misplaced = result.observations[0]
    assert misplaced.values == {"shard": shards[1], "count": 1, "tensors": name}
    line = next(i for i, text in enumerate(index_path.read_text().splitlines(), 1) if f'"{name}"' in text)
    assert (Path(misplaced.location.path).name, misplaced.location.line) == (index_path.name, line)
    # a tensor no shard holds: missing at load
    index["weight_map"]["model.ghost.weight"] = shards[1]
    index_path.write_text(json.dumps(index, indent=2))
    stale = [o for o in scan_model(str(folder)).observations if o.entry_id == "MODEL-INDEX-STALE"]
    assert [o.values for o in stale] == [{"shard": shards[1], "count": 1, "tensors": "model.ghost.weight"}]


def test_auto_map_pointing_at_a_missing_file(tmp_path: Path) -> None:
    folder = tiny_llama(tmp_path / "remote")
    edit_json(folder / "config.json", auto_map={"AutoConfig": "configuration_tiny.TinyConfig",
                                                "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"})
    (folder / "configuration_tiny.py").write_text("class TinyConfig: pass\n")
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-REMOTE-CODE", "MODEL-REMOTE-CODE-MISSING"]
    missing = next(o for o in result.observations if o.entry_id == "MODEL-REMOTE-CODE-MISSING")
    assert missing.values == {"file": "modeling_tiny.py"}
    assert "trust_remote_code=True" in result.areas[0].detail
    (folder / "modeling_tiny.py").write_text("class TinyForCausalLM: pass\n")
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-REMOTE-CODE"]
    remote = next(o for o in result.observations if o.entry_id == "MODEL-REMOTE-CODE")
    assert remote.values["files"] == "configuration_tiny.py, modeling_tiny.py"


def test_adapter_for_a_deeper_model(tmp_path: Path) -> None:
    shallow = tiny_llama(tmp_path / "shallow")
    deep = tmp_path / "deep"
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                                      num_attention_heads=2, num_key_value_heads=2)
    transformers.LlamaForCausalLM(config).save_pretrained(deep)
    adapter = adapter_over(deep, tmp_path / "adapter")
    edit_json(adapter / "adapter_config.json", base_model_name_or_path=str(shallow))
    result = scan_model(str(adapter))
    assert ids(result) == ["MODEL-ADAPTER-MODULE-MISSING"]
    assert result.observations[0].values == {"module": "model.layers.2.self_attn.q_proj", "count": 4,
                                             "base": str(shallow)}


def test_cli_base_option_checks_the_adapter_against_another_folder(tmp_path: Path) -> None:
    from tests.helpers.cli import run_cli

    small, wide = tiny_llama(tmp_path / "small", hidden=16), tiny_llama(tmp_path / "wide", hidden=32)
    adapter = adapter_over(wide, tmp_path / "adapter")
    clean = run_cli("scan", "--model", str(adapter), "--format", "json")
    assert [f["id"] for f in json.loads(clean.stdout)["findings"]] == ["MODEL-NO-TOKENIZER"], clean.stderr
    wrong = run_cli("scan", "--model", str(adapter), "--base", str(small), "--format", "json")
    found = {f["id"] for f in json.loads(wrong.stdout)["findings"]}
    assert wrong.returncode == 1 and "MODEL-ADAPTER-BASE-MISMATCH" in found
    missing = run_cli("scan", "--model", str(adapter), "--base", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "--base" in missing.stderr
