"""Installed distributions, read from their metadata files, and their declared requirements.

Like `pip check`, but explained: every `Requires-Dist` of the packages that make up an Unsloth
stack is evaluated (markers for the examined interpreter, not ours) against what is installed.
The requirements come from the installed METADATA files, never from a copy in this code.

Facts:
  pkg.<key>.version    version of the first installed copy on sys.path (key: name lowercased,
                       runs of `-_.` turned into `_`, e.g. pkg.unsloth_zoo.version)
  pkg.<key>.local      the local part of the version (`cu128` of `2.8.0+cu128`), when present
  pkg.count            number of distinct installed distributions
  pkg.duplicates       "name (v1 in DIR, v2 in DIR); ..." for names installed more than once
  pkg.broken           names whose RECORD lists importable modules (.py, .so) that are gone
  pkg.broken_files     those names with the missing modules, a few of each
  pkg.missing_data     names whose RECORD lists only other files that are gone (data, docs)
  pkg.leftovers        `~name` folders left in site-packages by an interrupted pip
Observations, located at the METADATA line that declares the requirement:
  ENV-REQUIREMENT-UNMET     an installed version outside the declared range (one per dependency)
  ENV-TORCH-PIN-MISMATCH    the same, for torchvision/torchaudio/xformers pinned to another torch
  ENV-REQUIREMENT-MISSING   declared but not installed (one per declaring package)
  ENV-PYTHON-UNSUPPORTED    the interpreter is outside a package's Requires-Python
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from doctor.facts import FactCollector, Facts
from doctor.findings import Evidence, Fix, Location, Observation
from doctor.probes.system import PythonInfo, SystemView

# Packages whose declared requirements we check: the Unsloth stack and the native builds
# that pin torch. Everything else is only listed.
CHECKED = ("unsloth", "unsloth_zoo", "trl", "peft", "transformers", "accelerate", "datasets",
           "torchvision", "torchaudio", "xformers", "bitsandbytes", "torchao", "vllm", "tokenizers")
# Compiled torch extensions that pin one exact torch: a mismatch means their operators don't load.
TORCH_PINNED = ("torchvision", "torchaudio", "xformers")
# Packages whose files we check exist (metadata without files = a half-removed install).
FILE_CHECKED = ("torch", "triton", "bitsandbytes", "xformers", "torchvision") + CHECKED[:6]

_SEP = re.compile(r"[-_.]+")


def dist_key(name: str) -> str:
    return _SEP.sub("_", name).lower()


@dataclass(frozen=True)
class Dist:
    name: str
    key: str
    version: str
    meta_dir: str    # the .dist-info / .egg-info folder
    site: str


@dataclass(frozen=True)
class DistScan:
    dists: dict[str, Dist]                 # key -> first copy on sys.path (the one imported)
    all_copies: dict[str, list[Dist]]
    leftovers: list[str]


def _name_version_from_dir(entry: str) -> tuple[str, str] | None:
    stem = entry.rsplit(".", 1)[0]
    parts = stem.split("-")
    if len(parts) >= 2 and parts[1][:1].isdigit():
        return parts[0], parts[1]
    return None


def read_headers(text: str) -> list[tuple[int, str, str]]:
    """(line number, key, value) of each header of an email-style METADATA/PKG-INFO file."""
    out: list[tuple[int, str, str]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            break
        if line[:1] in " \t":
            continue  # continuation (e.g. a folded Description)
        key, sep, value = line.partition(":")
        if sep:
            out.append((lineno, key.strip(), value.strip()))
    return out


def _metadata_file(meta_dir: str) -> str:
    return os.path.join(meta_dir, "PKG-INFO" if meta_dir.endswith(".egg-info") else "METADATA")


def scan_distributions(view: SystemView) -> DistScan:
    """One pass over every site dir: cheap (folder names), metadata read only where needed."""
    first: dict[str, Dist] = {}
    copies: dict[str, list[Dist]] = {}
    leftovers: list[str] = []
    seen_sites: set[str] = set()
    for site in view.python.site_dirs:
        real = os.path.realpath(site)
        if real in seen_sites:
            continue
        seen_sites.add(real)
        for entry in sorted(view.list_dir(site) or ()):
            if entry.startswith("~") and len(entry) > 1:
                leftovers.append(os.path.join(site, entry))
                continue
            if not (entry.endswith(".dist-info") or entry.endswith(".egg-info")):
                continue
            meta_dir = os.path.join(site, entry)
            nv = _name_version_from_dir(entry)
            if nv is None:  # e.g. `foo.egg-info` from `setup.py develop`: read the file
                headers = dict((k, v) for _, k, v in read_headers(view.read_text(_metadata_file(meta_dir)) or ""))
                if "Name" not in headers:
                    continue
                nv = (headers["Name"], headers.get("Version", "0"))
            dist = Dist(name=nv[0], key=dist_key(nv[0]), version=nv[1], meta_dir=meta_dir, site=site)
            copies.setdefault(dist.key, []).append(dist)
            first.setdefault(dist.key, dist)
    return DistScan(dists=first, all_copies=copies, leftovers=leftovers)


# Files Python imports: one of these gone breaks (part of) the package's import.
MODULE_SUFFIXES = (".py", ".so", ".pyd")


@dataclass(frozen=True)
class MissingFiles:
    """Files a distribution's RECORD lists that are gone, split by what they break."""

    name: str
    modules: tuple[str, ...]   # its importable code (.py, .so, .pyd)
    others: tuple[str, ...]    # data, docs, stubs, licences: the package may still import

    def describe(self, files: tuple[str, ...], shown: int = 3) -> str:
        more = f" and {len(files) - shown} more" if len(files) > shown else ""
        return f"{self.name} ({', '.join(files[:shown])}{more})"


