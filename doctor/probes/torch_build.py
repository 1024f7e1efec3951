"""The torch build, and the native builds that must match it, read from installed files.

torch is never imported: `torch/version.py` is a generated file of plain assignments
(`cuda: Optional[str] = '12.8'`, `hip`, `xpu`), which is what `torch.version.cuda` returns.

Facts:
  torch.version          "2.8.0+cu128" (torch/version.py __version__, else the metadata version)
  torch.build            cpu | cuda | rocm | xpu
  torch.cuda_build       "12.8" (torch.version.cuda); torch.cuda_major 12 (int)
  torch.hip_build        ROCm/HIP version of a ROCm build
  torch.local            "cu128" / "cpu" / "rocm6.4" from the local version tag
  bnb.cuda_libs          "11.8, 12.8, 13.0": CUDA versions of the libbitsandbytes_cuda* files shipped
  bnb.has_cpu_lib        a libbitsandbytes_cpu library is shipped
  bnb.selected_lib       the CUDA library bitsandbytes would load for this torch ("12.8")
  bnb.cuda_lib_ok        False when no shipped library fits torch's CUDA (bnb falls back to CPU)
  bnb.cuda_lib_fallback  True when bnb loads a nearby minor version instead of an exact match
  xformers.built_for_torch  the torch version xformers' C++ extensions were compiled against
  triton.present         triton (or triton-windows) is installed
"""
from __future__ import annotations

import os
import re
from typing import Sequence

from doctor.facts import FactCollector, Facts
from doctor.probes.system import SystemView

_ASSIGN = re.compile(r"^(\w+)\s*(?::[^=]+)?=\s*(?:'([^']*)'|\"([^\"]*)\"|(None|True|False))\s*$", re.M)


def parse_version_file(text: str) -> dict[str, str | None]:
    """Plain `name = 'value'` / `name: Optional[str] = None` assignments of a generated version.py."""
    out: dict[str, str | None] = {}
    for m in _ASSIGN.finditer(text):
        name, single, double, const = m.groups()
        out[name] = single if single is not None else double if double is not None else \
            (None if const == "None" else const)
    return out


def torch_facts(version_py: str | None, metadata_version: str | None) -> Facts:
    """Pure: facts about the torch build from the text of torch/version.py."""
    fc = FactCollector("torch/version.py")
    if version_py is None and metadata_version is None:
        return fc.freeze()
    info = parse_version_file(version_py or "")
    version = info.get("__version__") or metadata_version
    fc.set("torch.version", version)
    if version and "+" in version:
        fc.set("torch.local", version.split("+", 1)[1])
    cuda, hip, xpu = info.get("cuda"), info.get("hip"), info.get("xpu")
    if version_py is None:  # metadata only (version.py missing): trust the local tag, if any
        local = (version or "").partition("+")[2]
        m = re.fullmatch(r"cu(\d+)(\d)", local)
        cuda = f"{m.group(1)}.{m.group(2)}" if m else None
        hip = local[4:] if local.startswith("rocm") else None
    if cuda:
        fc.set("torch.build", "cuda")
        fc.set("torch.cuda_build", cuda)
        try:
            fc.set("torch.cuda_major", int(cuda.split(".")[0]))
        except ValueError:
            pass
    elif hip:
        fc.set("torch.build", "rocm")
        fc.set("torch.hip_build", hip)
    elif xpu:
        fc.set("torch.build", "xpu")
    elif (version_py is not None and "cuda" in info) or (version or "").endswith("+cpu"):
        fc.set("torch.build", "cpu")  # version.py says `cuda = None` (a damaged file says nothing)
    return fc.freeze()


_BNB_LIB = re.compile(r"^libbitsandbytes_(cuda|rocm|cpu)(\d*)[^.]*\.(so|dll|dylib)$")


def bnb_libraries(names: Sequence[str]) -> tuple[dict[tuple[int, int], str], bool]:
    """CUDA versions of the shipped libbitsandbytes_cudaXYZ files, and whether a CPU one ships.

    Named as bitsandbytes/cextension.py names them: `cuda128` -> (12, 8), two-digit major.
    """
    cuda: dict[tuple[int, int], str] = {}
    cpu = False
    for name in names:
        m = _BNB_LIB.match(name)
        if not m:
            continue
        kind, digits = m.group(1), m.group(2)
        if kind == "cpu":
            cpu = True
        elif kind == "cuda" and len(digits) >= 3:
            cuda[(int(digits[:2]), int(digits[2:]))] = name
    return cuda, cpu


