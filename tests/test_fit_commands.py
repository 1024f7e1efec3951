"""Install commands fitted to the machine: the installer that is there, the scanned
interpreter, the GPU or its absence, the doctor's own source."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from doctor.fixes.commands import Machine, fit_command
from tests.helpers.env_shapes import Machine as FakeMachine, scan

ROOT = Path(__file__).resolve().parent.parent
PY = "/srv/train/bin/python"
CPU = Machine(python=PY, gpu=False)
GPU = Machine(python=PY, gpu=True, driver_cuda="12.8")


def test_pip_runs_as_the_scanned_interpreter() -> None:
    assert fit_command('pip install "datasets==4.3.0"', GPU) == f'{PY} -m pip install "datasets==4.3.0"'
    assert fit_command("pip uninstall -y torchao", GPU) == f"{PY} -m pip uninstall -y torchao"


def test_uv_is_used_where_it_is_installed() -> None:
    uv = Machine(python=PY, uv=True, gpu=True, driver_cuda="12.8")
    assert fit_command("pip install --upgrade --force-reinstall --no-cache-dir --no-deps unsloth unsloth_zoo", uv) == \
        f"uv pip install --python {PY} --upgrade --reinstall --no-cache --no-deps unsloth unsloth_zoo"
    assert fit_command("pip uninstall -y xformers", uv) == f"uv pip uninstall --python {PY} xformers"
    assert fit_command("uv venv unsloth_env --python 3.13", uv) == "uv venv unsloth_env --python 3.13"


def test_without_uv_its_torch_backend_becomes_the_index_for_the_driver() -> None:
    assert fit_command("uv pip install --reinstall torch torchvision --torch-backend=auto", GPU) == \
        f"{PY} -m pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/cu128"
    old_driver = Machine(python=PY, gpu=True, driver_cuda="12.2")
    assert fit_command("uv pip install torch --torch-backend=auto", old_driver).endswith("/whl/cu121")
    assert fit_command("uv venv unsloth_env --python 3.13", GPU) == "python3.13 -m venv unsloth_env"


def test_a_command_installing_more_than_torch_keeps_pypi() -> None:
    # the PyTorch index has no unsloth: --index-url would make the command fail
    assert fit_command("uv pip install unsloth --torch-backend=auto", CPU) == \
        f"{PY} -m pip install unsloth --extra-index-url https://download.pytorch.org/whl/cpu"


def test_no_gpu_gets_the_cpu_build_and_no_gpu_only_packages() -> None:
    assert fit_command("uv pip install torch torchvision --torch-backend=auto", CPU) == \
        f"{PY} -m pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    assert fit_command("pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu126",
                       CPU).endswith("/whl/cpu")
    assert fit_command('pip install "bitsandbytes>=0.45.5,!=0.46.0,!=0.48.0"', CPU) is None
    assert fit_command('pip install "triton>=3.0.0" "diffusers"', CPU) == f"{PY} -m pip install diffusers"
    assert fit_command('pip install "triton>=3.0.0"', GPU) == f'{PY} -m pip install "triton>=3.0.0"'


def test_the_doctors_extras_come_from_where_the_doctor_came_from() -> None:
    local = Machine(python=PY, gpu=False, doctor_python="/opt/doctor/bin/python", doctor_source="/src/unsloth-doctor")
    assert fit_command('pip install "unsloth-doctor[data]"', local) == \
        '/opt/doctor/bin/python -m pip install "/src/unsloth-doctor[data]"'
    from_pypi = Machine(python=PY, doctor_python="/opt/doctor/bin/python")
    assert fit_command('pip install "unsloth-doctor[data]"', from_pypi) == \
        '/opt/doctor/bin/python -m pip install "unsloth-doctor[data]"'


def test_other_commands_are_left_alone() -> None:
    for command in ("export HF_HUB_OFFLINE=1", "nvidia-smi", "git lfs install && git lfs pull", "python -m bitsandbytes"):
        assert fit_command(command, CPU) == command


def test_a_scan_of_this_machine_fits_every_command() -> None:
    """The real environment the tests run in: every install command uses the installer that is
    there and this interpreter; without a GPU, nothing GPU-only is advised."""
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "--env", "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(done.stdout)
    facts = report["facts"]
    commands = [fix["command"] for f in report["findings"] for fix in f.get("fixes", []) if fix.get("command")]
    installs = [c for c in commands if " pip " in f" {c} "]
    uv = shutil.which("uv") is not None
    for command in installs:
        assert command.startswith("uv pip" if uv else f"{facts['python.executable']} -m pip"), command
    if not facts.get("gpu.count") and not facts.get("gpu.amd_kfd"):
        assert not [c for c in installs if any(p in c for p in ("triton", "bitsandbytes", "xformers", "/cu1"))]
        assert "ENV-BNB-MISSING" not in {f["id"] for f in report["findings"]}


def test_the_doctors_own_fresh_venv_says_which_python_to_scan(tmp_path: Path) -> None:
    fresh = FakeMachine(tmp_path)
    fresh.site.install("unsloth-doctor", "0.1.0", requires=["rich>=13"])
    found = scan(fresh.view())
    assert "ENV-DOCTOR-OWN-PYTHON" in found and "ENV-TORCH-MISSING" not in found
    assert "--python" in found["ENV-DOCTOR-OWN-PYTHON"].fixes[0].command

    training = FakeMachine(tmp_path / "other")
    training.site.install("unsloth", "2026.10.9")
    found = scan(training.view())
    assert "ENV-DOCTOR-OWN-PYTHON" not in found and "ENV-TORCH-MISSING" in found


def test_the_lead_line_comes_first(tmp_path: Path) -> None:
    from doctor.report.console import make_console, write_report
    from doctor.results.report import Report
    from doctor.scanner import lead_lines
    import io

    fresh = FakeMachine(tmp_path)
    fresh.site.install("unsloth-doctor", "0.1.0")
    findings = scan(fresh.view())["_all"]
    report = Report(command="scan", findings=findings, lead=lead_lines(findings))
    out = io.StringIO()
    write_report(report, make_console(out))
    first = out.getvalue().splitlines()[0]
    assert first.startswith("→ This is the doctor's own Python") and "unsloth-doctor scan --python" in first


def test_unknown_gpu_keeps_gpu_packages_and_uvs_torch_backend() -> None:
    unknown = Machine(python=None, gpu=None)
    assert fit_command('pip install "triton>=3.0.0"', unknown) == 'python -m pip install "triton>=3.0.0"'
    command = "uv pip install torch torchvision --torch-backend=auto"
    assert fit_command(command, unknown) == command   # no driver known: nothing to tell pip


def test_explain_on_this_machine_writes_commands_for_its_installer() -> None:
    """A pasted log may come from another machine: the installer is this one's, the GPU-only
    fix is kept (with --no-env the knowledge base's own command is shown)."""
    from tests.helpers.cli import run_cli

    import yaml

    log = yaml.safe_load((ROOT / "fixtures/tracebacks/bnb-native-library-missing.yaml").read_text())["text"]
    with_env = run_cli("explain", "-", "--format", "json", stdin=log)
    commands = [fix.get("command") for f in json.loads(with_env.stdout)["findings"] for fix in f["fixes"]]
    installs = [c for c in commands if c and " pip " in f" {c} "]
    uv = shutil.which("uv") is not None
    assert installs and all(c.startswith("uv pip" if uv else "python -m pip") for c in installs), installs
    assert any("bitsandbytes" in c for c in installs)

    without_env = run_cli("explain", "-", "--no-env", "--format", "json", stdin=log)
    commands = [fix.get("command") for f in json.loads(without_env.stdout)["findings"] for fix in f["fixes"]]
    assert any(c and c.startswith("pip install") for c in commands)


def test_a_fix_says_which_gpu_only_packages_it_left_out() -> None:
    from doctor.findings import Fix
    from doctor.fixes.commands import fit_fix

    fix = fit_fix(Fix("Install what is missing.", kind="command",
                      command='pip install "triton>=3.0.0" "bitsandbytes>=0.45.5" diffusers'), CPU)
    assert fix is not None and fix.command == f"{PY} -m pip install diffusers"
    assert fix.text == ("Install what is missing. (triton and bitsandbytes left out: there is no GPU here, "
                        "and Unsloth's CPU path runs without them)")
