"""`scan --gpus` for real: local ranks started without torchrun (gloo on this CPU, NCCL on a GPU
machine), the kill at the deadline, the torch child, and the whole command."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from doctor.distributed.gpu_probe import run_gpu_child
from doctor.distributed.local_ranks import run_local_ranks
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


def rank_workers() -> list[int]:
    """Live processes running a rank of ours (zombies excluded)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"doctor.distributed.rank_worker" in cmd and state != "Z":
            found.append(int(pid))
    return found


def test_two_local_ranks_meet_without_torchrun_and_check_the_sum() -> None:
    result = run_local_ranks(2, timeout_s=60)
    assert result["backend"] == "gloo"
    assert result["world"]["ok"] is True and result["world"]["got"] == 3.0   # rank+1 summed over 2 ranks
    assert result["pairs"][0]["pair"] == [0, 1] and result["pairs"][0]["busbw_gbps"] > 0
    assert [r["device"] for r in result["runtime"]] == ["cpu", "cpu"]
    assert rank_workers() == []


def test_ranks_past_the_deadline_are_killed_and_reported_hung() -> None:
    result = run_local_ranks(2, timeout_s=0.5, startup_s=0.5)
    assert result["hung"] is True and "killed" in result["error"]
    assert rank_workers() == []


def test_ranks_that_cannot_meet_fail_with_the_reason_instead_of_hanging() -> None:
    result = run_local_ranks(2, timeout_s=30, extra_env={"GLOO_SOCKET_IFNAME": "nonexistent0"})
    assert result["hung"] is False
    assert "exited without a result" in result["error"] and "nonexistent0" in result["log"]
    assert rank_workers() == []


def test_the_torch_child_describes_this_machine() -> None:
    record = run_gpu_child(120)
    import torch

    assert record["torch"]["version"] == torch.__version__
    assert len(record["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_scan_gpus_without_a_gpu_says_so(tmp_path: Path) -> None:
    rec = tmp_path / "machine.json"
    done = run_cli("scan", "--gpus", "--gpus-record", str(rec), "--format", "json")
    report = json.loads(done.stdout)
    assert "GPUS-NONE" in [f["id"] for f in report["findings"]], done.stderr
    assert json.loads(rec.read_text())["gpus"] == []


def test_scan_gpus_examines_the_interpreter_named_by_python(tmp_path: Path) -> None:
    """--python: the environment part and the GPU child are both that interpreter's (here the
    base interpreter under the test venv, which has no torch), as a plain scan does."""
    import sys

    base = getattr(sys, "_base_executable", "")
    if sys.prefix == sys.base_prefix or not base:
        pytest.skip("the tests do not run in a venv: no second interpreter to name")
    done = run_cli("scan", "--gpus", "--python", base, "--no-config", "--timeout", "60", "--format", "json")
    report = json.loads(done.stdout)
    assert report["facts"]["python.prefix"] == sys.base_prefix != sys.prefix, done.stderr
    if importlib.util.find_spec("torch", None) is not None and not _has_torch(base):
        assert "ENV-TORCH-MISSING" in [f["id"] for f in report["findings"]]


def _has_torch(python: str) -> bool:
    import subprocess

    return subprocess.run([python, "-c", "import torch"], capture_output=True, timeout=120).returncode == 0


@pytest.mark.gpu
def test_scan_gpus_on_the_gpu_machine(tmp_path: Path) -> None:
    rec_file = tmp_path / "machine.json"
    done = run_cli("scan", "--gpus", "--gpus-record", str(rec_file), "--format", "json", "--timeout", "60",
                   timeout=400)
    report = json.loads(done.stdout)
    rec = json.loads(rec_file.read_text())
    found = [f["id"] for f in report["findings"]]
    assert rec["gpus"], rec
    if importlib.util.find_spec("pynvml") is not None:
        assert rec["gpus"][0].get("pcie", {}).get("max_width"), rec   # NVML read the PCIe link
    if len(rec["gpus"]) == 1:
        assert "GPUS-SINGLE" in found
    else:
        assert rec["allreduce"]["backend"] == "nccl" and rec["allreduce"]["world"]["ok"] is True
        assert set(rec["peer_copy"].values()) == {"ok"}
        assert any(i.startswith("GPUS-STRATEGY-") for i in found)


def test_under_torchrun_scan_gpus_keeps_the_cross_rank_checks() -> None:
    import subprocess
    import sys

    from tests.helpers.cli import ROOT

    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "doctor", "scan", "--gpus", "--timeout", "60", "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env={**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"})
    report = json.loads(done.stdout)   # rank 0 alone reports
    assert report["facts"]["dist.world_size"] == 2 and report["facts"]["dist.launcher"] == "torchrun", done.stderr
    assert report["facts"]["dist.allreduce.ok"] is True
    assert not any(k.startswith("gpus.") for k in report["facts"])
