"""The environment scan: Python, OS, paths, variables, compiler, disk, and the other env probes.

`collect_environment(view)` is what `unsloth-doctor scan` calls. It imports nothing heavy and
reads the machine only through `SystemView` (doctor/probes/system.py).

Facts (besides those of packages.py, torch_build.py and gpu.py):
  python.version "3.11.7", python.implementation "cpython", python.executable, python.prefix
  python.venv        running inside a virtualenv / venv
  python.conda       the interpreter belongs to a conda environment (conda-meta/ in its prefix)
  python.conda_unactivated  a conda interpreter whose env is not the activated one (CONDA_PREFIX)
  os.system Linux|Windows|Darwin, os.release, os.machine, os.wsl (bool, Linux only)
  env.<VAR>          the variables listed in ENV_VARS and every UNSLOTH_* (never tokens)
  cuda.visible_devices_set  CUDA_VISIBLE_DEVICES is set (even to "")
  path.python        `python` on PATH; path.pip: `pip` on PATH; path.pip_python: the
                     interpreter pip's script runs (its shebang)
  python.doctor_only the doctor's own interpreter, without torch or unsloth (see _doctor_only)
  path.uv            `uv` on PATH (fix commands are written for it when present)
  path.pip_python_mismatch  pip on PATH installs into another environment than python on PATH
  cc.found, cc.path  a C compiler as Triton looks for one: $CC, else gcc, else clang
  disk.hf_cache.path, disk.hf_cache.free_gib, disk.cwd.free_gib
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from doctor.facts import FactCollector, Facts
from doctor.findings import AreaStatus, Observation
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.gpu import collect_gpu
from doctor.probes.packages import collect_packages
from doctor.probes.system import SystemView
from doctor.probes.torch_build import collect_torch_build

ENV_VARS = (
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_HOME", "CUDA_PATH", "LD_LIBRARY_PATH",
    "BNB_CUDA_VERSION", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_CACHE", "TORCH_CUDA_ARCH_LIST", "PYTORCH_CUDA_ALLOC_CONF", "TRITON_CACHE_DIR",
    "CC", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONNOUSERSITE",
)
_SECRET_HINTS = ("TOKEN", "KEY", "SECRET", "PASSWORD")
GIB = 1024 ** 3


def env_facts(environ: Mapping[str, str]) -> Facts:
    fc = FactCollector("environment")
    for name in ENV_VARS:
        if name in environ:
            fc.set(f"env.{name}", environ[name])
    for name, value in environ.items():
        if name.startswith("UNSLOTH_") and not any(h in name for h in _SECRET_HINTS):
            fc.set(f"env.{name}", value)
    fc.set("cuda.visible_devices_set", "CUDA_VISIBLE_DEVICES" in environ)
    return fc.freeze()


def shebang_python(script_text: str | None) -> str | None:
    """The interpreter a console script runs: `#!/x/bin/python`, or pip's long-path `exec` form."""
    if not script_text or not script_text.startswith("#!"):
        return None
    lines = script_text.split("\n", 2)
    first = lines[0][2:].strip()
    if first in ("/bin/sh", "/usr/bin/env sh") and len(lines) > 1 and lines[1].startswith("'''exec'"):
        parts = lines[1].split('"')
        return parts[1] if len(parts) > 2 else None
    if first.startswith("/usr/bin/env "):
        return None  # resolved through PATH at run time: same as `python` on PATH
    return first.split()[0] if first else None


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(os.path.dirname(a)) == os.path.realpath(os.path.dirname(b))


