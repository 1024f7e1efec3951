"""The real smoke test: Unsloth trains a tiny Llama in a child process (on the CPU here, with
Unsloth's CPU fallback; on a GPU where there is one) and its merged export reloads in plain
transformers. Skipped, with the reason, when the child cannot import unsloth."""
from __future__ import annotations

import json
import math
import sys

import pytest

from doctor.api import load_knowledge
from doctor.smoketest.runner import SmokeOptions, run_smoke, unsloth_importable

from tests.helpers.cli import run_cli

_OK, _WHY = unsloth_importable()
needs_unsloth = pytest.mark.skipif(not _OK, reason=f"unsloth {_WHY} (pip install -r requirements/smoke-cpu.txt)")


@pytest.fixture(scope="module")
def cli_report() -> tuple[int, dict]:
    done = run_cli("smoke", "--format", "json", "--timeout", "400", timeout=450)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"smoke --format json printed no JSON (exit {done.returncode}): {done.stdout[-1500:]} {done.stderr[-3000:]}")


@needs_unsloth
@pytest.mark.slow
def test_smoke_passes_every_stage(cli_report) -> None:
    code, data = cli_report
    smoke = data["smoke"]
    failed = [s for s in smoke["stages"] if not s["ok"]]
    assert not failed, failed
    assert code == 0 and smoke["ok"] is True
    names = [s["name"] for s in smoke["stages"]]
    assert names == ["import", "build", "load_4bit", "load", "lora", "train", "generate", "save", "reload"]
    assert all(s["seconds"] >= 0 for s in smoke["stages"])


@needs_unsloth
@pytest.mark.slow
def test_training_really_happened(cli_report) -> None:
    facts = cli_report[1]["smoke"]["facts"]
    losses, norms = facts["smoke.losses"], facts["smoke.grad_norms"]
    assert all(math.isfinite(x) for x in losses + norms)
    assert losses[-1] < losses[0]
    assert facts["smoke.lora_targets"] == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert facts["smoke.lora_tensors_changed"] > 0
    assert facts["smoke.watchdog_findings"] == []   # DoctorCallback ran inside Unsloth's trainer


@needs_unsloth
@pytest.mark.slow
def test_merged_export_needs_no_remote_code(cli_report) -> None:
    data = cli_report[1]
    facts = data["smoke"]["facts"]
    assert facts["smoke.merged_auto_map"] is False
    assert facts["smoke.logit_max_abs_diff"] <= facts["smoke.logit_bound"]
    assert facts["smoke.logit_argmax_agreement"] >= 0.9
    ids = [f["id"] for f in data["findings"]]
    assert "SMOKE-EXPORT-PLAIN-TRANSFORMERS" in ids


@needs_unsloth
@pytest.mark.slow
def test_says_what_actually_ran(cli_report) -> None:
    data = cli_report[1]
    facts = data["smoke"]["facts"]
    assert facts["smoke.device"] in ("cpu", "cuda")
    assert facts["smoke.attention"]
    if facts["smoke.device"] == "cpu":
        # The CPU fallback is said plainly: the GPU kernels were not checked.
        assert facts["smoke.cpu_fallback"] is True
        assert "SMOKE-CPU-ONLY" in [f["id"] for f in data["findings"]]
        assert facts["smoke.load_4bit"].startswith("skipped")
    # Every warning line carries its mapping (possibly empty), and the doctor's own process
    # stayed free of torch: the JSON came from a parent that never imported it.
    assert all("entries" in w for w in data["smoke"]["warnings"])


@needs_unsloth
@pytest.mark.slow
def test_parent_never_imports_torch() -> None:
    code = ("import sys; from doctor.smoketest.runner import SmokeOptions, run_smoke; "
            "r = run_smoke(SmokeOptions(steps=2, timeout=400)); "
            "assert 'torch' not in sys.modules and 'unsloth' not in sys.modules; print(r.ok)")
    import subprocess
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=450)
    assert done.returncode == 0, done.stderr[-2000:]


@needs_unsloth
@pytest.mark.gpu
def test_gpu_path_4bit_and_memory() -> None:
    report = run_smoke(SmokeOptions(timeout=400), load_knowledge())
    assert report.ok, [(s.name, s.detail) for s in report.stages if not s.ok]
    f = report.facts
    assert f["smoke.device"] == "cuda" and f["smoke.load_4bit"].startswith("ok")
    assert f["smoke.peak_gpu_mib"] < 2048
    assert f["smoke.attention"] in ("FA2", "xformers", "SDPA")


def test_reload_server_matches_one_shot_reload(tmp_path) -> None:
    """The GPU path pre-starts the reload process; it must give what the one-shot form gives."""
    import subprocess

    pytest.importorskip("transformers", reason="transformers is not installed (requirements/smoke-cpu.txt)")
    torch = pytest.importorskip("torch")
    from doctor.smoketest.build import build
    from doctor.smoketest.runner import child_env

    model = build(tmp_path / "m")
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps([[1, 5, 9, 12]]))
    one, served = tmp_path / "one.pt", tmp_path / "served.pt"
    env = child_env()
    subprocess.run([sys.executable, "-m", "doctor.smoketest.reload", str(model), str(ids), str(one)],
                   check=True, capture_output=True, env=env, timeout=300)
    server = subprocess.Popen([sys.executable, "-m", "doctor.smoketest.reload", "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = server.communicate(json.dumps([str(model), str(ids), str(served)]) + "\n", timeout=300)
    assert server.returncode == 0, err[-2000:]
    a, b = torch.load(str(one)), torch.load(str(served))
    assert a["unsloth_loaded"] is False and b["class"] == "LlamaForCausalLM"
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    assert a["logits"].shape == (1, 4, vocab) and torch.equal(a["logits"], b["logits"])


@needs_unsloth
@pytest.mark.slow
def test_user_model_folder_gets_a_step_or_two(tmp_path) -> None:
    """`smoke --model`: the user's own folder (here a real tiny Llama saved with transformers),
    their sequence length and batch size, a couple of steps, nothing written into the folder."""
    import subprocess

    from doctor.smoketest.runner import child_env

    folder = tmp_path / "my-model"
    subprocess.run([sys.executable, "-c", f"from doctor.smoketest.build import build; build(__import__('pathlib').Path({str(folder)!r}), hidden=32, layers=1)"],
                   check=True, capture_output=True, env=child_env(), timeout=300)
    before = sorted(p.name for p in folder.iterdir())
    done = run_cli("smoke", "--model", str(folder), "--max-seq-length", "64", "--batch-size", "1", "--format", "json",
                   timeout=400)
    data = json.loads(done.stdout)
    smoke = data["smoke"]
    assert done.returncode == 0 and smoke["ok"], smoke["stages"]
    assert [s["name"] for s in smoke["stages"]] == ["import", "build", "load", "lora", "train"]
    assert smoke["stages"][1]["skipped"] is True
    assert len(smoke["facts"]["smoke.losses"]) == 2
    assert smoke["facts"]["smoke.estimate.total_mib"] > 0
    assert sorted(p.name for p in folder.iterdir()) == before
