"""Smoke test pieces that need no Unsloth: log reading, the VRAM estimate on real safetensors
files, refusal before any child starts, and the runner's handling of children that fail, crash
or hang (real processes)."""
from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from doctor.smoketest import estimate as est
from doctor.smoketest.logscan import banner_facts, warning_lines
from doctor.api import load_knowledge
from doctor.report.jsonout import smoke_to_dict
from doctor.smoketest.runner import SmokeOptions, run_smoke

# Lines as Unsloth 2026.10.9 prints them (unsloth/models/llama.py:3568-3573, unsloth/_cpu_init.py:25).
GPU_BANNER = """==((====))==  Unsloth 2026.10.9: Fast Llama patching. Transformers: 5.17.0.
   \\\\   /|    NVIDIA H200. Num GPUs = 1. Max memory: 139.8 GB. Platform: Linux.
O^O/ \\_/ \\    Torch: 2.11.0+cu130. CUDA: 9.0. CUDA Toolkit: 13.0. Triton: 3.6.0
\\        /    Bfloat16 = TRUE. FA [Xformers = None. FA2 = False]
 "-____-"     Free license: http://github.com/unslothai/unsloth"""


@pytest.mark.parametrize("xformers,fa2,expected", [("None", "False", "SDPA"), ("0.0.33.post1", "False", "xformers"),
                                                   ("0.0.33.post1", "True", "FA2")])
def test_attention_backend_from_banner(xformers: str, fa2: str, expected: str) -> None:
    text = GPU_BANNER.replace("Xformers = None. FA2 = False", f"Xformers = {xformers}. FA2 = {fa2}")
    facts = banner_facts(text)
    assert facts["smoke.attention"] == expected
    assert facts["smoke.banner.triton"] == "3.6.0" and facts["smoke.banner.bf16"] is True
    assert facts["smoke.banner.xformers"] == xformers


def test_cpu_fallback_and_warnings() -> None:
    log = "\n".join([
        "[doctor-smoke] stage import starts",
        "Unsloth 2026.10.9: no GPU found, training on CPU (x86_64, 2 threads, bfloat16 = False).",
        "Unsloth (CPU): LlamaForCausalLM on 2 CPU threads. dtype = torch.float32, 4-bit = False, chunked CE = True.",
        " 12%|█▎        | 1/8 [00:01<00:12,  1.85s/it]",
        "W1128 23:18:24.312000 17454 torch/utils/_pytree.py:630] x is deprecated",
        "W1128 23:18:25.502000 17454 torch/utils/_pytree.py:630] x is deprecated",
    ])
    facts = banner_facts(log)
    assert facts["smoke.cpu_fallback"] is True and facts["smoke.cpu.threads"] == 2
    assert "smoke.attention" not in facts
    lines = warning_lines(log)
    # Progress bars and our markers are dropped; the repeated torch line is kept once.
    assert [no for no, _ in lines] == [3, 5]


