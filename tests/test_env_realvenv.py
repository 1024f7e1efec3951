"""A real virtualenv with a deliberately broken install, scanned from outside like a user's env.

trl 0.24.0 declares accelerate>=1.4.0; installing accelerate 0.20.0 next to it with --no-deps
gives the kind of mismatch pip only warns about. Both are small pure-Python wheels.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.engine import evaluate, findings_from_observations
from doctor.probes.env import collect_environment
from doctor.probes.system import SystemView
from tests.helpers.env_shapes import knowledge


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("broken-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                           "trl==0.24.0", "accelerate==0.20.0"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.skip(f"pip could not reach a package index: {done.stderr.strip()[-300:]}")
    return python


def test_requirement_names_both_versions(broken_venv: Path) -> None:
    view = SystemView.live(str(broken_venv))
    result = collect_environment(view)
    assert result.facts["pkg.trl.version"] == "0.24.0"
    assert result.facts["pkg.accelerate.version"] == "0.20.0"
    assert result.facts["python.executable"] == str(broken_venv)
    unmet = [o for o in result.observations if o.entry_id == "ENV-REQUIREMENT-UNMET"]
    assert [o.values["dependency"] for o in unmet] == ["accelerate"]
    finding = findings_from_observations(knowledge(), unmet, result.facts)[0]
    assert "accelerate 0.20.0 is installed; trl 0.24.0 requires accelerate>=1.4.0" in finding.message
    assert finding.location is not None and finding.location.path.endswith("trl-0.24.0.dist-info/METADATA")
    line = Path(finding.location.path).read_text(encoding="utf-8").splitlines()[finding.location.line - 1]
    assert line == "Requires-Dist: accelerate>=1.4.0"  # the location points at the declaring line
    missing = {(o.values["package"], d) for o in result.observations if o.entry_id == "ENV-REQUIREMENT-MISSING"
               for d in o.values["dependencies"]}
    assert {("trl", "datasets"), ("trl", "transformers")} <= missing


def test_the_findings_agree_with_pip_check(broken_venv: Path) -> None:
    """pip's own checker, run in the same venv, is the reference for what is unmet or missing."""
    from doctor.probes.packages import CHECKED, dist_key

    done = subprocess.run([str(broken_venv), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    theirs = set()
    for line in done.stdout.splitlines():
        m = re.match(r"(\S+) \S+ (?:requires|has requirement) ([A-Za-z0-9._-]+)", line)
        if m and dist_key(m.group(1)) in CHECKED:
            theirs.add((dist_key(m.group(1)), dist_key(m.group(2))))
    assert theirs, done.stdout
    result = collect_environment(SystemView.live(str(broken_venv)))
    ours = set()
    for o in result.observations:
        deps = o.values.get("dependencies") or [o.values.get("dependency")]
        ours |= {(dist_key(o.values["package"]), dist_key(d)) for d in deps if d}
    assert ours == theirs


def test_the_scan_of_that_venv_sees_no_torch(broken_venv: Path) -> None:
    result = collect_environment(python=str(broken_venv))
    ids = {f.id for f in evaluate(knowledge(), result.facts)}
    assert "ENV-TORCH-MISSING" in ids and "ENV-UNSLOTH-NOT-INSTALLED" in ids
