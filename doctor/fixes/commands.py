"""Install commands fitted to the machine they are shown on.

Knowledge entries write commands once, as `pip install ...` or `uv pip install ...`. Shown as
written they can be wrong here: uv where uv is not installed, a bare `pip` that installs into
another environment than the one scanned, CUDA packages on a machine without a GPU, the
doctor's extras from PyPI when the doctor was installed from a local checkout. `fit_findings`
rewrites each command for the scanned interpreter, the installer that is present and the
GPU (or its absence); a command left with nothing to install is dropped, with its fix.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlparse

from doctor.findings import Finding, Fix

# Left out of install commands on a machine without a GPU: unsloth_zoo's CPU path
# (unsloth_zoo/cpu/, 2026.10.9) imports none of them, and loads 16-bit weights where
# bitsandbytes is missing (unsloth_zoo/cpu/loader.py:210-214).
GPU_ONLY = ("triton", "bitsandbytes", "xformers", "flash-attn", "flash_attn", "vllm")
# PyTorch's wheel indexes, by the CUDA version they are built for (download.pytorch.org/whl/<tag>).
TORCH_CUDA_TAGS = (("11.8", "cu118"), ("12.1", "cu121"), ("12.4", "cu124"), ("12.6", "cu126"),
                   ("12.8", "cu128"), ("12.9", "cu129"), ("13.0", "cu130"))
TORCH_INDEX = "https://download.pytorch.org/whl/"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_OWN = "unsloth-doctor"


@dataclass(frozen=True)
class Machine:
    """What decides how a command is written here."""

    python: str | None = None      # the scanned interpreter (None: unknown, plain `python`)
    uv: bool = False               # uv is on PATH
    gpu: bool | None = None        # an NVIDIA or AMD GPU is there; None: not examined
    driver_cuda: str | None = None # the highest CUDA the NVIDIA driver supports, "12.8"
    doctor_python: str | None = None   # the doctor's own interpreter
    doctor_source: str | None = None   # the local folder the doctor was installed from

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any], doctor_python: str | None = None,
                   doctor_source: str | None = None) -> "Machine":
        gpu: bool | None = None
        if "gpu.count" in facts:
            gpu = bool(facts.get("gpu.count")) or bool(facts.get("gpu.amd_kfd"))
        return cls(python=facts.get("python.executable"), uv=bool(facts.get("path.uv")), gpu=gpu,
                   driver_cuda=facts.get("nvml.driver_cuda"), doctor_python=doctor_python,
                   doctor_source=doctor_source)

    def torch_tag(self) -> str | None:
        """The PyTorch index for this machine: the CPU build without a GPU, else the newest
        CUDA build the driver runs; None when that is unknown."""
        if self.gpu is False:
            return "cpu"
        if not self.driver_cuda:
            return None
        have = _version(self.driver_cuda)
        fitting = [tag for version, tag in TORCH_CUDA_TAGS if _version(version) <= have]
        return fitting[-1] if fitting else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


def doctor_source() -> str | None:
    """The local folder the doctor was installed from (PEP 610 direct_url.json), if any."""
    from importlib import metadata

    try:
        text = metadata.distribution(_OWN).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        url = json.loads(text or "null")["url"]
    except (ValueError, KeyError, TypeError):
        return None
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def fit_findings(findings: Iterable[Finding], machine: Machine) -> list[Finding]:
    out = []
    for finding in findings:
        fixes = tuple(f for f in (fit_fix(fix, machine) for fix in finding.fixes) if f is not None)
        out.append(finding if fixes == finding.fixes else dataclasses.replace(finding, fixes=fixes))
    return out


def fit_fix(fix: Fix, machine: Machine) -> Fix | None:
    if not fix.command:
        return fix
    command = fit_command(fix.command, machine)
    if command == fix.command:
        return fix
    if command is None:
        return None
    left_out = gpu_only_in(fix.command) if machine.gpu is False else []
    text = fix.text + (f" ({' and '.join(left_out)} left out: there is no GPU here, and Unsloth's CPU path "
                       f"runs without {'it' if len(left_out) == 1 else 'them'})" if left_out else "")
    return dataclasses.replace(fix, command=command, text=text)


def gpu_only_in(command: str) -> list[str]:
    """The GPU-only packages a pip install command names."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    parsed = _pip_words(words)
    if parsed is None or parsed[0] != "install":
        return []
    return [name for name in (_requirement_name(a) for a in parsed[1]) if name in GPU_ONLY]


