"""`--python OTHER`: the interpreter the user trains with, given as a user types it, examined
by a doctor installed the way users install it (a wheel in its own venv).

Real venvs and real child processes: venv A holds the doctor's wheel and its own `unsloth`
(a stand-in, version 1.0); venv B holds another `unsloth` (2.0). A child started for B must
import B's packages and, of the doctor, only its `doctor` package.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.probes.child_python import absolute_python, check_python

from tests.helpers.cli import ROOT, run_cli

# A stand-in for unsloth: says which copy was imported and what the importing child could see.
FAKE_UNSLOTH = '''\
import json, os, sys
__version__ = {version!r}
_out = os.environ.get("PROBE_OUT")
if _out:
    try:
        import doctor
        _code = os.path.dirname(os.path.dirname(doctor.__file__))
        _ours = {{"doctor": os.path.realpath(doctor.__file__), "code": _code, "beside": sorted(os.listdir(_code))}}
    except ImportError:
        _ours = {{"doctor": None}}
    with open(_out, "w") as fh:
        json.dump(dict(_ours, version=__version__, file=__file__, sys_path=sys.path), fh)
'''


def make_venv(where: Path) -> Path:
    """A venv without pip (fast); returns its python, the symlink a user would name."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    return where / "bin" / "python"


def site_packages(python: Path) -> Path:
    done = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60)
    return Path(done.stdout.strip())


def add_fake_unsloth(python: Path, version: str) -> Path:
    pkg = site_packages(python) / "unsloth"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_UNSLOTH.format(version=version))
    return pkg


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(A's unsloth-doctor, B's python): the doctor installed from its wheel in A, not editable."""
    root = tmp_path_factory.mktemp("other-python")
    built = pip("wheel", "--no-deps", "-w", str(root / "dist"), str(ROOT))
    wheels = sorted((root / "dist").glob("unsloth_doctor-*.whl"))
    if built.returncode != 0 or not wheels:
        pytest.skip(f"could not build the doctor's wheel (no build backend on the package index?): "
                    f"{built.stderr.strip()[-300:]}")
    a_python = make_venv(root / "A")
    installed = pip("--python", str(a_python), "install", str(wheels[0]))  # with its dependencies
    if installed.returncode != 0:
        pytest.skip(f"pip could not install the doctor's dependencies: {installed.stderr.strip()[-300:]}")
    add_fake_unsloth(a_python, "1.0")
    b_python = make_venv(root / "B")
    add_fake_unsloth(b_python, "2.0")
    return a_python.parent / "unsloth-doctor", b_python


def run_installed(doctor: Path, *args: str, probe: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed doctor as a user runs it: no PYTHONPATH pointing at this checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(NO_COLOR="1", PROBE_OUT=str(probe))
    return subprocess.run([str(doctor), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow
def test_smoke_child_sees_the_other_pythons_packages_and_only_our_package(venvs, tmp_path: Path) -> None:
    doctor, b_python = venvs
    a_root, probe = doctor.parent.parent, tmp_path / "probe.json"
    done = run_installed(doctor, "smoke", "--python", str(b_python), "--format", "json", "--timeout", "120",
                         probe=probe, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]   # the stand-in has no FastLanguageModel
    seen = json.loads(probe.read_text())
    assert seen["version"] == "2.0", f"the child imported the doctor venv's unsloth: {seen['file']}"
    assert not [p for p in seen["sys_path"] if p.startswith(str(a_root))], seen["sys_path"]
    # our code is the wheel's, reached through a folder that holds nothing else
    assert seen["doctor"] == os.path.realpath(site_packages(doctor.parent / "python") / "doctor" / "__init__.py")
    assert seen["beside"] == ["doctor"]
    assert not os.path.exists(seen["code"])   # removed when the doctor exits
    stage = json.loads(done.stdout)["smoke"]["stages"][0]
    assert stage["name"] == "import" and str(b_python.parent.parent) in stage["detail"]


@pytest.mark.slow
def test_deep_child_sees_the_other_pythons_packages(venvs, tmp_path: Path) -> None:
    doctor, b_python = venvs
    a_root, probe = doctor.parent.parent, tmp_path / "probe.json"
    done = run_installed(doctor, "scan", "--python", str(b_python), "--deep", "--format", "json", "--timeout", "120",
                         probe=probe, cwd=tmp_path)
    facts = json.loads(done.stdout)["facts"]
    assert facts["deep.unsloth.version"] == "2.0" and facts["python.executable"] == str(b_python)
    seen = json.loads(probe.read_text())
    assert seen["doctor"] is None   # the deep child needs none of our code
    assert not [p for p in seen["sys_path"] if p.startswith(str(a_root))], seen["sys_path"]


def test_smoke_child_code_needs_nothing_the_training_stack_lacks(tmp_path: Path) -> None:
    """What the smoke child imports of ours (and the training watchdog when it reports a finding)
    loads no third-party module beyond packaging and PyYAML, which transformers requires anyway;
    RE2 is optional. A stub transformers stands in for the real one."""
    stub = tmp_path / "stub" / "transformers"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("class TrainerCallback:\n    pass\n")
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import doctor.smoketest.child, doctor.smoketest.build, doctor.smoketest.reload\n"
        "from doctor.training.watchdog import DoctorCallback\n"
        "class Args: learning_rate = 2e-4\n"
        "class State: global_step = 1\n"
        "class Control: should_training_stop = False\n"
        "cb = DoctorCallback(policy='warn', stream=sys.stderr)\n"
        "cb.on_log(Args(), State(), Control(), logs={'loss': float('nan'), 'grad_norm': 1.0})\n"
        "assert cb.findings, 'the watchdog reported nothing'\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "import json; print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {'doctor', 'transformers'})))\n"
    )
    from doctor.smoketest.runner import child_env

    env = child_env({**os.environ, "PYTHONPATH": str(stub.parent), "UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")})
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # cython_runtime and _cython_*: what compiled extensions (PyYAML's) register, no package
    loaded = {m for m in json.loads(done.stdout) if not m.startswith(("cython_runtime", "_cython_"))}
    assert loaded <= {"packaging", "yaml", "_yaml", "re2", "_re2"}, done.stdout


# --- the path as typed: relative, a bare name on PATH, or a usage error --------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a bare .venv in it (no unsloth: the smoke child stops at import)."""
    folder = tmp_path_factory.mktemp("project")
    make_venv(folder / ".venv")
    return folder


