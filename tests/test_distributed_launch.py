"""`scan --distributed` for real: torchrun with gloo on the CPU, two ranks, real subprocesses.

One rank gets a different package through its own sys.path (a real wheel installed with
`pip install --target`), as a node with its own PYTHONPATH would, and the report must name it.
Slurm's srun is not installed here: its test starts the two ranks itself with the variables
srun sets, and the ranks meet over real gloo through tcp://.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed: no torch.distributed"),
]
WRAPPER = ROOT / "fixtures" / "distributed" / "rank_env.py"
SHADOW = ("trl", "1.13.0")   # a small pure-Python wheel; its version only has to differ from the shared one


def torchrun(*args: str, env: dict[str, str] | None = None, log_dir: Path | None = None, nproc: int = 2,
             timeout: float = 240) -> subprocess.CompletedProcess[str]:
    logs = ["--log-dir", str(log_dir), "--redirects", "3"] if log_dir else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *logs, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1", **(env or {})})


def report_of(stdout: str) -> dict:
    try:
        return json.loads(stdout)
    except ValueError:
        pytest.fail(f"no JSON report on stdout:\n{stdout[-3000:]}")


def findings(report: dict, entry_id: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == entry_id]


@pytest.fixture(scope="module")
def shadow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("rank1-site")
    name, version = SHADOW
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                           f"{name}=={version}"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"could not install {name}=={version} for rank 1: {done.stderr.strip()[-300:]}")
    return target


def test_two_ranks_gather_to_rank_0_which_reports_once(tmp_path: Path) -> None:
    done = torchrun("-m", "doctor", "scan", "--distributed", "--format", "json", log_dir=tmp_path)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    logs = {p.parent.name: p.read_text() for p in tmp_path.rglob("stdout.log")}
    assert set(logs) == {"0", "1"}
    assert logs["1"] == "", "rank 1 must print nothing"
    report = report_of(logs["0"])
    facts = report["facts"]
    assert facts["dist.world_size"] == 2 and facts["dist.launcher"] == "torchrun"
    assert facts["dist.allreduce.backend"] == "gloo" and facts["dist.allreduce.ok"] is True
    assert facts["dist.pair.0-1.busbw_gbps"] > 0
    # both ranks share this interpreter: nothing may differ
    assert [f["id"] for f in report["findings"] if f["id"].startswith("DIST-")] == []


def test_three_ranks_measure_every_pair_in_its_own_group() -> None:
    report = report_of(torchrun("-m", "doctor", "scan", "--distributed", "--format", "json", nproc=3).stdout)
    facts = report["facts"]
    pairs = {k: v for k, v in facts.items() if k.startswith("dist.pair.")}
    assert sorted(pairs) == ["dist.pair.0-1.busbw_gbps", "dist.pair.0-2.busbw_gbps", "dist.pair.1-2.busbw_gbps"]
    assert all(v > 0 for v in pairs.values()) and facts["dist.allreduce.ok"] is True


def test_a_rank_with_another_package_version_is_named(shadow_dir: Path) -> None:
    name, _ = SHADOW
    installed = next(shadow_dir.glob(f"{name}-*.dist-info")).name[len(name) + 1:-len(".dist-info")]
    done = torchrun(str(WRAPPER), "scan", "--distributed", "--format", "json",
                    env={"RANK_SYS_PATH_1": str(shadow_dir)})
    report = report_of(done.stdout)
    shared = report["facts"].get(f"pkg.{name}.version")   # rank 0's facts are the report's
    if shared == installed:
        pytest.skip(f"the shared environment already has {name} {installed}")
    assert done.returncode == 1, "a version mismatch is an error: exit 1"
    [finding] = [f for f in findings(report, "DIST-PACKAGE-MISMATCH") if name in f["title"]]
    host = report["facts"]["dist.rank.1.host"]
    rank0 = f"has {name} {shared}" if shared else f"has no {name}"
    assert f"rank 1 (host {host}) has {name} {installed}" in finding["message"]
    assert f"rank 0 (host {host}) {rank0}" in finding["message"]


def test_console_report_under_torchrun_names_the_job() -> None:
    done = torchrun("-m", "doctor", "scan", "--distributed", "--script", "fixtures/distributed/ddp_train.py")
    assert "Traceback" not in done.stdout
    assert "Distributed: 2 ranks on 1 host (torchrun)" in done.stdout
    assert "All-reduce: result checked, 2 ranks" in done.stdout
    assert "DIST-DEVICE-MAP-FIXED" in done.stdout and done.returncode == 1


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed")
def test_accelerate_launch_is_recognised(tmp_path: Path) -> None:
    # --multi_gpu picks accelerate's torchrun launcher; on a CPU machine its ranks meet over gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "doctor", "scan", "--distributed", "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env={**os.environ, "NO_COLOR": "1", "HF_HOME": str(tmp_path)})
    facts = report_of(done.stdout)["facts"]
    assert facts["dist.launcher"] == "accelerate" and facts["dist.world_size"] == 2
    assert facts["dist.allreduce.ok"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _srun_env(rank: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    return {**env, "NO_COLOR": "1", "SLURM_PROCID": str(rank), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(rank),
            "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "127.0.0.1", "SLURM_JOB_ID": "77", "MASTER_PORT": str(port)}


def test_srun_ranks_meet_over_tcp_and_are_told_unsloth_will_not_see_them() -> None:
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "doctor", "scan", "--distributed", "--format", "json"],
                              cwd=ROOT, env=_srun_env(rank, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for rank in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert outs[1][0] == "" and outs[1][1] == ""
    report = report_of(outs[0][0])
    assert report["facts"]["dist.launcher"] == "slurm" and report["facts"]["dist.allreduce.ok"] is True
    [finding] = findings(report, "DIST-LAUNCHER-NO-TORCH-VARS")
    assert "srun started ranks 0-1 with its own variables" in finding["message"]


def test_a_rank_that_never_comes_is_a_finding_not_a_hang() -> None:
    # only rank 0 of 2 starts: rendezvous must time out into a finding, without a traceback
    env = _srun_env(0, _free_port())
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "--distributed", "--timeout", "3",
                           "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    [finding] = findings(report_of(done.stdout), "DIST-RENDEZVOUS-FAILED")
    assert "127.0.0.1" in finding["message"] and done.returncode == 1


PROBE_MODULES = "import sys; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'unsloth', 'transformers', 'trl', 'peft', 'bitsandbytes'}))"


@pytest.mark.parametrize("args", [["scan"], ["scan", "--distributed"]])
def test_scan_without_a_launcher_imports_no_heavy_package(args: list[str], tmp_path: Path) -> None:
    code = (f"from doctor.cli import main; main({args + ['--format', 'json', '-o', str(tmp_path / 'r.json')]!r}); "
            + PROBE_MODULES)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    if "--distributed" in args:
        assert findings(report, "DIST-NOT-LAUNCHED")


def test_torch_missing_under_a_launcher_is_said_plainly() -> None:
    # torch made unimportable the way Python itself allows (a None entry in sys.modules)
    code = "import sys; sys.modules['torch'] = None; from doctor.cli import main; raise SystemExit(main(sys.argv[1:]))"
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    done = subprocess.run([sys.executable, "-c", code, "scan", "--distributed", "--format", "json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr
    [finding] = findings(report_of(done.stdout), "DIST-TORCH-MISSING")
    assert "2 ranks" in finding["message"] and done.returncode == 1


def test_script_checks_run_without_a_launcher() -> None:
    done = run_cli("scan", "--distributed", "--no-env", "--script", "fixtures/distributed/ddp_train.py",
                   "--format", "json")
    report = report_of(done.stdout)
    lines = {f["id"]: f["location"]["line"] for f in report["findings"] if f["id"].startswith("DIST-DEVICE")}
    assert lines == {"DIST-DEVICE-MAP-FIXED": 9}
