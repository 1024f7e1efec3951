"""Model folders from real files (safetensors, tokenizers, transformers) and training configs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.config import scan_config
from doctor.probes.model import HeaderError, read_safetensors_header, scan_model


def ids(result) -> list[str]:
    return sorted(o.entry_id for o in result.observations)


def build_tokenizer(folder: Path, vocab_size: int = 60) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    tok.save(str(folder / "tokenizer.json"))
    return tok.get_vocab_size()


def test_real_tokenizer_larger_than_real_embedding(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    n = build_tokenizer(tmp_path)
    save_file({"model.embed_tokens.weight": torch.zeros(n - 5, 8)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "vocab_size": n - 5, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "tie_word_embeddings": True}))
    result = scan_model(str(tmp_path))
    assert ids(result) == ["MODEL-TOKENIZER-EXCEEDS-EMBEDDINGS"]
    (obs,) = result.observations
    assert obs.values == {"token_id": n - 1, "rows": n - 5}


def test_real_transformers_llama_is_clean_then_each_damage_is_found(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    n = build_tokenizer(tmp_path)
    config = transformers.LlamaConfig(vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
    assert ids(scan_model(str(tmp_path))) == []
    # a save cut short by a full disk
    shard = tmp_path / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    assert ids(scan_model(str(tmp_path))) == ["MODEL-SAFETENSORS-BROKEN"]
    with pytest.raises(HeaderError, match="truncated"):
        read_safetensors_header(shard)


def test_adapter_folder_without_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 16, "base_model_name_or_path": "x"}))
    result = scan_model(str(tmp_path))
    assert ids(result) == ["MODEL-NO-TOKENIZER"]
    assert result.observations[0].values["kind"] == "adapter"


def test_json_config_error_has_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "model_type": "llama",\n}\n')
    (obs,) = [o for o in scan_model(str(tmp_path)).observations if o.entry_id == "MODEL-JSON-INVALID"]
    assert (obs.location.line, obs.location.column) == (3, 1)


def test_training_config_nested_keys_are_located(tmp_path: Path) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text("model_name: x\nlora:\n  r: 128\ntraining:\n  learning_rate: 3e-3\n  max_lora_rank: 64\n"
                   "fast_inference: true\n")
    result = scan_config(str(cfg))
    found = {o.entry_id: (o.location.line, o.location.column) for o in result.observations}
    assert found == {"CONFIG-LR-TOO-HIGH": (5, 18), "CONFIG-MAX-LORA-RANK": (6, 18)}


def test_a_github_workflow_is_named_and_not_judged(tmp_path: Path) -> None:
    ci = tmp_path / "ci.yaml"
    ci.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
    result = scan_config(str(ci))
    assert result.observations == []
    assert [a.detail for a in result.areas] == ["GitHub workflow: not a training config, not checked"]


def test_yaml_without_training_keys_is_ignored(tmp_path: Path) -> None:
    other = tmp_path / "tokens.yaml"
    other.write_text("'<|start|>': start token\n'<|end|>': end token\n")
    assert scan_config(str(other)).observations == [] and scan_config(str(other)).areas == []
