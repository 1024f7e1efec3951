"""Real shapes of machines and installs, for the environment probes' tests.

Nothing here imitates our own code: a site-packages folder is written to disk with real
dist-info layouts and real file texts (torch's generated version.py, bitsandbytes' shipped
library names, Unsloth's own METADATA), and NVML answers come from a recorder that returns
values real GPUs and drivers report, through pynvml's own call names and error classes.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from doctor.probes.system import PythonInfo, SystemView, read_nvml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "env"

# torch 2.13.0's generated torch/version.py (read from the installed CPU wheel); CUDA wheels
# differ only in __version__ and `cuda`.
TORCH_VERSION_PY = """from typing import Optional

__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'rocm', 'xpu']
__version__ = '{version}'
debug = False
cuda: Optional[str] = {cuda}
git_version = 'cf30153c4c131c8164ee7798e5022d810682e2cb'
hip: Optional[str] = {hip}
rocm: Optional[str] = None
xpu: Optional[str] = None
"""


def torch_version_py(version: str, cuda: str | None = None, hip: str | None = None) -> str:
    q = lambda v: "None" if v is None else repr(v)  # noqa: E731 - the file's own quoting
    return TORCH_VERSION_PY.format(version=version, cuda=q(cuda), hip=q(hip))


# The native libraries in real bitsandbytes wheels (manylinux x86_64), listed from the wheels.
BNB_LIBS = {
    "0.49.2": ["libbitsandbytes_cpu.so"] + [f"libbitsandbytes_cuda{v}.so" for v in
                                            ("118", "120", "121", "122", "123", "124", "125", "126", "128", "129", "130")]
              + [f"libbitsandbytes_rocm{v}.so" for v in ("62", "63", "64", "70", "71", "72")] + ["libbitsandbytes_xpu.so"],
    "0.45.5": ["libbitsandbytes_cpu.so"] + [f"libbitsandbytes_cuda{v}.so" for v in
                                            ("117", "118", "120", "121", "122", "123", "124", "125", "126", "128")],
}


def real_metadata(name: str) -> str:
    """The header of a real METADATA file shipped in the 2026.10.9 wheels (fixtures/env)."""
    return (FIXTURES / f"{name}.METADATA").read_text(encoding="utf-8")


class Site:
    """A site-packages folder on disk, filled the way pip fills one."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def install(self, name: str, version: str, requires: Iterable[str] = (), files: Mapping[str, str] | None = None,
                metadata: str | None = None, requires_python: str | None = None) -> Path:
        dist = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist.mkdir()
        if metadata is None:
            lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}"]
            if requires_python:
                lines.append(f"Requires-Python: {requires_python}")
            lines += [f"Requires-Dist: {r}" for r in requires]
            metadata = "\n".join(lines) + "\n\nA description.\n"
        (dist / "METADATA").write_text(metadata, encoding="utf-8")
        record = []
        for rel, text in (files or {f"{name.replace('-', '_')}/__init__.py": ""}).items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            record.append(f"{rel},sha256=,{len(text)}")
        record += [f"{dist.name}/METADATA,,", f"{dist.name}/RECORD,,"]
        (dist / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
        return dist

    def torch(self, version: str, cuda: str | None = None) -> None:
        self.install("torch", version, requires=["filelock", "typing-extensions>=4.10.0"],
                     files={"torch/__init__.py": "", "torch/version.py": torch_version_py(version, cuda)})

    def bitsandbytes(self, version: str) -> None:
        files = {"bitsandbytes/__init__.py": ""}
        files.update({f"bitsandbytes/{lib}": "" for lib in BNB_LIBS[version]})
        self.install("bitsandbytes", version, requires=["torch<3,>=2.3", "numpy>=1.17"], files=files)


# --- NVML -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gpu:
    name: str
    capability: tuple[int, int]
    memory_bytes: int
    bus_id: str = "00000000:00:04.0"
    used_bytes: int = 0


# Values as real drivers report them (nvidia-smi shows the same memory in MiB).
TESLA_T4 = Gpu("Tesla T4", (7, 5), 15360 * 2**20)
RTX_5090 = Gpu("NVIDIA GeForce RTX 5090", (12, 0), 32607 * 2**20)
RTX_4090 = Gpu("NVIDIA GeForce RTX 4090", (8, 9), 24564 * 2**20, "00000000:01:00.0")
RTX_3060 = Gpu("NVIDIA GeForce RTX 3060", (8, 6), 12288 * 2**20, "00000000:02:00.0")
V100 = Gpu("Tesla V100-SXM2-16GB", (7, 0), 16384 * 2**20)
GTX_1080 = Gpu("NVIDIA GeForce GTX 1080", (6, 1), 8192 * 2**20)
H100 = Gpu("NVIDIA H100 80GB HBM3", (9, 0), 81559 * 2**20)


class _Memory:
    def __init__(self, total: int, used: int = 0):
        self.total, self.free, self.used = total, total - used, used


class _Pci:
    def __init__(self, bus: str):
        self.busId = bus


class RecordedNvml:
    """Answers pynvml's calls with one machine's recorded values (or its recorded init error)."""

    def __init__(self, driver: str = "", cuda_driver: int = 0, gpus: Iterable[Gpu] = (), init_error: int | None = None):
        self.driver, self.cuda_driver, self.gpus, self.init_error = driver, cuda_driver, list(gpus), init_error
        self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            import pynvml

            raise pynvml.NVMLError(self.init_error)  # pynvml maps the code to its real subclass

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda_driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Gpu:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: Gpu) -> str:
        return h.name

    def nvmlDeviceGetCudaComputeCapability(self, h: Gpu) -> tuple[int, int]:
        return h.capability

    def nvmlDeviceGetMemoryInfo(self, h: Gpu) -> _Memory:
        return _Memory(h.memory_bytes, h.used_bytes)

    def nvmlDeviceGetPciInfo(self, h: Gpu) -> _Pci:
        return _Pci(h.bus_id)


