"""`scan --deep` with real child processes: a real CPU torch, a hang, a segfault, a failing import."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.engine import findings_from_observations
from doctor.api import load_knowledge
from doctor.probes.deep import MARK, ChildRun, interpret, run_deep_probe
from doctor.probes.env import collect_environment
from tests.helpers.env_shapes import knowledge, write_script

TORCH_VERSION = "2.13.0"


@pytest.fixture(scope="session")
def torch_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A throwaway venv with the real CPU torch wheel (pip's own index, no GPU build)."""
    given = os.environ.get("UNSLOTH_DOCTOR_TEST_TORCH_PYTHON")
    if given:
        return given
    venv = tmp_path_factory.mktemp("torch-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--retries", "0", "--timeout", "10", f"torch=={TORCH_VERSION}",
                           "--index-url", "https://download.pytorch.org/whl/cpu"],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # no CPU index reachable: a pip configured with a local index
        done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"torch=={TORCH_VERSION}"],
                              capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.skip(f"pip could not install torch=={TORCH_VERSION}: {done.stderr.strip()[-300:]}")
    return python


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has already died
    except OSError:
        return False


def _fake_package(root: Path, name: str, code: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(code, encoding="utf-8")
    return root

KB = load_knowledge()



def _env_with(path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(path), "UNSLOTH_DOCTOR_DEEP_SKIP": ""}


def test_real_cpu_torch(torch_python: str) -> None:
    result = run_deep_probe(KB, timeout_s=300, python=torch_python)
    facts = result.facts
    assert facts["deep.torch.import_ok"] is True
    assert facts["deep.torch.version"].startswith(TORCH_VERSION)
    assert facts["deep.torch.cuda_available"] is False and facts["deep.torch.device_count"] == 0
    assert facts["deep.cpu.matmul_gflops"] > 0
    ids = {o.entry_id for o in result.observations}
    assert "ENV-DEEP-CRASH" not in ids and "ENV-DEEP-TIMEOUT" not in ids
    failed = {o.values["module"] for o in result.observations
              if o.entry_id in ("ENV-DEEP-MODULE-MISSING", "ENV-DEEP-IMPORT-FAILED")}
    installed = collect_environment(python=torch_python).facts
    for module in ("bitsandbytes", "triton", "unsloth"):
        # each one imported; or it failed and says why; or the metadata scan already knows it is absent
        if facts[f"deep.{module}.import_ok"]:
            assert module not in failed
        else:
            assert module in failed or f"pkg.{module}.version" not in installed
    findings = findings_from_observations(knowledge(), result.observations, facts)
    assert all(f.id.startswith(("ENV-", "RT-")) for f in findings)


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh venv with nothing installed: a real interpreter without torch."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


def test_interpreter_without_torch(bare_python: str) -> None:
    result = run_deep_probe(KB, timeout_s=120, python=bare_python, env={**os.environ, "PYTHONPATH": ""},
                            static_facts={"pkg.torch.version": "2.8.0"})  # metadata said installed
    obs = [o for o in result.observations if o.entry_id == "ENV-DEEP-MODULE-MISSING"]
    assert obs and obs[0].values["module"] == "torch"
    assert result.facts["deep.last_step"] == "done" and result.facts["deep.exit_code"] == 0


def test_a_hanging_child_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    fake = write_script(tmp_path / "python", f"""#!/bin/sh
echo '{MARK}{{"step": "import_unsloth", "status": "start"}}'
echo "Unsloth: downloading something"
sleep 300 &
echo $! > {pids}
echo $$ >> {pids}
wait
""")
    result = run_deep_probe(KB, timeout_s=2, python=str(fake))
    timeout = [o for o in result.observations if o.entry_id == "ENV-DEEP-TIMEOUT"]
    assert timeout and timeout[0].values["step"] == "import_unsloth"
    assert "downloading something" in timeout[0].values["tail"]
    assert result.facts["deep.timed_out"] is True
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} outlived the deep check"
    finding = findings_from_observations(knowledge(), timeout, result.facts)[0]
    assert "import_unsloth" in finding.message and "2" in finding.message