def fit_command(command: str, machine: Machine) -> str | None:
    """The command as it should be typed here; None when nothing of it applies here."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if any(w in ("&&", "||", "|", ";") for w in words):
        return command
    if words[:2] == ["uv", "venv"]:
        return command if machine.uv else _venv_without_uv(words)
    parsed = _pip_words(words)
    if parsed is None:
        return command
    verb, args = parsed
    if not machine.uv and machine.torch_tag() is None and any(a.startswith("--torch-backend") for a in args):
        return command   # uv picks the build from the driver; without knowing it, pip can't be told
    args = _fit_torch_index(args, machine)
    if machine.gpu is False and verb == "install":
        args = [a for a in args if _requirement_name(a) not in GPU_ONLY]
    if not [a for a in args if not a.startswith("-")] and not _has_requirement_file(args):
        return None
    python = machine.python
    own = [a for a in args if _requirement_name(a) == _OWN]
    if own:   # the doctor's own extras go into the doctor's interpreter, from where it came
        python = machine.doctor_python or python
        if machine.doctor_source:
            args = [_local_extra(a, machine.doctor_source) if a in own else a for a in args]
    return " ".join(_shown(w) for w in _installer(verb, python, machine.uv) + _for_installer(args, machine.uv))


def _pip_words(words: list[str]) -> tuple[str, list[str]] | None:
    """(install|uninstall, the rest) of a pip or uv pip command; None for any other command."""
    for prefix in (["pip"], ["pip3"], ["python", "-m", "pip"], ["python3", "-m", "pip"], ["uv", "pip"]):
        if words[:len(prefix)] == prefix and len(words) > len(prefix):
            verb = words[len(prefix)]
            if verb in ("install", "uninstall"):
                return verb, words[len(prefix) + 1:]
    return None


def _installer(verb: str, python: str | None, uv: bool) -> list[str]:
    if uv:
        return ["uv", "pip", verb, *(["--python", python] if python else [])]
    return [python or "python", "-m", "pip", verb]


# pip's spelling -> uv's, and back (uv pip reads most of pip's flags, not these)
_UV_FLAGS = {"--force-reinstall": "--reinstall", "--no-cache-dir": "--no-cache"}


def _for_installer(args: list[str], uv: bool) -> list[str]:
    table = _UV_FLAGS if uv else {v: k for k, v in _UV_FLAGS.items()}
    out = [table.get(a, a) for a in args]
    # uv never asks before uninstalling, so pip's "yes" has no place there
    return [a for a in out if a not in ("-y", "--yes")] if uv else out


TORCH_INDEX_PACKAGES = frozenset({"torch", "torchvision", "torchaudio", "triton", "pytorch-triton"})


def _fit_torch_index(args: list[str], machine: Machine) -> list[str]:
    """`--torch-backend=auto` is uv's; pip gets the PyTorch index for this machine instead. An
    explicit CUDA index on a machine without a GPU becomes the CPU one."""
    tag = machine.torch_tag()
    # the PyTorch index holds torch and its kin only: a command that installs anything else
    # (unsloth) keeps PyPI and adds the index
    names = {n for n in map(_requirement_name, args) if n and n not in ("install", "pip", "uv")}
    flag = "--index-url" if names and names <= TORCH_INDEX_PACKAGES else "--extra-index-url"
    out: list[str] = []
    for arg in args:
        if arg.startswith("--torch-backend") and not machine.uv:
            if tag:
                out += [flag, TORCH_INDEX + tag]
            continue
        if arg.startswith(TORCH_INDEX) and machine.gpu is False:
            arg = TORCH_INDEX + "cpu"
        out.append(arg)
    if machine.uv and machine.gpu is False:
        out = ["--torch-backend=cpu" if a.startswith("--torch-backend") else a for a in out]
    return out


def _requirement_name(arg: str) -> str | None:
    if arg.startswith("-"):
        return None
    match = _NAME.match(arg)
    return match.group(1).lower().replace("_", "-") if match else None


def _has_requirement_file(args: list[str]) -> bool:
    return any(a in ("-r", "--requirement", "-e", "--editable", ".") for a in args)


def _local_extra(arg: str, source: str) -> str:
    """'unsloth-doctor[data]' -> '/the/checkout[data]'."""
    extras = arg[len(_OWN):].split(";")[0]
    extras = extras if extras.startswith("[") else ""
    return f"{source}{extras}"


def _venv_without_uv(words: list[str]) -> str:
    """`uv venv NAME --python 3.13` -> `python3.13 -m venv NAME`."""
    name, version, rest = ".venv", None, list(words[2:])
    while rest:
        word = rest.pop(0)
        if word == "--python" and rest:
            version = rest.pop(0)
        elif word.startswith("--python="):
            version = word.split("=", 1)[1]
        elif not word.startswith("-"):
            name = word
    python = f"python{version}" if version and re.fullmatch(r"\d+(\.\d+)?", version) else (version or "python3")
    return " ".join(_shown(w) for w in (python, "-m", "venv", name))


def _shown(word: str) -> str:
    """Quoted only where a shell needs it, in double quotes as the knowledge base writes them."""
    # an option's `=` is plain; a requirement's (`datasets==4.3.0`) is quoted, as pip's docs do
    if re.fullmatch(r"[A-Za-z0-9_./:@+-]+", word) or re.fullmatch(r"--?[A-Za-z0-9-]+=[A-Za-z0-9_./:@+,-]+", word):
        return word
    if '"' not in word and "$" not in word and "`" not in word and "\\" not in word:
        return f'"{word}"'
    return shlex.quote(word)