def python_facts(view: SystemView) -> Facts:
    py = view.python
    fc = FactCollector("interpreter")
    fc.set("python.version", py.version)
    fc.set("python.implementation", py.implementation)
    fc.set("python.executable", py.executable)
    fc.set("python.prefix", py.prefix)
    fc.set("python.venv", py.prefix != py.base_prefix)
    conda = view.exists(os.path.join(py.prefix, "conda-meta"))
    fc.set("python.conda", conda)
    if conda:
        active = view.environ.get("CONDA_PREFIX")
        fc.set("python.conda_unactivated",
               active is None or os.path.realpath(active) != os.path.realpath(py.prefix))
    fc.set("os.system", py.system)
    fc.set("os.release", py.release)
    fc.set("os.machine", py.machine)
    if py.system == "Linux":
        proc_version = view.read_text(view.sys_path("/proc/version")) or ""
        fc.set("os.wsl", "microsoft" in proc_version.lower() or "WSL_DISTRO_NAME" in view.environ)
    return fc.freeze()


def path_facts(view: SystemView) -> Facts:
    fc = FactCollector("PATH")
    python = view.which_on_path("python") or view.which_on_path("python3")
    pip = view.which_on_path("pip") or view.which_on_path("pip3")
    fc.set("path.python", python)
    fc.set("path.pip", pip)
    fc.set("path.uv", view.which_on_path("uv"))   # fix commands use uv where it is installed
    if pip:
        pip_python = shebang_python(view.read_text(pip))
        fc.set("path.pip_python", pip_python, pip)
        if pip_python and python:
            fc.set("path.pip_python_mismatch", not _same_dir(pip_python, python), pip)
    return fc.freeze()


def compiler_facts(view: SystemView) -> Facts:
    """Triton's own search order (triton/runtime/build.py): $CC, then gcc, then clang."""
    fc = FactCollector("PATH")
    cc = view.environ.get("CC")
    found = None
    if cc:
        found = cc if os.path.isabs(cc) and view.exists(cc) else view.which_on_path(cc)
    else:
        found = view.which_on_path("gcc") or view.which_on_path("clang")
    fc.set("cc.found", found is not None)
    fc.set("cc.path", found)
    return fc.freeze()


def hf_cache_dir(environ: Mapping[str, str], home: str) -> str:
    if environ.get("HF_HUB_CACHE"):
        return environ["HF_HUB_CACHE"]
    if environ.get("HF_HOME"):
        return os.path.join(environ["HF_HOME"], "hub")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "huggingface", "hub")


def disk_facts(view: SystemView) -> Facts:
    fc = FactCollector("disk")
    cache = hf_cache_dir(view.environ, view.home)
    fc.set("disk.hf_cache.path", cache)
    free = view.disk_free(cache)
    if free is not None:
        fc.set("disk.hf_cache.free_gib", round(free / GIB, 1))
    free = view.disk_free(view.cwd)
    if free is not None:
        fc.set("disk.cwd.free_gib", round(free / GIB, 1))
    return fc.freeze()


# The packages-area entries about torch and its CUDA companions go under the torch line; the
# rest of that area (Unsloth, bitsandbytes, requirements...) under the Unsloth stack line.
TORCH_LINE_IDS = ("ENV-TORCH-", "ENV-TORCHVISION-", "ENV-TORCHAO-", "ENV-TRITON-", "ENV-XFORMERS-")


