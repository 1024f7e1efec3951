"""Install commands and requirements files, checked against the ranges Unsloth declares.

`!pip install`, `%pip install`, `!uv pip install` (and `python -m pip install`) in notebooks,
and the lines of requirements*.txt files, are read with `packaging`. A pin of trl,
transformers, unsloth_zoo (or peft) that no version inside the range the installed unsloth
(or unsloth_zoo) declares in its METADATA can meet is a finding at its line, citing the
range and the METADATA line that declares it. When the command pins unsloth itself to
another version than the one installed, its ranges are not known here and nothing is judged.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from doctor.probes.packages import dist_key, parse_requirement, read_headers
from doctor.probes.settings.trl_api import find_distribution

# The packages whose ranges are checked, and the packages that declare them.
CHECKED = ("unsloth_zoo", "trl", "transformers", "peft")
DECLARERS = ("unsloth", "unsloth_zoo")
# pip/uv options that take a value: the value is not a requirement
_VALUED = frozenset({"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
                     "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
                     "--upgrade-strategy", "--python", "-p", "--torch-backend", "--platform", "--cache-dir",
                     "--src", "--progress-bar", "--python-version", "--implementation", "--abi", "--index",
                     "--default-index", "--trusted-host", "--log", "--config-settings", "-C"})
_CHAIN = re.compile(r"\s*(?:&&|\|\||;)\s*")


@dataclass(frozen=True)
class Pin:
    name: str            # as written
    key: str             # normalised: unsloth_zoo
    specifier: str       # ">=4.52,<5" ("" for any)
    text: str            # the requirement as written
    column: int          # 0-based offset of the requirement in its line, or in its command


@dataclass(frozen=True)
class Range:
    specifier: str
    declared_by: str     # "unsloth 2026.10.9"
    where: str           # "unsloth-2026.10.9.dist-info/METADATA:43"
    line: str            # the Requires-Dist line


def install_pins(command: str) -> list[Pin]:
    """The requirements a `pip install`/`uv pip install` command names (an IPython magic or
    shell escape, `!` or `%` first). Arguments IPython expands (`{var}`, `$var`), URLs and
    paths name no version the text fixes and are left out."""
    out: list[Pin] = []
    flat = command.replace("\\\n", "  ")   # a continuation, as the shell reads it (same length)
    start = len(flat) - len(flat.lstrip("!%").lstrip())
    body = flat[start:]
    at = 0
    for part in _CHAIN.split(body):
        at = body.find(part, at)
        out += _pins_of(part, start + max(at, 0))
        at += len(part)
    return out


_EXPORTED = re.compile(r"^\s*(?:#\s*)?(?:get_ipython\(\)\.system\((?P<system>.+)\)"
                       r"|get_ipython\(\)\.run_line_magic\(\s*['\"](?P<magic>pip|uv)['\"]\s*,\s*(?P<args>.+)\)"
                       r"|get_ipython\(\)\.run_cell_magic\((?P<cell>.+)\)"
                       r"|#\s*(?P<bang>[!%](?:uv\s+)?pip\s+install\b.*))\s*$")
_SHELL_CELLS = ("bash", "sh", "script")


def exported_installs(text: str) -> list[str]:
    """The install commands of a script exported from a notebook: nbconvert writes each magic
    as `get_ipython().system('pip install trl==0.22.2')` (or `.run_line_magic`,
    `.run_cell_magic('capture', '', '<the cell>')`), often commented out, and jupytext as
    `# !pip install ...`. They say which versions the script was written for; used only for
    that, never as findings (a comment triggers no rule)."""
    import ast

    from doctor.probes.ipython import PYTHON_CELL_MAGICS, python_lines
    out: list[str] = []
    for line in text.split("\n"):
        if "install" not in line:
            continue
        m = _EXPORTED.match(line)
        if m is None:
            continue
        try:
            if m.group("system"):
                out.append("!" + str(ast.literal_eval(m.group("system"))))
            elif m.group("magic"):
                out.append(f"%{m.group('magic')} " + str(ast.literal_eval(m.group("args"))))
            elif m.group("cell"):
                name, _, body = ast.literal_eval(f"({m.group('cell')})")
                if name in PYTHON_CELL_MAGICS:
                    found: list[tuple[int, str]] = []
                    python_lines(str(body), found)
                    out += [command for _, command in found]
                elif name in _SHELL_CELLS:
                    out += ["!" + shell for shell in str(body).split("\n")]
            else:
                out.append(m.group("bang"))
        except (ValueError, SyntaxError, TypeError):
            continue
    return out


def _pins_of(part: str, offset: int) -> list[Pin]:
    try:
        words = shlex.split(part, comments=True)
    except ValueError:
        return []
    verb = _install_at(words)
    if verb is None:
        return []
    out: list[Pin] = []
    skip = False
    searched = 0
    for word in words[verb + 1:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _VALUED
            continue
        if any(ch in word for ch in "{$") or "://" in word or "@" in word or word.startswith((".", "/", "~")) \
                or word.endswith((".whl", ".tar.gz", ".zip")):
            continue
        found = part.find(word, searched)
        searched = found + len(word) if found >= 0 else searched
        pin = parse_pin(word, offset + (found if found >= 0 else 0))
        if pin is not None:
            out.append(pin)
    return out


def _install_at(words: list[str]) -> int | None:
    """Index of `install` in `pip install`, `pip3 install`, `uv pip install`, `python -m pip install`."""
    for i, word in enumerate(words[:-1]):
        if os.path.basename(word) in ("pip", "pip3") and words[i + 1] == "install":
            return i + 1
    return None


def parse_pin(text: str, column: int = 0) -> Pin | None:
    from packaging.requirements import InvalidRequirement, Requirement
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return None
    return Pin(req.name, dist_key(req.name), str(req.specifier), text, column)


def requirement_file_pins(text: str) -> Iterator[tuple[int, Pin]]:
    """(1-based line, pin) of each requirement line of a requirements.txt."""
    for number, line in enumerate(text.split("\n"), start=1):
        code = line.split(" #", 1)[0].split(" --", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not code or code.startswith("-"):
            continue
        pin = parse_pin(code, len(line) - len(line.lstrip()))
        if pin is not None:
            yield number, pin


# --- the declared ranges -----------------------------------------------------------------

def declared_ranges(site_dirs: Iterable[str] | None = None) -> dict[str, list[Range]]:
    """key -> the ranges the installed unsloth's and unsloth_zoo's METADATA declare for it."""
    sites = tuple(site_dirs) if site_dirs is not None else None
    ranges: dict[str, list[Range]] = {}
    for declarer in DECLARERS:
        found = find_distribution(declarer, sites)
        for key, rng in _ranges_of(found[0], declarer, found[1]) if found else ():
            ranges.setdefault(key, []).append(rng)
    return ranges


@lru_cache(maxsize=8)
def _ranges_of(site: str, name: str, version: str) -> tuple[tuple[str, Range], ...]:
    folder = f"{name}-{version}.dist-info"
    path = os.path.join(site, folder, "METADATA")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ()
    out: list[tuple[str, Range]] = []
    for line, key, value in read_headers(text):
        if key.lower() != "requires-dist":
            continue
        req = parse_requirement(value)
        if req is None or dist_key(req.name) not in CHECKED or not req.specifier:
            continue
        if req.marker and "extra" in req.marker:
            continue   # an extra's requirement: not what `pip install unsloth` installs
        out.append((dist_key(req.name), Range(req.specifier, f"{name} {version}", f"{folder}/METADATA:{line}",
                                              f"Requires-Dist: {value}")))
    return tuple(out)


def outside(pin: Pin, declared: Range) -> bool:
    """No version can meet both the pin and the declared range."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version
    try:
        mine, theirs = SpecifierSet(pin.specifier), SpecifierSet(declared.specifier)
    except InvalidSpecifier:
        return False
    if not pin.specifier:
        return False
    candidates: set[Version] = set()
    for spec in (*mine, *theirs):
        try:
            version = Version(spec.version.replace(".*", ""))
        except InvalidVersion:
            continue
        candidates |= {version, Version(".".join(map(str, (*version.release, 1)))),
                       Version(".".join(map(str, (*version.release[:-1], version.release[-1] + 1))))}
    return not any(mine.contains(v, prereleases=True) and theirs.contains(v, prereleases=True) for v in candidates)


def pin_conflicts(pins: Iterable[Pin], ranges: dict[str, list[Range]]) -> Iterator[tuple[Pin, Range]]:
    """Each pin outside a declared range. A pin of unsloth (or unsloth_zoo) to another version
    than the one whose METADATA was read makes that package's ranges unknown: they are not
    judged then."""
    pins = list(pins)
    other = {declarer for declarer in DECLARERS if any(pin.key == declarer and _excludes(pin, version)
                                                       for pin in pins for version in _versions(ranges, declarer))}
    if "unsloth" in other:
        other.add("unsloth_zoo")   # which unsloth_zoo comes depends on that unsloth
    for pin in pins:
        for declared in ranges.get(pin.key, ()):
            if declared.declared_by.split(" ")[0] not in other and outside(pin, declared):
                yield pin, declared
                break


def _versions(ranges: dict[str, list[Range]], declarer: str) -> set[str]:
    return {r.declared_by.split(" ", 1)[1] for rs in ranges.values() for r in rs if r.declared_by.split(" ")[0] == declarer}


def _excludes(pin: Pin, version: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    try:
        return bool(pin.specifier) and not SpecifierSet(pin.specifier).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True
