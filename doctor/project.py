"""Project configuration: `[tool.unsloth-doctor]` in pyproject.toml, or `.unsloth-doctor.toml`.

Found by walking up from the scanned folder (or the current one), as ruff finds its own.
Paths in it are relative to the file that holds them. A key the doctor does not know is not
ignored: it becomes a DOCTOR-CONFIG-UNKNOWN-KEY finding at its line, since a misspelt
`ignroe = [...]` would otherwise silently do nothing.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctor.errors import UsageError
from doctor.findings import Location, Observation, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover - the declared dependency on older Pythons
    import tomli as tomllib

UNKNOWN_KEY = "DOCTOR-CONFIG-UNKNOWN-KEY"
OWN_FILE = ".unsloth-doctor.toml"
SECTION = "tool.unsloth-doctor"

_LISTS = ("data", "scripts", "configs", "models", "select", "ignore", "kb")
_KNOWN = {*_LISTS, "tokenizer", "max_seq_length", "severity", "baseline", "env"}


@dataclass
class ProjectConfig:
    path: Path | None = None                      # the file it came from (None: no file)
    data: list[str] = field(default_factory=list)  # paths below are resolved against path's folder
    scripts: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    tokenizer: str | None = None
    max_seq_length: int | None = None
    env: bool | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, Severity] = field(default_factory=dict)
    kb: list[str] = field(default_factory=list)
    baseline: str | None = None
    problems: list[Observation] = field(default_factory=list)   # unknown keys, located

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path(".")

    def has_targets(self) -> bool:
        return bool(self.data or self.scripts or self.configs or self.models)


def find_config(start: Path) -> Path | None:
    """The nearest .unsloth-doctor.toml, or pyproject.toml with a [tool.unsloth-doctor] table,
    in `start` or a folder above it."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        own = folder / OWN_FILE
        if own.is_file():
            return own
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_section(pyproject):
            return pyproject
    return None


def _has_section(pyproject: Path) -> bool:
    try:
        return "unsloth-doctor" in _parse(pyproject).get("tool", {})
    except UsageError:
        return True   # ours or not, a broken pyproject must be said, not skipped


def _parse(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: Path) -> ProjectConfig:
    """Read one configuration file; wrong values are a UsageError naming the file and key."""
    doc = _parse(path)
    own = path.name != "pyproject.toml"
    table = doc if own else doc.get("tool", {}).get("unsloth-doctor", {})
    config = ProjectConfig(path=path)
    text = path.read_text(encoding="utf-8")
    for key, value in table.items():
        if key not in _KNOWN:
            config.problems.append(unknown_key(path, text, key, own))
            continue
        _set(config, key, value)
    return config


def _set(config: ProjectConfig, key: str, value: Any) -> None:
    where = f"{config.path}: {key}"
    if key in _LISTS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where} must be a list of strings")
        setattr(config, key, list(value))
    elif key in ("tokenizer", "baseline"):
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string")
        setattr(config, key, value)
    elif key == "max_seq_length":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{where} must be a whole number of at least 1")
        config.max_seq_length = value
    elif key == "env":
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false")
        config.env = value
    elif key == "severity":
        config.severity = parse_severities(value, where)


def parse_severities(value: Any, where: str) -> dict[str, Severity]:
    levels = [s.value for s in Severity]
    if not isinstance(value, dict) or not all(isinstance(v, str) and v in levels for v in value.values()):
        raise UsageError(f"{where} must map rule ids to one of {', '.join(levels)}")
    return {k: Severity(v) for k, v in value.items()}


def unknown_key(path: Path, text: str, key: str, own: bool) -> Observation:
    line = key_line(text, key, None if own else SECTION)
    known = ", ".join(sorted(_KNOWN))
    return Observation(UNKNOWN_KEY, Location(str(path), line, 1 if line else None),
                       {"key": key, "file": path.name, "known": known})


_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")


def key_line(text: str, key: str, section: str | None) -> int | None:
    """The 1-based line that sets `key` in `section` (None: the top level), found by reading
    the lines, since TOML parsers give no positions."""
    current: str | None = None
    assign = re.compile(r'^\s*["\']?' + re.escape(key) + r'["\']?\s*=')
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace('"', "").replace("'", "")
            continue
        if current == section and assign.match(line):
            return number
    return None


def resolve(config: ProjectConfig, value: str) -> str:
    """A path from the configuration, as the scan opens it (relative to the file's folder)."""
    import os

    path = Path(value)
    full = path if path.is_absolute() else config.root / path
    here = os.path.relpath(full)   # shown as the user would type it, when below the current folder
    return full.as_posix() if here.startswith("..") else here


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: the text as a project's .unsloth-doctor.toml."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (options.get("name") or OWN_FILE)
        path.write_text(text, encoding="utf-8")
        return load_config(path).problems


EXAMPLES = {"doctor.project-config": _example}