def test_relative_and_bare_names_resolve_without_following_the_venv_link(project: Path) -> None:
    venv_python = project / ".venv" / "bin" / "python"
    assert os.path.realpath(venv_python) != str(venv_python)   # the venv's python is a link out of it
    assert absolute_python(".venv/bin/python", cwd=str(project)) == str(venv_python)
    assert absolute_python("python", path=str(venv_python.parent)) == str(venv_python)
    assert check_python(".venv/bin/python", cwd=str(project)) == str(venv_python)
    assert check_python(str(venv_python)) == str(venv_python)


def test_scan_examines_a_relative_python(project: Path) -> None:
    done = run_cli("scan", "--python", ".venv/bin/python", "--format", "json", cwd=project)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    facts = json.loads(done.stdout)["facts"]
    assert facts["python.executable"] == str(project / ".venv" / "bin" / "python")
    assert facts["python.prefix"] == str(project / ".venv")


def test_scan_deep_runs_a_relative_python(project: Path) -> None:
    done = run_cli("scan", "--python", ".venv/bin/python", "--deep", "--format", "json", "--timeout", "60",
                   cwd=project)
    facts = json.loads(done.stdout)["facts"]
    # this suite's own interpreter has torch; the project's bare venv has not
    assert facts["deep.exit_code"] == 0 and facts["deep.torch.import_ok"] is False


def _smoke_stopped_at_import(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stderr[-2000:]   # a finding, not an internal error (3)
    stages = json.loads(done.stdout)["smoke"]["stages"]
    # this suite's own interpreter has unsloth: the child really ran the project's venv
    assert stages[0]["name"] == "import" and "No module named 'unsloth'" in stages[0]["detail"]


def test_smoke_runs_a_relative_python(project: Path) -> None:
    done = run_cli("smoke", "--python", ".venv/bin/python", "--format", "json", "--timeout", "120", cwd=project)
    _smoke_stopped_at_import(done)


def test_a_bare_name_is_looked_up_on_path(project: Path, tmp_path: Path) -> None:
    env = {"PATH": str(project / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", "")}
    done = run_cli("scan", "--python", "python", "--format", "json", cwd=tmp_path, env=env)
    assert json.loads(done.stdout)["facts"]["python.prefix"] == str(project / ".venv")
    done = run_cli("smoke", "--python", "python", "--format", "json", "--timeout", "120", cwd=tmp_path, env=env)
    _smoke_stopped_at_import(done)


NOT_AN_INTERPRETER = {"missing/bin/python": "does not exist", "no-such-command-here": "neither a file nor a command",
                      "my-venv": "is a folder", "notes.txt": "does not run as a Python interpreter",
                      "./hello": "does not run as a Python interpreter"}


@pytest.mark.parametrize("given", sorted(NOT_AN_INTERPRETER))
@pytest.mark.parametrize("command", ["scan", "smoke"])
def test_what_is_not_an_interpreter_is_a_one_line_usage_error(command: str, given: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a program\n")
    (tmp_path / "hello").write_text("#!/bin/sh\necho hello\n")
    (tmp_path / "hello").chmod(0o755)
    (tmp_path / "my-venv").mkdir()
    done = run_cli(command, "--python", given, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-1500:])
    assert done.stderr.startswith("unsloth-doctor: error: --python: ") and NOT_AN_INTERPRETER[given] in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
