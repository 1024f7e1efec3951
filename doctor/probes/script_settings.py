"""The script probe's settings and install checks: the glue between a read script
(doctor/probes/script.py's Source) and the rules of doctor/probes/settings/ and installs.py.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any, Iterable, Protocol

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation
from doctor.probes import installs, limits
from doctor.probes.base import ProbeResult
from doctor.probes.livecode import imports_module
from doctor.probes.settings.cross import TEXT_FIELD, TEXT_FIELD_MADE
from doctor.probes.settings.extract import all_nodes, settings_calls
from doctor.probes.settings.rules import ScriptFacts, imported_names, settings_observations, trl_import_observations
from doctor.probes.settings.trl_api import installed_transformers, installed_trl
from doctor.probes.settings.unsloth_api import installed_unsloth



class Source(Protocol):
    """What is read here of doctor.probes.script.Source (which imports this module)."""

    text: str
    commands: tuple[tuple[int, str], ...]

    def where(self, line: int, col: int, in_bytes: bool = True) -> Location: ...

    def line_name(self, line: int) -> str: ...

    def where_later(self, line: int, col: int) -> dict[str, Any]: ...

_REQUIREMENTS = re.compile(r"^(.*[-_.])?requirements([-_.].*)?\.txt$", re.IGNORECASE)


def is_requirements_file(name: str) -> bool:
    return bool(_REQUIREMENTS.match(name))


def script_settings(src: Source, tree: ast.Module, site_dirs: Iterable[str] | None = None
                    ) -> tuple[list[Observation], dict[str, Any]]:
    """Settings and install-command observations of a parsed script (dead code already
    dropped from `tree`), and the facts its settings give."""
    def place(node: ast.AST) -> Location:
        return src.where(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))

    nodes = all_nodes(tree)
    live = {node.lineno for node in nodes if isinstance(node, ast.stmt)}   # a command under `if False:` never runs
    pins = [(line, pin) for line, command in src.commands if line in live for pin in installs.install_pins(command)]
    commands = dict(src.commands)
    out = _pin_observations(pins, lambda line, pin: _pin_place(src, line, commands[line], pin.column), site_dirs)
    trl, transformers = installed_trl(site_dirs), installed_transformers(site_dirs)
    # a script that installs another trl or transformers is not judged by this one's signatures
    # (a script exported from a notebook keeps its install lines as get_ipython() calls or comments)
    intended = pins + [(0, pin) for command in installs.exported_installs(src.text)
                       for pin in installs.install_pins(command)] if not src.commands else list(pins)
    intended += sibling_requirement_pins(src.path)
    if trl is not None and _installs_other(intended, "trl", trl.version):
        trl = None
    if transformers is not None and _installs_other(intended, "transformers", transformers.version):
        # trl's configs inherit TrainingArguments: another major transformers, other fields
        if trl is not None and _installs_other_major(intended, "transformers", transformers.version):
            trl = None
        transformers = None
    script = ScriptFacts(uses_unsloth=imports_module(tree, "unsloth"), trl=trl,
                         unsloth=installed_unsloth(site_dirs), trl_imports=imported_names(nodes, "trl"),
                         transformers=transformers, transformers_imports=imported_names(nodes, "transformers"),
                         line_name=src.line_name,
                         where_later=lambda node: src.where_later(node.lineno, node.col_offset))
    observations, facts = settings_observations(settings_calls(nodes), script, place)
    field = facts.get(TEXT_FIELD)
    # named anywhere else (`{"text": ...}`, `examples["text"] = ...`): the script may build the column itself
    facts[TEXT_FIELD_MADE] = field is not None and sum(
        1 for n in nodes if isinstance(n, ast.Constant) and n.value == field) > 1
    if trl is not None:
        observations += trl_import_observations(nodes, trl, place)
    return out + observations, facts


def _pin_place(src: Source, line: int, command: str, offset: int) -> Location:
    """Where the character `offset` of a (multi-line) command stands in the file: its first
    line is written without the indentation it has in the cell; the others are as written."""
    down = command.count("\n", 0, offset)
    column = offset - (command.rfind("\n", 0, offset) + 1)
    if down == 0:
        lines = src.text.split("\n", line)
        text = lines[line - 1] if len(lines) >= line else ""
        column += len(text) - len(text.lstrip())
    return src.where(line + down, column, in_bytes=False)


def sibling_requirement_pins(path: str) -> list[tuple[int, installs.Pin]]:
    """The pins of the requirements*.txt files beside a script: the versions it is run with.
    (They are findings only where the requirements file itself is scanned.)"""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(path):
        return []
    try:
        names = sorted(name for name in os.listdir(folder) if is_requirements_file(name))
    except OSError:
        return []
    out: list[tuple[int, installs.Pin]] = []
    for name in names:
        try:
            text = limits.read_text(os.path.join(folder, name), limits.SCRIPT_MAX_BYTES, errors="replace")
        except (OSError, limits.Refusal):
            continue
        out += installs.requirement_file_pins(text)
    return out


def _installs_other_major(pins: list[tuple[int, installs.Pin]], key: str, version: str) -> bool:
    """A pin of `key` that excludes `version` names only releases of another major version."""
    major = version.split(".", 1)[0]
    for _, pin in pins:
        if pin.key != key or not pin.specifier:
            continue
        named = re.findall(r"[<>=!~]=?=?\s*(\d+)", pin.specifier)
        if named and all(m != major for m in named) and _installs_other([(0, pin)], key, version):
            return True
    return False


def _installs_other(pins: list[tuple[int, installs.Pin]], key: str, version: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    for _, pin in pins:
        if pin.key == key and pin.specifier:
            try:
                if not SpecifierSet(pin.specifier).contains(version, prereleases=True):
                    return True
            except InvalidSpecifier:
                return True
    return False


def _pin_observations(pins: list[tuple[int, installs.Pin]], where: Any,
                      site_dirs: Iterable[str] | None) -> list[Observation]:
    if not pins:
        return []
    ranges = installs.declared_ranges(site_dirs)
    out: list[Observation] = []
    for pin, declared in installs.pin_conflicts([p for _, p in pins], ranges):
        line = next(line for line, p in pins if p is pin)
        out.append(Observation("SCRIPT-PIN-OUTSIDE-RANGE", where(line, pin),
                               {"requirement": pin.text, "package": pin.name, "range": declared.specifier,
                                "declared_by": declared.declared_by, "declared_at": declared.where,
                                "declared_line": declared.line}))
    return out


def requirements_observations(path: str, text: str, site_dirs: Iterable[str] | None = None) -> list[Observation]:
    pins = list(installs.requirement_file_pins(text))
    return _pin_observations(pins, lambda line, pin: Location(path, line, pin.column + 1), site_dirs)


def scan_requirements(path: str, site_dirs: Iterable[str] | None = None) -> ProbeResult:
    try:
        text = limits.read_text(path, limits.SCRIPT_MAX_BYTES, errors="replace")
        observations = requirements_observations(path, text, site_dirs)
    except limits.Refusal as refused:
        observations = [Observation("SCRIPT-TOO-LARGE", Location(path, 1, 1), {"file": Path(path).name, **refused.values})]
    facts = FactCollector(f"requirements:{path}")
    facts.set(f"script.{Path(path).name}.findings", len(observations))
    return ProbeResult(facts=facts.freeze(), observations=observations,
                       areas=[AreaStatus("script", f"Requirements {path}", path=path)])


def example_stack() -> tuple[str, ...]:
    """Where examples find trl, transformers and unsloth: fixtures/stack/site, what the rules
    read of trl 1.15.0, transformers 5.17.0 and unsloth 2026.10.9 (built by its build.py), so
    `kb test` answers the same whatever is installed. An installed wheel carries it beside its
    knowledge folder."""
    from doctor.kb import default_knowledge_dir
    return (str(default_knowledge_dir().parent / "fixtures" / "stack" / "site"),)


def requirements_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    return requirements_observations(options.get("name", "requirements.txt"), text, example_stack())