# RECORD entries checked one by one before a full check (spread over the file, plus every
# top-level package's __init__.py): torch lists 14,600 files, and listing all their folders
# costs about 100 ms per scan; the sample costs a few.
RECORD_SAMPLE = 64


def missing_files(view: SystemView, dist: Dist) -> MissingFiles | None:
    """The files RECORD lists that no longer exist; None when there is no RECORD or none is
    missing. A sample is checked first; when any of it is gone, every entry is, a folder
    listing at a time, so a slimmed install that dropped docs is told apart from one whose
    modules are gone, and the missing files are named."""
    record = view.read_text(os.path.join(dist.meta_dir, "RECORD"))
    if not record:
        return None
    meta_name = os.path.basename(dist.meta_dir)

    def listed(lines: list[str]) -> list[str]:
        return [path for path in (line.split(",", 1)[0] for line in lines)
                if path and not path.startswith("..") and not path.startswith(meta_name)
                and "__pycache__" not in path and not os.path.isabs(path)]
    lines = record.split("\n")
    sample = listed(lines[::max(1, len(lines) // RECORD_SAMPLE)])
    tops = {p.split("/", 1)[0] for p in sample if "/" in p}
    # each top-level package's __init__.py, the file whose loss breaks `import` itself
    sample += [init for init in (f"{top}/__init__.py" for top in sorted(tops))
               if record.startswith(init + ",") or f"\n{init}," in record]
    if all(view.exists(os.path.join(dist.site, p)) for p in sample):
        return None
    paths = listed(lines)
    by_folder: dict[str, list[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")   # RECORD separates with "/" on every system
        by_folder.setdefault(folder, []).append(name)
    modules: list[str] = []
    others: list[str] = []
    for folder, names in by_folder.items():
        present = set(view.list_dir(os.path.join(dist.site, folder) if folder else dist.site) or ())
        for name in names:
            if name not in present:
                path = f"{folder}/{name}" if folder else name
                (modules if name.endswith(MODULE_SUFFIXES) else others).append(path)
    if not (modules or others):
        return None
    return MissingFiles(dist.name, tuple(modules), tuple(others))


def marker_environment(py: PythonInfo) -> dict[str, str]:
    """PEP 508 marker variables for the examined interpreter."""
    impl_name = {"cpython": "CPython", "pypy": "PyPy"}.get(py.implementation, py.implementation)
    return {
        "implementation_name": py.implementation,
        "implementation_version": py.version,
        "os_name": "nt" if py.platform.startswith("win") else "posix",
        "platform_machine": py.machine,
        "platform_release": py.release,
        "platform_system": py.system,
        "platform_version": "",
        "python_full_version": py.version,
        "platform_python_implementation": impl_name,
        "python_version": ".".join(py.version.split(".")[:2]),
        "sys_platform": py.platform,
        "extra": "",
    }


@dataclass(frozen=True)
class Declared:
    """One package's declared requirements, with the METADATA line of each."""

    package: str
    version: str
    requires: tuple[tuple[int, str], ...]       # (line, requirement string)
    requires_python: tuple[int, str] | None
    path: str


def declared_from_metadata(text: str, path: str, fallback_name: str = "", fallback_version: str = "") -> Declared:
    name, version, reqs, rp = fallback_name, fallback_version, [], None
    for line, key, value in read_headers(text):
        low = key.lower()
        if low == "name":
            name = value
        elif low == "version":
            version = value
        elif low == "requires-dist":
            reqs.append((line, value))
        elif low == "requires-python":
            rp = (line, value)
    return Declared(package=name, version=version, requires=tuple(reqs), requires_python=rp, path=path)


def _only_for_an_extra(text: str) -> bool:
    """`...; extra == "x"` (and no `or`): never a base requirement, so skip parsing it.

    unsloth's METADATA has ~700 such lines against ~35 base ones; parsing them all is most of
    the cost of this check."""
    _, sep, marker = text.partition(";")
    return bool(sep) and "extra" in marker and " or " not in marker


def check_requirements(declared: Iterable[Declared], installed: Mapping[str, str],
                       env: Mapping[str, str], python_version: str) -> list[Observation]:
    """Evaluate requirements against installed versions (key -> version). Pure."""
    declared = [d for d in declared if d.requires or d.requires_python]
    if not declared:
        return []
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    out: list[Observation] = []
    for decl in declared:
        loc_base = decl.path
        if decl.requires_python:
            line, spec_text = decl.requires_python
            try:
                ok = SpecifierSet(spec_text).contains(Version(python_version), prereleases=True)
            except (InvalidSpecifier, InvalidVersion):
                ok = True
            if not ok:
                out.append(Observation(
                    entry_id="ENV-PYTHON-UNSUPPORTED", location=Location(loc_base, line, 1),
                    values={"package": decl.package, "package_version": decl.version,
                            "requires_python": spec_text, "python": python_version},
                    evidence=(Evidence("fact", "python.version", python_version),)))
        seen: set[str] = set()
        missing: list[tuple[int, str, str]] = []   # (line, name, requirement) not installed
        for line, text in decl.requires:
            if _only_for_an_extra(text):
                continue
            req = parse_requirement(text)
            if req is None or (req.marker and marker_holds(req.marker, env) is not True):
                continue  # unparsable, or a marker false (or unknown) for this interpreter
            key = dist_key(req.name)
            if key in seen:  # one finding per dependency, even when declared twice with markers
                continue
            have = installed.get(key)
            values = {"package": decl.package, "package_version": decl.version, "dependency": req.name,
                      "specifier": req.specifier or "(any version)", "requirement": text.split(";")[0].strip()}
            loc = Location(loc_base, line, 1)
            if have is None:
                seen.add(key)
                missing.append((line, req.name, values["requirement"]))
                continue
            try:
                ok = not req.specifier or SpecifierSet(req.specifier).contains(Version(have), prereleases=True)
            except (InvalidSpecifier, InvalidVersion):
                continue
            if not ok:
                seen.add(key)
                entry = "ENV-TORCH-PIN-MISMATCH" if key == "torch" and dist_key(decl.package) in TORCH_PINNED \
                    else "ENV-REQUIREMENT-UNMET"
                out.append(Observation(entry, loc, {**values, "installed": have},
                                       evidence=(Evidence("fact", f"pkg.{key}.version", have),)))
        if missing:
            out.append(_missing_observation(decl, missing))
    return out


def _missing_observation(decl: Declared, missing: list[tuple[int, str, str]]) -> Observation:
    """One observation per declaring package: a `--no-deps` install misses many at once.

    Builds pinned to one torch (torchvision, xformers...) are kept out of the plain `pip install`
    line: pip would pick their newest release and replace torch to satisfy its pin."""
    plain = [req for _, name, req in missing if dist_key(name) not in TORCH_PINNED]
    pinned = [name for _, name, _ in missing if dist_key(name) in TORCH_PINNED]
    note = (f"{' and '.join(pinned)} must be built for the installed torch: install "
            f"{'them' if len(pinned) > 1 else 'it'} from torch's own index, not with a plain pip install.") \
        if pinned else ""
    # uv's form; shown as this machine needs it (pip and torch's index for the GPU or the CPU)
    fixes = (Fix(f"Install {' and '.join(pinned)} built for the installed torch.", kind="command",
                 command=f"uv pip install {' '.join(pinned)} --torch-backend=auto"),) if pinned else ()
    return Observation(
        "ENV-REQUIREMENT-MISSING", Location(decl.path, missing[0][0], 1),
        values={"package": decl.package, "package_version": decl.version, "missing_count": len(missing),
                "missing": ", ".join(name for _, name, _ in missing),
                "dependencies": [name for _, name, _ in missing],
                "install_args": " ".join(f'"{req}"' for req in plain),
                "pinned_note": note},
        fixes=fixes,
        evidence=tuple(Evidence("line", f"Requires-Dist: {req}", None, decl.path, line) for line, _, req in missing))


# --- PEP 508, the part Requires-Dist uses ----------------------------------------------
# packaging.requirements would do this, but importing it pulls in packaging.tags, sysconfig
# and a dozen large regexes: most of a whole scan's start-up. Versions still go through
# packaging.specifiers, which the engine loads anyway.

@dataclass(frozen=True)
class Req:
    name: str
    specifier: str          # "" for any version (or a direct URL)
    marker: str | None


_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def parse_requirement(text: str) -> Req | None:
    body, sep, marker = text.partition(";")
    m = _REQ.match(body)
    if not m:
        return None
    rest = m.group(3)
    if rest.startswith("@"):
        rest = ""  # a direct URL pins no version we can compare
    rest = rest.strip().removeprefix("(").removesuffix(")").replace(" ", "")
    return Req(name=m.group(1), specifier=rest, marker=marker.strip() if sep and marker.strip() else None)


_TOKEN = re.compile(r"""\s*(?:(?P<str>'[^']*'|"[^"]*")|(?P<op>~=|===|==|!=|<=|>=|<|>)|(?P<paren>[()])|"""
                    r"""(?P<notin>not\s+in\b)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""")


def _tokens(marker: str) -> list[tuple[str, str]] | None:
    out, pos = [], 0
    while pos < len(marker):
        if marker[pos:].strip() == "":
            break
        m = _TOKEN.match(marker, pos)
        if not m:
            return None
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def marker_holds(marker: str, env: Mapping[str, str]) -> bool | None:
    """Evaluate a PEP 508 marker for `env`; None when it can't be read (unknown variable...)."""
    toks = _tokens(marker)
    if toks is None:
        return None
    try:
        value, rest = _or(toks, env)
    except (IndexError, KeyError, ValueError):
        return None
    return value if not rest else None


_Tokens = list[tuple[str, str]]


def _or(t: _Tokens, env: Mapping[str, str]) -> tuple[bool, _Tokens]:
    return _chain(t, env, "or", _and)


def _and(t: _Tokens, env: Mapping[str, str]) -> tuple[bool, _Tokens]:
    return _chain(t, env, "and", _atom)


def _chain(t: _Tokens, env: Mapping[str, str], word: str, sub: Any) -> tuple[bool, _Tokens]:
    """`sub (word sub)*`, evaluated left to right: `or` binds looser than `and`."""
    value, t = sub(t, env)
    while t and t[0] == ("word", word):
        right, t = sub(t[1:], env)
        value = (value or right) if word == "or" else (value and right)
    return value, t


def _atom(t: list[tuple[str, str]], env: Mapping[str, str]) -> tuple[bool, list[tuple[str, str]]]:
    if t[0] == ("paren", "("):
        value, t = _or(t[1:], env)
        if not t or t[0] != ("paren", ")"):
            raise ValueError("unbalanced parenthesis")
        return value, t[1:]
    left, op, right = _operand(t[0], env), t[1], _operand(t[2], env)
    if op[0] == "word" and op[1] == "in":
        return left in right, t[3:]
    if op[0] == "notin":
        return left not in right, t[3:]
    if op[0] != "op":
        raise ValueError(f"not an operator: {op[1]}")
    key = t[0][1] if t[0][0] == "word" else t[2][1]
    return _compare(left, op[1], right, key), t[3:]


def _operand(tok: tuple[str, str], env: Mapping[str, str]) -> str:
    kind, text = tok
    if kind == "str":
        return text[1:-1]
    if kind == "word":
        return env[text]  # KeyError: an unknown variable
    raise ValueError(f"unexpected {text}")


_VERSION_MARKERS = {"implementation_version", "platform_release", "python_full_version", "python_version"}
# packaging's rules for comparing plain strings: ordering is undefined, so < and > never hold
_STRING_OPS = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<=": lambda a, b: a == b,
               ">=": lambda a, b: a == b, "<": lambda a, b: False, ">": lambda a, b: False}


def _compare(left: str, op: str, right: str, key: str) -> bool:
    """As packaging.markers does: a version comparison for the version variables when the
    right side reads as a version, else the string rules above."""
    if key in _VERSION_MARKERS:
        from packaging.specifiers import InvalidSpecifier, Specifier

        try:
            return Specifier(op + right).contains(left, prereleases=True)
        except InvalidSpecifier:
            pass
    if op not in _STRING_OPS:
        raise ValueError(f"{op} is undefined for {left!r} and {right!r}")
    return _STRING_OPS[op](left, right)


def _local(version: str) -> str | None:
    return version.split("+", 1)[1] if "+" in version else None


def package_facts(scan: DistScan, view: SystemView) -> Facts:
    fc = FactCollector("package metadata")
    for key, dist in scan.dists.items():
        fc.set(f"pkg.{key}.version", dist.version, dist.meta_dir)
        fc.set(f"pkg.{key}.local", _local(dist.version), dist.meta_dir)
    fc.set("pkg.count", len(scan.dists))
    dups = {k: v for k, v in scan.all_copies.items() if len(v) > 1}
    if dups:
        fc.set("pkg.duplicates", "; ".join(
            f"{v[0].name} ({', '.join(f'{d.version} in {d.site}' for d in v)})" for v in dups.values()))
    gone = [m for k in FILE_CHECKED if k in scan.dists and (m := missing_files(view, scan.dists[k]))]
    broken = [m for m in gone if m.modules]
    if broken:   # modules gone: the import fails, or fails when it reaches them
        fc.set("pkg.broken", ", ".join(m.name for m in broken))
        fc.set("pkg.broken_files", "; ".join(m.describe(m.modules) for m in broken))
    slimmed = [m for m in gone if not m.modules]
    if slimmed:   # only data or docs gone: the package imports; what needs those files may not work
        fc.set("pkg.missing_data", "; ".join(m.describe(m.others) for m in slimmed))
    if scan.leftovers:
        fc.set("pkg.leftovers", ", ".join(scan.leftovers))
    return fc.freeze()


def requirement_observations(scan: DistScan, view: SystemView) -> list[Observation]:
    declared = []
    for key in CHECKED:
        dist = scan.dists.get(key)
        if dist is None:
            continue
        path = _metadata_file(dist.meta_dir)
        text = view.read_text(path)
        if text:
            declared.append(declared_from_metadata(text, path, dist.name, dist.version))
    installed = {k: d.version for k, d in scan.dists.items()}
    return check_requirements(declared, installed, marker_environment(view.python), view.python.version)


def run_requirements_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb example input: JSON {"installed": {name: version}, "requires": {name: [req, ...]},
    optional "requires_python": {name: spec}, "python": "3.11.7", "platform": "linux"}."""
    import json

    data = json.loads(text)
    installed = {dist_key(k): v for k, v in data.get("installed", {}).items()}
    py_version = data.get("python", "3.11.7")
    sys_platform = data.get("platform", "linux")
    py = PythonInfo(version=py_version, implementation="cpython", executable="python", prefix="",
                    base_prefix="", site_dirs=(), platform=sys_platform,
                    system={"linux": "Linux", "win32": "Windows", "darwin": "Darwin"}.get(sys_platform, "Linux"))
    declared = []
    for name, reqs in data.get("requires", {}).items():
        rp = data.get("requires_python", {}).get(name)
        declared.append(Declared(
            package=name, version=installed.get(dist_key(name), "0"),
            requires=tuple((i + 1, r) for i, r in enumerate(reqs)),
            requires_python=(0, rp) if rp else None, path=f"{name}.dist-info/METADATA"))
    return check_requirements(declared, installed, marker_environment(py), py_version)


def collect_packages(view: SystemView, requirements: bool = True) -> tuple[Facts, list[Observation], DistScan]:
    """`requirements=False` skips evaluating every Requires-Dist (the costly part), for
    callers that need only the facts, like explain's correlation."""
    scan = scan_distributions(view)
    observations = requirement_observations(scan, view) if requirements else []
    return package_facts(scan, view), observations, scan