def _model_folder(tmp_path: Path, hidden: int, layers: int, vocab: int, dtype=np.float32) -> Path:
    inter = hidden * 2
    tensors = {"model.embed_tokens.weight": np.zeros((vocab, hidden), dtype), "lm_head.weight": np.zeros((vocab, hidden), dtype)}
    for i in range(layers):
        for name, shape in (("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden // 2, hidden)),
                            ("self_attn.v_proj", (hidden // 2, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                            ("mlp.gate_proj", (inter, hidden)), ("mlp.up_proj", (inter, hidden)), ("mlp.down_proj", (hidden, inter))):
            tensors[f"model.layers.{i}.{name}.weight"] = np.zeros(shape, dtype)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab}))
    return tmp_path


def test_estimate_from_real_headers(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, hidden=64, layers=2, vocab=384)
    config, tensors = est.read_folder(folder)
    params = sum(int(np.prod(s)) for _, s in tensors.values())
    e = est.estimate(config, tensors, batch=2, seq=128, r=8)
    assert e.params == params
    assert e.run.weights_mib * est.MIB == pytest.approx(params * 2)          # fp32 stored, loaded 16-bit
    per_layer = (64 + 64) + 2 * (64 + 32) + (64 + 64) + 2 * (64 + 128) + (128 + 64)
    assert e.run.trainable_params == 8 * per_layer * 2
    tokens = 2 * 128
    assert e.run.logits_mib * est.MIB == tokens * 384 * 4                   # one chunk of float32 logits: all rows here
    four = est.estimate(config, tensors, batch=2, seq=128, r=8, load_in_4bit=True)
    assert four.run.weights_mib < e.run.weights_mib


def test_refuses_with_numbers_before_starting_a_child(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path, hidden=256, layers=4, vocab=32000)
    start = time.perf_counter()
    report = run_smoke(SmokeOptions(model=str(folder), batch_size=64, max_seq_length=4096),
                       facts_provider=lambda: {"gpu.0.memory_total_mib": 2048})
    assert time.perf_counter() - start < 30
    assert report.refused and not report.ok and report.stages == []
    (obs,) = report.observations
    assert obs.entry_id == "SMOKE-WONT-FIT"
    assert obs.values["memory_mib"] == 2048 and obs.values["total_mib"] > 0.9 * 2048
    assert "activations" in obs.values["estimate"]


def test_unreadable_model_folder_is_a_finding(tmp_path: Path) -> None:
    report = run_smoke(SmokeOptions(model=str(tmp_path)), facts_provider=lambda: {})
    assert report.refused and [o.entry_id for o in report.observations] == ["SMOKE-MODEL-UNREADABLE"]
    assert "config.json" in report.observations[0].values["reason"]


def _interpreter(tmp_path: Path, body: str) -> str:
    """A stand-in interpreter: a real executable the runner starts in place of python."""
    exe = tmp_path / "fake-python"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_child_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    python = _interpreter(tmp_path, 'echo "[doctor-smoke] stage import starts"; sleep 60')
    start = time.perf_counter()
    report = run_smoke(SmokeOptions(python=python, timeout=2))
    assert time.perf_counter() - start < 20
    assert report.timed_out and not report.ok
    assert [o.entry_id for o in report.observations][:1] == ["SMOKE-TIMEOUT"]
    assert report.observations[0].values["stage"] == "import"


def test_child_that_segfaults_is_reported_with_its_stage(tmp_path: Path) -> None:
    python = _interpreter(tmp_path, 'echo "[doctor-smoke] stage load starts"; kill -SEGV $$')
    report = run_smoke(SmokeOptions(python=python, timeout=30))
    assert not report.ok
    crash = [o for o in report.observations if o.entry_id == "SMOKE-CHILD-CRASHED"]
    assert crash and crash[0].values == {"stage": "load", "how": "signal 11"}


def test_missing_unsloth_fails_the_import_stage_and_is_explained(tmp_path: Path) -> None:
    # -S hides site-packages: the real child runs, and `import unsloth` really fails.
    python = _interpreter(tmp_path, f'exec "{sys.executable}" -S "$@"')
    report = run_smoke(SmokeOptions(python=python, timeout=60), load_knowledge())
    assert not report.ok
    assert report.failed_stage is not None and report.failed_stage.name == "import"
    assert "ModuleNotFoundError" in report.failed_stage.detail
    assert "SMOKE-STAGE-FAILED" in [o.entry_id for o in report.observations]
    assert report.diagnoses, "the explain engine should say why the import failed"
    data = smoke_to_dict(report)
    assert data["ok"] is False and data["stages"][0]["name"] == "import"
    json.dumps(data)  # the report is plain JSON


@pytest.mark.parametrize("kw,flag", [({"batch_size": 0}, "--batch-size"), ({"max_seq_length": -5}, "--max-seq-length"),
                                     ({"timeout": 0}, "--timeout")])
def test_bad_options_say_which_flag(kw: dict, flag: str) -> None:
    from doctor.smoketest.runner import SmokeOptionError

    with pytest.raises(SmokeOptionError, match=flag):
        SmokeOptions(**kw)


def test_a_model_folder_without_a_tokenizer_is_named_as_such_before_any_child(tmp_path: Path) -> None:
    """As `scan --model` says it: the child would fail in from_pretrained with "Can't load
    tokenizer", which explain would pin on transformers."""
    folder = _model_folder(tmp_path, hidden=64, layers=2, vocab=384)
    report = run_smoke(SmokeOptions(model=str(folder), python=_interpreter(tmp_path, "exit 3")),
                       facts_provider=lambda: {"gpu.0.memory_total_mib": 80000})
    assert report.refused and not report.ok
    assert [o.entry_id for o in report.observations] == ["MODEL-NO-TOKENIZER"]
    assert report.stages[0].name == "load" and "tokenizer.json" in report.stages[0].detail

    (folder / "tokenizer.json").write_text("{}")   # with one, the child starts (and here fails)
    report = run_smoke(SmokeOptions(model=str(folder), python=_interpreter(tmp_path, "exit 3")),
                       facts_provider=lambda: {"gpu.0.memory_total_mib": 80000})
    assert "MODEL-NO-TOKENIZER" not in [o.entry_id for o in report.observations]