def select_bnb_library(available: dict[tuple[int, int], str], cuda_build: str, bnb_version: str | None,
                       override: str | None) -> tuple[tuple[int, int] | None, bool]:
    """Which CUDA library bitsandbytes loads for torch's CUDA, and whether that is a fallback.

    Mirrors bitsandbytes/cextension.py `get_cuda_bnb_library_path`: BNB_CUDA_VERSION forces a
    version; from 0.50.0 on, a missing exact match falls back within the same CUDA major (highest
    lower minor, else lowest higher minor); before 0.50.0 only the exact match loads.
    Returns (None, False) when nothing fits: bitsandbytes then runs without CUDA.
    """
    if override and override.isdigit() and len(override) >= 3:
        want = (int(override[:2]), int(override[2:]))
        return (want if want in available else None), False
    try:
        major, minor = (int(x) for x in cuda_build.split(".")[:2])
    except ValueError:
        return None, False
    runtime = (major, minor)
    if runtime in available:
        return runtime, False
    if not _bnb_has_fallback(bnb_version):
        return None, False
    lower = [v for v in available if v[0] == major and v < runtime]
    if lower:
        return max(lower), True
    higher = [v for v in available if v[0] == major and v > runtime]
    if higher:
        return min(higher), True
    return None, False


def _bnb_has_fallback(version: str | None) -> bool:
    if not version:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version("0.50.0")
    except InvalidVersion:
        return True


def bnb_facts(lib_names: Sequence[str] | None, bnb_version: str | None, torch_build: str | None,
              cuda_build: str | None, override: str | None) -> Facts:
    """Pure: what bitsandbytes would load, given its shipped files and torch's build."""
    fc = FactCollector("bitsandbytes package files")
    if lib_names is None:
        return fc.freeze()
    available, cpu = bnb_libraries(lib_names)
    fc.set("bnb.cuda_libs", ", ".join(f"{a}.{b}" for a, b in sorted(available)) or "none")
    fc.set("bnb.has_cpu_lib", cpu)
    if override:
        fc.set("bnb.override", override)
    if torch_build == "cuda" and cuda_build:
        chosen, fallback = select_bnb_library(available, cuda_build, bnb_version, override)
        fc.set("bnb.cuda_lib_ok", chosen is not None)
        if chosen is not None:
            fc.set("bnb.selected_lib", f"{chosen[0]}.{chosen[1]}")
            fc.set("bnb.cuda_lib_fallback", fallback)
    return fc.freeze()


def xformers_facts(cpp_lib_json: str | None) -> Facts:
    """xformers/cpp_lib.json records the torch its C++/CUDA extensions were compiled with."""
    fc = FactCollector("xformers/cpp_lib.json")
    if not cpp_lib_json:
        return fc.freeze()
    import json

    try:
        data = json.loads(cpp_lib_json)
    except ValueError:
        return fc.freeze()
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, dict):
        fc.set("xformers.built_for_torch", version.get("torch"))
        cuda = version.get("cuda")
        if isinstance(cuda, int) and cuda > 0:  # 1208 = nvcc 12.8 (the toolkit, not torch's CUDA)
            fc.set("xformers.built_for_cuda", f"{cuda // 100}.{cuda % 100}")
    return fc.freeze()


def collect_torch_build(view: SystemView, sites: dict[str, str], versions: dict[str, str]) -> Facts:
    """Read torch's, bitsandbytes' and xformers' build files from the site dirs that hold them.

    `sites` maps a distribution key to the site dir holding its imported copy; `versions` maps
    keys to installed versions.
    """
    torch_site = sites.get("torch")
    version_py = view.read_text(os.path.join(torch_site, "torch", "version.py")) if torch_site else None
    facts = torch_facts(version_py, versions.get("torch"))
    bnb_site = sites.get("bitsandbytes")
    names = view.list_dir(os.path.join(bnb_site, "bitsandbytes")) if bnb_site else None
    facts = facts.merged(bnb_facts(names, versions.get("bitsandbytes"), facts.get("torch.build"),
                                   facts.get("torch.cuda_build"), view.environ.get("BNB_CUDA_VERSION")))
    xf_site = sites.get("xformers")
    if xf_site:
        facts = facts.merged(xformers_facts(view.read_text(os.path.join(xf_site, "xformers", "cpp_lib.json"))))
    fc = FactCollector("package metadata")
    fc.set("triton.present", "triton" in versions or "triton_windows" in versions)
    return facts.merged(fc.freeze())
