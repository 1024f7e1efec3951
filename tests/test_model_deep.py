"""`scan --model DIR --deep`: the folder really loaded by transformers (PEFT for adapters) in a
child process; missing/unexpected keys reported exactly, NaN/Inf found by streaming tensors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.base import ProbeContext, ProbeOptions, Target
from doctor.probes.model import PROBE
from tests.helpers.cli import run_cli
from tests.helpers.tiny_models import edit_json, llama, rewrite_safetensors

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def deep(folder: Path, base: Path | None = None):
    options = ProbeOptions(deep=True, timeout=300, base=str(base) if base else None)
    return PROBE.run(Target("model", str(folder)), ProbeContext(None, options))


def found(result, entry: str) -> list:
    return [o for o in result.observations if o.entry_id == entry]


def test_clean_model_loads_with_no_key_findings(tmp_path: Path) -> None:
    result = deep(llama(tmp_path / "m"))
    assert result.facts.get("model.deep.loaded") is True
    assert [o.entry_id for o in result.observations] == []
    assert "0 missing, 0 unexpected, 0 mismatched" in result.areas[-1].detail


def test_missing_and_unexpected_keys_are_transformers_own_lists(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    from safetensors.torch import load_file

    extra = load_file(str(folder / "model.safetensors"))["model.norm.weight"]
    rewrite_safetensors(folder / "model.safetensors", drop=("lm_head.weight", "model.layers.1.mlp.up_proj.weight"),
                        **{"model.layers.7.mlp.up_proj.weight": extra})
    result = deep(folder)
    (missing,) = found(result, "MODEL-DEEP-MISSING-KEYS")
    assert missing.evidence[0].value.splitlines() == ["lm_head.weight", "model.layers.1.mlp.up_proj.weight"]
    (unexpected,) = found(result, "MODEL-DEEP-UNEXPECTED-KEYS")
    assert unexpected.values["keys"] == "model.layers.7.mlp.up_proj.weight"


def test_nan_in_one_tensor_is_found_by_streaming(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    from safetensors.torch import load_file

    norm = load_file(str(folder / "model.safetensors"))["model.norm.weight"].clone()
    norm[3] = float("nan")
    norm[5] = float("inf")
    rewrite_safetensors(folder / "model.safetensors", **{"model.norm.weight": norm})
    (bad,) = found(deep(folder), "MODEL-DEEP-NONFINITE")
    assert (bad.values["tensor"], bad.values["nan"], bad.values["inf"]) == ("model.norm.weight", 1, 1)


def test_adapter_for_a_deeper_model_loaded_with_peft_over_the_base(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    deeper = llama(tmp_path / "deep", layers=3)
    shallow = llama(tmp_path / "shallow", layers=2)
    adapter = tmp_path / "adapter"
    model = transformers.LlamaForCausalLM.from_pretrained(deeper)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(adapter)
    assert found(deep(adapter, deeper), "MODEL-DEEP-ADAPTER-KEYS-UNUSED") == []
    (unused,) = found(deep(adapter, shallow), "MODEL-DEEP-ADAPTER-KEYS-UNUSED")
    assert unused.values["count"] == 2 and "layers.2.self_attn.q_proj.lora_A" in unused.values["keys"]


def test_folder_that_needs_remote_code_is_never_loaded(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    (folder / "modeling_custom.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').close()\n")
    edit_json(folder / "config.json", auto_map={"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    result = deep(folder)
    assert result.facts.get("model.deep.ran") is False and "trust_remote_code" in result.areas[-1].detail
    assert not (tmp_path / "RAN").exists()


def test_cli_deep_reports_the_missing_head(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    rewrite_safetensors(folder / "model.safetensors", drop=("lm_head.weight",))
    done = run_cli("scan", "--model", str(folder), "--deep", "--timeout", "300", "--format", "json", timeout=400)
    ids = sorted(f["id"] for f in json.loads(done.stdout)["findings"])
    assert ids == ["MODEL-DEEP-MISSING-KEYS", "MODEL-LM-HEAD-MISSING"], done.stderr[-2000:]