def no_driver() -> RecordedNvml:
    import pynvml

    return RecordedNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)


# --- a whole machine --------------------------------------------------------------------

@dataclass
class Machine:
    tmp: Path
    nvml: RecordedNvml = field(default_factory=no_driver)
    environ: dict[str, str] = field(default_factory=dict)
    system: str = "Linux"
    python_version: str = "3.11.7"
    tools: dict[str, str] = field(default_factory=lambda: {"gcc": "/usr/bin/gcc"})
    free_gib: float = 200.0
    extra_sites: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.site = Site(self.tmp / "prefix" / "lib" / "python3.11" / "site-packages")
        (self.tmp / "root").mkdir(exist_ok=True)

    def view(self) -> SystemView:
        prefix = str(self.tmp / "prefix")
        py = PythonInfo(version=self.python_version, implementation="cpython", executable=f"{prefix}/bin/python",
                        prefix=prefix, base_prefix="/usr", site_dirs=(str(self.site.root), *map(str, self.extra_sites)),
                        platform={"Linux": "linux", "Windows": "win32", "Darwin": "darwin"}[self.system],
                        machine="x86_64", system=self.system, release="6.8.0")
        tools = dict(self.tools)
        return SystemView(python=py, environ=dict(self.environ), nvml=lambda: read_nvml(self.nvml),
                          which=tools.get, disk_free=lambda _p: int(self.free_gib * 2**30),
                          home=str(self.tmp / "home"), cwd=str(self.tmp), sys_root=str(self.tmp / "root"))


@functools.lru_cache(maxsize=1)
def knowledge() -> Any:
    from doctor.api import load_knowledge

    return load_knowledge()


def scan(view: SystemView) -> dict[str, Any]:
    """Run the environment scan and the engine: {entry id: finding}."""
    from doctor.engine import evaluate, findings_from_observations
    from doctor.probes.env import collect_environment

    result = collect_environment(view)
    kb = knowledge()
    findings = evaluate(kb, result.facts) + findings_from_observations(kb, result.observations, result.facts)
    out: dict[str, Any] = {}
    for f in findings:
        out.setdefault(f.id, f)
    out["_facts"] = result.facts
    out["_all"] = findings
    return out


def write_script(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o755)
    return path