def _areas(facts: Facts) -> list[AreaStatus]:
    g = facts.get
    # The area keys are those of the findings each line stands for (the entries' `area`), so
    # the console puts every finding under its line and marks the line by the worst of them.
    py = AreaStatus("env", f"Python {g('python.version')} ({g('python.implementation')}"
                    f"{', venv' if g('python.venv') else ''}{', conda' if g('python.conda') else ''})",
                    detail=str(g("python.executable", "")))
    if g("torch.version"):
        build = g("torch.build", "unknown")
        kind = f"CUDA {g('torch.cuda_build')}" if build == "cuda" else \
            f"ROCm {g('torch.hip_build')}" if build == "rocm" else build.upper() if build == "cpu" else build
        torch_line = AreaStatus("packages", f"torch {g('torch.version')} ({kind} build)", ids=TORCH_LINE_IDS)
    else:
        # in the doctor's own fresh venv that is as it should be (ENV-DOCTOR-OWN-PYTHON says what to scan)
        own = " (not needed in the doctor's own Python)" if g("python.doctor_only") else ""
        torch_line = AreaStatus("packages", "torch is not installed" + own, ids=TORCH_LINE_IDS)
    if g("nvml.available"):
        n = g("gpu.count", 0)
        gpu_line = AreaStatus(
            "gpu",
            f"driver {g('nvml.driver_version')} (CUDA {g('nvml.driver_cuda', '?')}), {n} GPU{'s' if n != 1 else ''}",
            detail=", ".join(f"{g(f'gpu.{i}.name')} (capability {g(f'gpu.{i}.capability', '?')}, "
                             f"{g(f'gpu.{i}.memory_total_mib', 0) // 1024} GiB)" for i in range(n)))
    else:
        gpu_line = AreaStatus("gpu", "no NVIDIA GPU visible to NVML",
                              detail=str(g("nvml.error", "")))
    names = ("unsloth", "unsloth_zoo", "transformers", "trl", "peft", "bitsandbytes")
    have = [f"{n} {g(f'pkg.{n}.version')}" for n in names if g(f"pkg.{n}.version")]
    stack = AreaStatus("packages", ", ".join(have) if g("pkg.unsloth.version") else
                       "unsloth is not installed", detail="" if g("pkg.unsloth.version") else ", ".join(have))
    return [py, torch_line, gpu_line, stack]


def collect_environment(view: SystemView | None = None, python: str | None = None,
                        requirements: bool = True) -> ProbeResult:
    """Gather every environment fact without importing torch, unsloth or their stack.

    `python`: examine that interpreter's environment (the one you train with) instead of the
    doctor's own; raises system.NotAPython when it does not run. `requirements=False`: facts
    only, without checking declared requirements (explain needs no more)."""
    view = view or SystemView.live(python)
    pkg_facts, observations, scan = collect_packages(view, requirements)
    sites = {k: d.site for k, d in scan.dists.items()}
    versions = {k: d.version for k, d in scan.dists.items()}
    facts = Facts.of(
        python_facts(view), env_facts(view.environ), path_facts(view), compiler_facts(view),
        disk_facts(view), pkg_facts, collect_torch_build(view, sites, versions), collect_gpu(view),
    )
    facts = facts.merged(_doctor_only(facts, python))
    return ProbeResult(facts=facts, observations=observations, areas=_areas(facts))


def _deep_output_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples of the ENV-DEEP-* entries: interpret a recorded child run (see deep.py)."""
    from doctor.probes.deep import run_output_example

    return run_output_example(text, options, kb)


def _requirements_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    from doctor.probes.packages import run_requirements_example

    return run_requirements_example(text, options, kb)


def _doctor_only(facts: Facts, python: str | None) -> Facts:
    """python.doctor_only: the scanned interpreter is the one the doctor runs in (no --python),
    with the doctor installed and neither torch nor unsloth: a fresh venv made for the doctor,
    not the environment anyone trains with."""
    fc = FactCollector("the doctor's own interpreter")
    fc.set("python.doctor_only", python is None and "pkg.unsloth_doctor.version" in facts
           and "pkg.torch.version" not in facts and "pkg.unsloth.version" not in facts)
    return fc.freeze()


class EnvironmentProbe(Probe):
    """Python, torch build, driver and GPUs, declared requirements; `--deep` imports them in a
    child process. The environment is one target without a path."""

    name, area, label = "env", "env", "Environment"
    headings = {"env": "Environment", "gpu": "NVIDIA driver & GPU", "packages": "Python packages"}
    examples = {"env.deep_output": _deep_output_example, "packages.requirements": _requirements_example}

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        options = context.options
        result = collect_environment(python=options.python)
        if options.deep:
            from doctor.probes.deep import run_deep_probe

            kwargs = {"python": options.python} if options.python else {}
            # the deep probe reuses these facts instead of scanning the environment again
            result = result.merge(run_deep_probe(context.kb, timeout_s=options.timeout,
                                                 static_facts=result.facts, **kwargs))
        return result


PROBE = EnvironmentProbe()
