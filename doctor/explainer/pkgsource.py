"""What the installed packages say about a name, read from their files (never imported).

Structural diagnoses ask: which installed package defines `X`, in which file; does module
`Y` define `X`; which version of `Y` is installed and which version does package `P`
require. The answers come from site-packages: source text and dist-info METADATA.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from doctor.explainer.raiseindex import installed_root
from doctor.explainer.raisesites import dist_version, package_files

# Small enough to scan on demand (transformers and torch are not: thousands of files).
SCANNED = ("peft", "trl", "unsloth", "unsloth_zoo")


def top_package(module: str) -> str:
    return module.split(".", 1)[0]


def version(package: str) -> str | None:
    root = installed_root(package)
    return dist_version(root, package) if root is not None else None


def requirement_on(package: str, other: str) -> str | None:
    """The Requires-Dist line of installed `package` that names `other` ("unsloth_zoo>=2026.10.9")."""
    root = installed_root(package)
    if root is None:
        return None
    want = _canonical(other)
    for meta in sorted(root.glob(f"{package}-*.dist-info/METADATA")):
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            spec = line.split(":", 1)[1].strip()
            name = re.split(r"[\s<>=!~;\[(]", spec, maxsplit=1)[0]
            if _canonical(name) == want and "extra ==" not in spec:
                return spec
    return None


def module_file(module: str) -> Path | None:
    root = installed_root(top_package(module))
    if root is None:
        return None
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def defines(path: Path, name: str) -> bool:
    """`name` is defined, assigned or imported in the module's text; in a package's
    __init__.py also listed by name for a lazy import (`_import_structure`, `__all__`)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if re.search(_definition(name), text, re.M):
        return True
    return path.name == "__init__.py" and re.search(rf"[\"']{re.escape(name)}[\"']", text) is not None


def where_defined(name: str, packages: tuple[str, ...] = SCANNED) -> list[tuple[str, str]]:
    """(package, file relative to site-packages) of each installed file that defines `name`
    as a function, class, method, attribute or field."""
    return list(_where_defined(name, packages))


@lru_cache(maxsize=64)
def _where_defined(name: str, packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pattern = re.compile(_definition(name) + r"|\.%s\s*=[^=]" % re.escape(name), re.M)
    out = []
    for package in packages:
        root = installed_root(package)
        if root is None:
            continue
        for path in package_files(root, package):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if name in text and pattern.search(text):
                out.append((package, path.relative_to(root).as_posix()))
    return tuple(out)


def _definition(name: str) -> str:
    n = re.escape(name)
    return (rf"^\s*(?:async\s+)?def\s+{n}\b|^\s*class\s+{n}\b|^\s*{n}\s*(?::[^=\n]*)?=[^=]"
            rf"|^\s*{n}\s*:|^\s*(?:from\s+\S+\s+)?import\s+[^\n]*\b{n}\b")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