def test_a_segfault_while_importing_torch(tmp_path: Path, bare_python: str) -> None:
    fake = _fake_package(tmp_path / "site", "torch", "import ctypes\nctypes.string_at(0)\n")
    result = run_deep_probe(KB, timeout_s=60, python=bare_python, env=_env_with(fake))
    crash = [o for o in result.observations if o.entry_id == "ENV-DEEP-CRASH"]
    assert crash, result.observations
    assert crash[0].values["step"] == "import_torch" and crash[0].values["how"] == "SIGSEGV"
    full_tail = crash[0].evidence[0].value
    assert "Segmentation fault" in full_tail and "Fatal Python error" in full_tail  # faulthandler's report


def test_a_failing_import_and_a_warning_the_knowledge_base_knows(tmp_path: Path, bare_python: str) -> None:
    site = _fake_package(tmp_path / "site", "torch",
                         "raise OSError('libcudart.so.13: cannot open shared object file: No such file or directory')\n")
    _fake_package(site, "bitsandbytes",
                  "print('No prebuilt binary for CUDA 12.9, loading CUDA 12.8 instead. Set BNB_CUDA_VERSION to override.')\n"
                  "__version__ = '0.50.0'\n")
    result = run_deep_probe(KB, timeout_s=60, python=bare_python, env=_env_with(site))
    by_id = {o.entry_id: o for o in result.observations}
    failed = by_id["ENV-DEEP-IMPORT-FAILED"]
    assert failed.values["module"] == "torch" and "libcudart.so.13" in failed.values["error"]
    assert result.facts["deep.bitsandbytes.version"] == "0.50.0"
    fallback = by_id["ENV-BNB-LIB-FALLBACK"]  # from the child's printed output, via the symptoms
    assert fallback.values == {"want": "12.9", "got": "12.8"}
    assert "ENV-DEEP-CRASH" not in by_id


def test_modules_the_metadata_scan_already_knows_are_missing_are_not_repeated(bare_python: str) -> None:
    from doctor.probes.env import collect_environment

    static = collect_environment(python=bare_python).facts   # what the environment probe passes in
    result = run_deep_probe(KB, timeout_s=120, python=bare_python, env={**os.environ, "PYTHONPATH": ""},
                            static_facts=static)
    assert result.facts["deep.torch.import_ok"] is False
    assert not [o for o in result.observations if o.entry_id == "ENV-DEEP-MODULE-MISSING"]


def test_a_python_that_does_not_exist(tmp_path: Path) -> None:
    result = run_deep_probe(KB, timeout_s=10, python=str(tmp_path / "no-such-python"))
    crash = [o for o in result.observations if o.entry_id == "ENV-DEEP-CRASH"]
    assert crash and "could not start" in crash[0].values["tail"]


def test_interpret_recorded_gpu_run() -> None:
    output = "\n".join([
        MARK + '{"step": "import_torch", "status": "ok", "seconds": 3.1, "data": {"version": "2.8.0+cu128", '
               '"cuda": "12.8", "cuda_available": true, "device_count": 1, '
               '"devices": [{"index": 0, "name": "Tesla T4", "capability": 7.5}]}}',
        MARK + '{"step": "matmul_fp16:0", "status": "start"}',
        MARK + '{"step": "matmul_fp16:0", "status": "error", "error": "RuntimeError: CUDA error: no kernel image '
               'is available for execution on the device"}',
        MARK + '{"step": "done", "status": "ok"}',
    ])
    facts, obs, _text = interpret(ChildRun(0, output, False, 120))
    assert facts["deep.gpu.0.matmul_fp16_ok"] is False and facts["deep.gpu.0.capability"] == 7.5
    assert [o.entry_id for o in obs] == ["ENV-DEEP-MATMUL-FAILED"]
    assert obs[0].values["dtype"] == "fp16" and obs[0].values["gpu"] == "0"


def test_arch_support_follows_cuda_compatibility_rules() -> None:
    from doctor.probes.deep import arch_supported

    cu128_2_8 = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]
    cu126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    assert arch_supported(8.9, cu128_2_8)          # sm_86 cubin runs on 8.9 (same major, higher minor)
    assert arch_supported(12.0, cu128_2_8)
    assert not arch_supported(12.0, cu126)         # Blackwell needs CUDA 12.8 builds
    assert not arch_supported(10.0, cu126)
    assert not arch_supported(6.1, cu128_2_8)      # Pascal was dropped from cu128 wheels in 2.8
    assert arch_supported(6.1, cu126)
    assert arch_supported(12.1, ["sm_90", "compute_120"])  # PTX JIT for newer GPUs
    assert not arch_supported(9.0, ["compute_120"])
