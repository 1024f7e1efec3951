"""The one view of the machine that every environment probe reads through.

Probes never call `os.environ`, `shutil.which`, NVML or the file system directly: they ask a
`SystemView`. `SystemView.live()` reads this machine; tests build views over a temporary
site-packages tree with a recorded NVML snapshot (a T4 with an old driver, a Blackwell card,
no driver at all), so every rule is testable without a GPU.

Nothing here imports torch, unsloth or any other heavy package; NVML (`pynvml` from
nvidia-ml-py) is imported lazily and any failure to load or initialise it is data.
"""
from __future__ import annotations

import functools

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class PythonInfo:
    """The interpreter whose environment is being examined (not necessarily ours)."""

    version: str                 # "3.11.7"
    implementation: str          # "cpython", "pypy"
    executable: str
    prefix: str
    base_prefix: str
    site_dirs: tuple[str, ...]   # sys.path entries that exist, in import order
    platform: str = "linux"      # sys.platform
    machine: str = "x86_64"      # platform.machine()
    system: str = "Linux"        # platform.system()
    release: str = ""            # platform.release()


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    capability: tuple[int, int] | None
    memory_total_bytes: int | None
    pci_bus_id: str | None = None
    memory_used_bytes: int | None = None


@dataclass(frozen=True)
class NvmlSnapshot:
    """What NVML said, or why it could not say anything (`error`)."""

    error: str | None = None
    driver_version: str | None = None     # "535.104.05"
    cuda_driver_version: int | None = None  # nvmlSystemGetCudaDriverVersion: 12020 = CUDA 12.2
    gpus: tuple[GpuInfo, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def _as_str(value: Any) -> str:
    # Old pynvml returned bytes; nvidia-ml-py >= 11.515 returns str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_nvml(nvml: Any) -> NvmlSnapshot:
    """Query an NVML module (pynvml's API) once; every failure becomes `error`, never raises."""
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return NvmlSnapshot(error=f"{type(exc).__name__}: {exc}")
    try:
        driver = _as_str(nvml.nvmlSystemGetDriverVersion())
        try:
            cuda_driver = int(nvml.nvmlSystemGetCudaDriverVersion())
        except Exception:
            cuda_driver = None
        gpus = []
        for i in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(_read_gpu(nvml, i, handle))
        return NvmlSnapshot(driver_version=driver, cuda_driver_version=cuda_driver, gpus=tuple(gpus))
    except Exception as exc:
        return NvmlSnapshot(error=f"{type(exc).__name__}: {exc}")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _read_gpu(nvml: Any, index: int, handle: Any) -> GpuInfo:
    name = _as_str(nvml.nvmlDeviceGetName(handle))
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        capability: tuple[int, int] | None = (int(major), int(minor))
    except Exception:
        capability = None
    try:
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        memory: int | None = int(info.total)
        used: int | None = int(info.used)
    except Exception:
        memory = used = None
    try:
        bus: str | None = _as_str(nvml.nvmlDeviceGetPciInfo(handle).busId)
    except Exception:
        bus = None
    return GpuInfo(index=index, name=name, capability=capability, memory_total_bytes=memory, pci_bus_id=bus,
                   memory_used_bytes=used)


def live_nvml() -> NvmlSnapshot:
    # No NVIDIA kernel module on native Linux: NVML can only fail, so skip importing it.
    # (/proc/driver is not namespaced, so containers with GPUs see it too; WSL has no such file.)
    if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia") \
            and not os.path.exists("/dev/dxg"):
        return NvmlSnapshot(error="DriverNotLoaded: no NVIDIA kernel driver (/proc/driver/nvidia is absent)")
    try:
        import pynvml  # nvidia-ml-py; lazily, so a missing or broken one is a fact
    except Exception as exc:
        return NvmlSnapshot(error=f"pynvml not importable: {type(exc).__name__}: {exc}")
    return read_nvml(pynvml)


def _which(name: str, path: str | None = None) -> str | None:
    """shutil.which without importing shutil (and with it lzma, bz2) on POSIX."""
    if os.name != "posix":
        import shutil

        return shutil.which(name, path=path)
    for folder in (path if path is not None else os.environ.get("PATH", os.defpath)).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _disk_free(path: str) -> int | None:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    probe = os.path.abspath(os.path.expanduser(path))
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    try:
        st = os.statvfs(probe)
        return st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        try:
            import shutil

            return shutil.disk_usage(probe).free
        except OSError:
            return None


def _read_text(path: str, limit: int | None = None) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read() if limit is None else fh.read(limit)
    except (OSError, ValueError):   # ValueError: a NUL in a path read from a damaged RECORD
        return None


def _list_dir(path: str) -> list[str] | None:
    try:
        return os.listdir(path)
    except (OSError, ValueError):   # ValueError: a NUL in a path read from a damaged RECORD
        return None


def _uname() -> tuple[str, str, str]:
    """(system, release, machine); os.uname is free where it exists, `platform` costs an import."""
    if hasattr(os, "uname"):
        u = os.uname()
        return u.sysname, u.release, u.machine
    import platform

    return platform.system(), platform.release(), platform.machine()


def this_python() -> PythonInfo:
    system, release, machine = _uname()
    impl = sys.implementation.name
    site_dirs = tuple(p for p in sys.path if p and os.path.isdir(p))
    return PythonInfo(
        version=".".join(str(x) for x in sys.version_info[:3]),
        implementation=impl,
        executable=sys.executable,
        prefix=sys.prefix,
        base_prefix=getattr(sys, "base_prefix", sys.prefix),
        site_dirs=site_dirs,
        platform=sys.platform,
        machine=machine,
        system=system,
        release=release,
    )


_CHILD_INFO = (
    "import sys,os,json,platform;"
    "print(json.dumps({'version':'.'.join(map(str,sys.version_info[:3])),"
    "'implementation':sys.implementation.name,'executable':sys.executable,'prefix':sys.prefix,"
    "'base_prefix':getattr(sys,'base_prefix',sys.prefix),"
    "'site_dirs':[p for p in sys.path if p and os.path.isdir(p)],'platform':sys.platform,"
    "'machine':platform.machine(),'system':platform.system(),'release':platform.release()}))"
)


def absolute_python(raw: str, cwd: str | None = None, path: str | None = None) -> str:
    """`--python`: `raw` as an absolute path (symlinks kept): relative to `cwd`, or found on PATH when it is a
    bare name (else in `cwd`, since the option names a path). A bare name found in neither comes
    back as it is, so starting it fails as usual."""
    name = os.path.expanduser(raw)
    here = os.path.join(cwd or os.getcwd(), name)
    if os.path.dirname(name):
        return os.path.abspath(here)
    found = _which(name, path)
    if found:
        return os.path.abspath(found)
    return os.path.abspath(here) if os.path.lexists(here) else name



class NotAPython(ValueError):
    """The interpreter to examine could not be started or did not answer."""


@dataclass(frozen=True)
class Bounded:
    """What a child process printed, and how it ended (returncode None: killed at the time limit)."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


def run_bounded(cmd: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None,
                cwd: str | None = None, merge_stderr: bool = False) -> Bounded:
    """Run a child as the leader of a new process group; at the time limit, or when we are
    interrupted (Ctrl-C, SIGTERM), kill the whole group, so nothing it started (a subprocess of
    a hung import, a shell's background job) outlives it. Being in a session of its own, the
    child never gets the terminal's Ctrl-C: ending it is our job."""
    import subprocess

    from doctor.interrupts import deferred, end_process_group

    proc = None
    finished = False
    try:
        with deferred():   # a signal now would leave a started child unrecorded
            proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                    start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            end_process_group(proc)
            out, err = proc.communicate()
            timed_out = True
        finished = True
    finally:
        if proc is not None and not finished:
            end_process_group(proc)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    decode = lambda b: (b or b"").decode("utf-8", "replace")  # noqa: E731
    return Bounded(None if timed_out else proc.returncode, decode(out), decode(err), timed_out)


@functools.lru_cache(maxsize=8)
def other_python(executable: str, timeout_s: float = 20.0) -> PythonInfo:
    """Describe another interpreter (the user's training env) by asking it; it imports nothing heavy.

    Remembered per process: `scan --python` checks the interpreter up front and the probes ask
    again, and the answer (a frozen PythonInfo) cannot change in between."""
    import json
    import tempfile

    try:
        # run from an empty folder so the cwd adds nothing to sys.path; PYTHONPATH and the user
        # site stay, as they do when the user trains
        with tempfile.TemporaryDirectory(prefix="unsloth-doctor-") as cwd:
            done = run_bounded([executable, "-c", _CHILD_INFO], timeout_s, cwd=cwd)
        if done.timed_out:
            raise TimeoutError(f"no answer within {timeout_s:g} s")
        if done.returncode != 0:  # say why in one line: the last thing it printed
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise ValueError(f"exit code {done.returncode}: {last[0][:120]}")
        try:
            data = json.loads(done.stdout)
        except ValueError:
            raise ValueError("it did not answer like Python") from None
    except (OSError, ValueError) as exc:
        raise NotAPython(f"{executable} does not run as a Python interpreter: {exc}") from None
    data["site_dirs"] = tuple(data["site_dirs"])
    return PythonInfo(**data)


@dataclass
class SystemView:
    """Everything the environment probes may read. Replace any field to present another machine."""

    python: PythonInfo
    environ: Mapping[str, str]
    nvml: Callable[[], NvmlSnapshot] = live_nvml
    which: Callable[[str], str | None] = _which
    disk_free: Callable[[str], int | None] = _disk_free
    read_text: Callable[[str], str | None] = _read_text
    list_dir: Callable[[str], list[str] | None] = _list_dir
    exists: Callable[[str], bool] = os.path.exists
    home: str = field(default_factory=lambda: os.path.expanduser("~"))
    sys_root: str = "/"   # where /proc and /dev are read from; a test view points it at a tmp dir
    cwd: str = field(default_factory=os.getcwd)
    _nvml_cache: NvmlSnapshot | None = field(default=None, repr=False)

    @classmethod
    def live(cls, python: str | None = None) -> "SystemView":
        if python is None:
            info = this_python()
        else:
            info = other_python(absolute_python(python))  # it runs from an empty folder
        return cls(python=info, environ=dict(os.environ))

    def sys_path(self, path: str) -> str:
        return os.path.join(self.sys_root, path.lstrip("/"))

    def nvml_snapshot(self) -> NvmlSnapshot:
        if self._nvml_cache is None:
            self._nvml_cache = self.nvml()
        return self._nvml_cache

    def which_on_path(self, name: str) -> str | None:
        # PATH from the view's environment, so a test view's PATH is honoured.
        path = self.environ.get("PATH")
        if self.which is _which:
            return _which(name, path)
        return self.which(name)
