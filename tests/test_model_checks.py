"""config.json against its architecture, tie_word_embeddings against lm_head, safetensors
layout, tokenizer files, chat template and eos/pad: on tiny real models saved by
transformers, then broken the way real folders are."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from doctor.probes import model_arch
from doctor.probes.model import HeaderError, read_safetensors_header, scan_model
from tests.helpers.tiny_models import edit_json, llama, rewrite_safetensors, tokenizer

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def ids(result) -> list[str]:
    return sorted(o.entry_id for o in result.observations)


def one(result, entry: str):
    (found,) = [o for o in result.observations if o.entry_id == entry]
    return found


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "gemma", "mistral", "gpt2", "phi3", "qwen3_moe"])
def test_defaults_read_from_source_equal_the_real_config_classes(model_type: str) -> None:
    arch = model_arch.architecture(model_type, model_arch.installed_transformers())
    assert arch is not None
    real = transformers.AutoConfig.for_model(model_type)
    compared = [k for k in model_arch.SHAPE_FIELDS if k in arch.defaults and arch.defaults[k] not in (None, "?")]
    assert compared, model_type
    for key in compared:
        assert getattr(real, key) == arch.defaults[key], (model_type, key)


def test_known_model_types_are_the_auto_mapping() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    known = model_arch.known_model_types(model_arch.installed_transformers())
    assert set(CONFIG_MAPPING_NAMES) <= set(known)


def test_saved_tiny_llama_is_clean(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    assert ids(scan_model(str(folder))) == []


def test_hand_written_config_that_leaves_out_shape_keys(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": config["vocab_size"],
                                                    "tie_word_embeddings": False}, indent=2))
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-CONFIG-KEY-DEFAULTED", "MODEL-CONFIG-SHAPE-MISMATCH", "MODEL-CONFIG-SHAPE-MISMATCH"]
    defaulted = one(result, "MODEL-CONFIG-KEY-DEFAULTED")
    assert "num_hidden_layers=32" in defaulted.values["keys"] and "hidden_size=4096" in defaulted.values["keys"]
    layers = [o for o in result.observations if o.values.get("key") == "num_hidden_layers"]
    assert layers[0].values["weights"] == 2 and layers[0].values["value"] == 32
    (folder / "config.json").write_text(json.dumps(config))
    edit_json(folder / "config.json", num_hidden_layers=3)
    located = one(scan_model(str(folder)), "MODEL-CONFIG-SHAPE-MISMATCH")
    text = (folder / "config.json").read_text()
    assert text.splitlines()[located.location.line - 1].strip().startswith('"num_hidden_layers"')


def test_unknown_and_missing_model_type(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    edit_json(folder / "config.json", model_type="llama9")
    assert "MODEL-CONFIG-UNKNOWN-TYPE" in ids(scan_model(str(folder)))
    with pytest.raises(ValueError, match="does not recognize this architecture"):
        transformers.AutoConfig.from_pretrained(folder)
    data = json.loads((folder / "config.json").read_text())
    del data["model_type"]
    (folder / "config.json").write_text(json.dumps(data))
    assert "MODEL-CONFIG-NO-MODEL-TYPE" in ids(scan_model(str(folder)))


def test_lm_head_dropped_from_an_untied_model(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    rewrite_safetensors(folder / "model.safetensors", drop=("lm_head.weight",))
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-LM-HEAD-MISSING"]
    (fix,) = one(result, "MODEL-LM-HEAD-MISSING").fixes
    assert fix.safety.value == "safe" and '"tie_word_embeddings": true' in fix.edits[0].new_text


def test_tied_config_with_a_trained_lm_head(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m", tie=False)
    edit_json(folder / "config.json", tie_word_embeddings=True)
    assert ids(scan_model(str(folder))) == ["MODEL-TIED-HEAD-DIFFERS"]
    # the same bytes saved twice (a tied model saved with both keys) is fine
    from safetensors.torch import load_file

    embed = load_file(str(folder / "model.safetensors"))["model.embed_tokens.weight"]
    rewrite_safetensors(folder / "model.safetensors", **{"lm_head.weight": embed.clone()})
    assert ids(scan_model(str(folder))) == []


def test_layout_errors_the_safetensors_loader_also_refuses(tmp_path: Path) -> None:
    from safetensors import safe_open

    def write(header: dict, data: bytes) -> Path:
        raw = json.dumps(header).encode()
        path = tmp_path / "x.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
        return path

    cases = {
        "overlap": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
        "gap": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
        "trailing bytes": ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 12),
        "dtype x shape": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
    }
    for name, (header, data) in cases.items():
        path = write(header, data)
        with pytest.raises(HeaderError):
            read_safetensors_header(path)
        with pytest.raises(Exception):
            safe_open(str(path), "pt")
    good = write({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    assert read_safetensors_header(good)[0]["a"].shape == (2,)


def test_tokens_added_without_resizing_the_embeddings(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    assert tokenizer(folder, added=["<tool>", "</tool>", "<think>"]) == rows + 3
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-TOKENIZER-EXCEEDS-EMBEDDINGS"]
    assert one(result, "MODEL-TOKENIZER-EXCEEDS-EMBEDDINGS").values == {"token_id": rows + 2, "rows": rows}


def test_tokenizer_json_that_tokenizers_cannot_load(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    data = json.loads((folder / "tokenizer.json").read_text())
    data["model"]["type"] = "BPE2"
    (folder / "tokenizer.json").write_text(json.dumps(data))
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-TOKENIZER-UNLOADABLE"]
    with pytest.raises(Exception):
        transformers.AutoTokenizer.from_pretrained(folder)


def test_chat_model_without_template_and_eos_generation_disagree(tmp_path: Path) -> None:
    folder = llama(tmp_path / "tiny-Instruct")
    assert ids(scan_model(str(folder))) == ["MODEL-NO-CHAT-TEMPLATE"]
    edit_json(folder / "tokenizer_config.json", chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")
    assert ids(scan_model(str(folder))) == []
    edit_json(folder / "generation_config.json", eos_token_id=1)
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-EOS-MISMATCH"]
    assert one(result, "MODEL-EOS-MISMATCH").values["eos_id"] == 2
    edit_json(folder / "generation_config.json", eos_token_id=[1, 2])
    assert ids(scan_model(str(folder))) == []
    edit_json(folder / "tokenizer_config.json", pad_token="<nopad>")
    assert ids(scan_model(str(folder))) == ["MODEL-SPECIAL-TOKEN-UNKNOWN"]


def test_adapter_with_added_tokens_but_no_saved_embeddings(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = llama(tmp_path / "base")
    model = transformers.LlamaForCausalLM.from_pretrained(base)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    grown = tokenizer(adapter, added=["<tool>"])
    result = scan_model(str(adapter), base=str(base))
    assert "MODEL-ADAPTER-VOCAB-UNSAVED" in ids(result)
    assert one(result, "MODEL-ADAPTER-VOCAB-UNSAVED").values["tokens"] == grown


def test_clone_without_git_lfs_names_every_pointer_and_checks_the_rest(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    real = (folder / "model.safetensors").stat().st_size
    (folder / "model.safetensors").write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:ea50e39b\nsize {real}\n")
    (folder / "tokenizer.json").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:a3\nsize 6204808\n")
    edit_json(folder / "generation_config.json", eos_token_id=1)
    result = scan_model(str(folder))
    pointers = sorted(o.values["file"] for o in result.observations if o.entry_id == "MODEL-LFS-POINTER")
    assert pointers == ["model.safetensors", "tokenizer.json"]
    assert "MODEL-SAFETENSORS-BROKEN" not in ids(result) and "MODEL-TOKENIZER-UNLOADABLE" not in ids(result)


def test_without_generation_config_the_eos_of_config_json_counts(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    (folder / "generation_config.json").unlink()
    edit_json(folder / "config.json", eos_token_id=1)   # falcon-40b's first release: eos 2 vs tokenizer's 11
    result = scan_model(str(folder))
    assert ids(result) == ["MODEL-EOS-MISMATCH"]
    assert one(result, "MODEL-EOS-MISMATCH").values["source"] == "config.json"
    assert transformers.GenerationConfig.from_model_config(transformers.AutoConfig.from_pretrained(folder)).eos_token_id == 1


def test_attribute_map_aliases_count_as_given(tmp_path: Path) -> None:
    arch = model_arch.architecture("gpt2", model_arch.installed_transformers())
    assert arch.aliases["num_hidden_layers"] == "n_layer"
    # config.json may set n_layer through its alias, as GPT2Config(num_hidden_layers=2) saves it
    assert arch.given({"num_hidden_layers": 2}, "n_layer") == "num_hidden_layers"
    assert transformers.GPT2Config.from_dict({"num_hidden_layers": 2}).n_layer == 2


def test_adapter_of_another_architecture_targets_no_module_of_the_base(tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64))
    adapter = tmp_path / "adapter"
    get_peft_model(gpt2, LoraConfig(r=4, target_modules=["c_attn"])).save_pretrained(adapter)
    base = llama(tmp_path / "base")
    result = scan_model(str(adapter), base=str(base))
    assert one(result, "MODEL-ADAPTER-TARGETS-ABSENT").values["targets"] == "c_attn"
    with pytest.raises(Exception, match="not found in the base model"):
        PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(base), adapter)
    own = tmp_path / "gpt2"
    transformers.GPT2LMHeadModel(gpt2.config).save_pretrained(own)
    assert "MODEL-ADAPTER-TARGETS-ABSENT" not in ids(scan_model(str(adapter), base=str(own)))
