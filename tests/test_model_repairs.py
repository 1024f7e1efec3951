"""`scan --model DIR --fix`: tiny real Llamas saved by transformers, broken the way real folders
are, repaired by the doctor as a user runs it; transformers then really loads each folder (in a
fresh process), and `undo` puts every file back."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.tiny_models import edit_json, llama, load_in_child, rewrite_safetensors

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def doctor(tmp_path: Path, *args: str) -> tuple[int, list[str], dict]:
    done = run_cli("scan", *args, "--format", "json", env={"UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")},
                   timeout=600)
    report = json.loads(done.stdout)
    return done.returncode, sorted(f["id"] for f in report["findings"]), report


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_scan_without_fix_shows_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    rewrite_safetensors(folder / "model.safetensors", drop=("lm_head.weight",))
    before = snapshot(folder)
    _, found, report = doctor(tmp_path, "--model", str(folder))
    assert found == ["MODEL-LM-HEAD-MISSING"]
    (fix,) = [f for f in report["findings"][0]["fixes"] if f.get("safety") == "safe"]
    assert "tie_word_embeddings" in json.dumps(fix)
    assert snapshot(folder) == before


def test_lm_head_dropped_then_fixed_loads_without_missing_keys(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    rewrite_safetensors(folder / "model.safetensors", drop=("lm_head.weight",))
    assert "lm_head.weight" in load_in_child(folder)["missing_keys"]   # random output layer
    before = snapshot(folder)
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix")
    assert found == []
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is True
    assert load_in_child(folder)["missing_keys"] == []
    undo = run_cli("undo", env={"UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")})
    assert undo.returncode == 0, undo.stderr
    assert snapshot(folder) == before


def test_stale_index_rebuilt_from_the_shard_headers(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m", max_shard_size="20KB")
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2
    # a re-save that wrote one more shard, with the old index kept: its tensors are not listed
    last = sorted(k for k, v in index["weight_map"].items() if v == shards[-1])
    moved = next(k for k, v in index["weight_map"].items() if v == shards[0])
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shards[-1]}
    index["weight_map"][moved] = shards[1]   # and one tensor listed in the wrong shard
    index_path.write_text(json.dumps(index, indent=2))
    assert load_in_child(folder)["missing_keys"] == last   # transformers 5.x: random weights
    _, found, _ = doctor(tmp_path, "--model", str(folder))
    assert found == ["MODEL-INDEX-MISPLACED", "MODEL-INDEX-SHARD-UNNAMED"]
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix")
    assert found == []
    rebuilt = json.loads(index_path.read_text())["weight_map"]
    assert rebuilt[moved] == shards[0] and all(rebuilt[k] == shards[-1] for k in last)
    assert load_in_child(folder)["missing_keys"] == []


def test_truncated_shard_is_an_error_and_no_index_is_rebuilt_over_it(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m", max_shard_size="20KB")
    shard = sorted(folder.glob("model-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:-64])
    before = snapshot(folder)
    code, found, _ = doctor(tmp_path, "--model", str(folder), "--fix", "--unsafe-fixes")
    assert code == 1 and "MODEL-SAFETENSORS-BROKEN" in found
    assert snapshot(folder) == before


def test_adapter_without_tokenizer_gets_the_base_tokenizer_and_chat_template(tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    base = llama(tmp_path / "base-Instruct")
    edit_json(base / "tokenizer_config.json", chat_template="{% for m in messages %}{{ m['content'] }}{% endfor %}")
    model = transformers.LlamaForCausalLM.from_pretrained(base)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    _, found, _ = doctor(tmp_path, "--model", str(adapter), "--base", str(base))
    assert found == ["MODEL-NO-TOKENIZER"]
    _, found, _ = doctor(tmp_path, "--model", str(adapter), "--base", str(base), "--fix")
    assert found == []
    tok = transformers.AutoTokenizer.from_pretrained(adapter)
    assert tok.chat_template and tok.apply_chat_template([{"role": "user", "content": "the fox"}], tokenize=False)
    merged = PeftModel.from_pretrained(transformers.LlamaForCausalLM.from_pretrained(base), adapter)
    assert merged is not None


def test_chat_template_copied_from_the_base(tmp_path: Path) -> None:
    base = llama(tmp_path / "base")
    edit_json(base / "tokenizer_config.json", chat_template="{{ messages[0]['content'] }}")
    tuned = llama(tmp_path / "tuned-chat")
    _, found, _ = doctor(tmp_path, "--model", str(tuned), "--base", str(base), "--fix")
    assert found == []
    assert transformers.AutoTokenizer.from_pretrained(tuned).chat_template == "{{ messages[0]['content'] }}"


def test_auto_map_to_missing_code_removed_only_as_unsafe(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    edit_json(folder / "config.json", auto_map={"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix")
    assert "MODEL-REMOTE-CODE-MISSING" in found   # safe fixes leave it
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix", "--unsafe-fixes")
    assert found == []
    assert "auto_map" not in json.loads((folder / "config.json").read_text())
    assert load_in_child(folder)["missing_keys"] == []


class Shell:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_weights_converted_in_a_child_and_a_malicious_pickle_never_runs(tmp_path: Path) -> None:
    folder = llama(tmp_path / "m")
    state = transformers.LlamaForCausalLM.from_pretrained(folder).state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix")
    assert "MODEL-PICKLE-WEIGHTS" in found and not (folder / "model.safetensors").exists()
    _, found, _ = doctor(tmp_path, "--model", str(folder), "--fix", "--unsafe-fixes")
    assert "MODEL-PICKLE-WEIGHTS" not in found and (folder / "model.safetensors").exists()
    assert load_in_child(folder)["missing_keys"] == []

    evil = llama(tmp_path / "evil")
    (evil / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    with open(evil / "pytorch_model.bin", "wb") as f:
        pickle.dump({"model.embed_tokens.weight": Shell(marker)}, f)
    code, found, _ = doctor(tmp_path, "--model", str(evil), "--fix", "--unsafe-fixes")
    assert code == 1 and "MODEL-PICKLE-CODE" in found
    assert not (evil / "model.safetensors").exists() and not marker.exists()
    # the file really is a loaded gun: plain pickle.load runs it
    shutil.copy(evil / "pytorch_model.bin", tmp_path / "copy.bin")
    pickle.loads((tmp_path / "copy.bin").read_bytes())
    assert marker.exists()
