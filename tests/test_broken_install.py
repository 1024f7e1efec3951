"""ENV-BROKEN-INSTALL graded by what is really gone, on a real venv where pip installed a real wheel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.wheels import write_wheel

ROOT = Path(__file__).resolve().parent.parent
FILES = {"triton/__init__.py": "from triton.language import core\n", "triton/language.py": "core = 1\n",
         "triton/backends/nvidia/include/cuda.h": "/* header */\n", "triton/README.md": "docs\n"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home / "v")], check=True, timeout=300)
    python = home / "v" / "bin" / "python"
    if not python.exists():
        pytest.skip("no POSIX venv layout here")
    wheel = write_wheel(home, "triton", "3.4.0", FILES)
    subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    return python


def site(python: Path) -> Path:
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())


def findings(python: Path) -> dict[str, dict]:
    done = subprocess.run([sys.executable, "-m", "doctor", "scan", "--env", "--python", str(python), "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode in (0, 1, 2), done.stderr
    return {f["id"]: f for f in json.loads(done.stdout)["findings"]}


def imports(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import triton"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.slow
def test_missing_files_are_graded_by_what_they_break(venv: Path) -> None:
    packages = site(venv)
    assert "ENV-BROKEN-INSTALL" not in findings(venv)

    # a slimmed install: docs and headers gone, the modules all there; it still imports
    (packages / "triton" / "README.md").unlink()
    (packages / "triton" / "backends" / "nvidia" / "include" / "cuda.h").unlink()
    assert imports(venv)
    found = findings(venv)
    assert "ENV-BROKEN-INSTALL" not in found
    note = found["ENV-INSTALL-FILES-MISSING"]
    assert note["severity"] == "info"
    assert "triton/README.md" in note["message"] + json.dumps(note) and "still imports" in note["message"]

    # a module gone: named, and an error
    (packages / "triton" / "language.py").unlink()
    assert not imports(venv)
    error = findings(venv)["ENV-BROKEN-INSTALL"]
    assert error["severity"] == "error"
    assert "triton/language.py" in json.dumps(error)
    assert "README.md" not in json.dumps(error)   # the modules are named, not the docs


def test_a_large_record_is_sampled_and_a_gone_init_is_always_seen(tmp_path: Path) -> None:
    """torch lists 14,600 files: a sample is checked, plus every top-level __init__.py, whose
    loss breaks the import itself; once anything is seen missing, every entry is checked."""
    from doctor.probes.env import collect_environment
    from tests.helpers.env_shapes import Machine

    files = {"triton/__init__.py": "", **{f"triton/m{i:03}/x{j}.py": "" for i in range(100) for j in range(10)}}
    m = Machine(tmp_path)
    m.site.install("triton", "3.4.0", files=files)
    assert "pkg.broken" not in collect_environment(m.view()).facts
    (m.site.root / "triton" / "__init__.py").unlink()
    (m.site.root / "triton" / "m050" / "x3.py").unlink()
    facts = collect_environment(m.view()).facts
    assert facts["pkg.broken"] == "triton"
    assert "triton/__init__.py" in facts["pkg.broken_files"] and "triton/m050/x3.py" in facts["pkg.broken_files"]
