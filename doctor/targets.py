"""Find what to examine: every target a registered probe claims, in a file or a folder.

A project folder is searched (not too deep, skipping virtualenvs and caches); each file goes
to the probe that claims its suffix, each folder to a probe that claims folders (a saved
model), and every file nobody claims is counted, so a scan can say what it skipped.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from doctor.probes import registry
from doctor.probes.base import Target, is_generated

_SKIP_DIRS = {".git", ".venv", "venv", "env", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache",
              ".ipynb_checkpoints", "site-packages", ".unsloth-doctor-backup", "unsloth_compiled_cache", "wandb"}
_MAX_DEPTH = 4
# the doctor's own files: a baseline is JSON, but no dataset
_OWN_FILES = {".unsloth-doctor-baseline.json"}


@dataclass
class Targets:
    env: bool = True
    items: list[Target] = field(default_factory=list)      # files and folders, in the order found
    projects: list[str] = field(default_factory=list)      # folders that were searched
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many files

    def of(self, probe: str) -> list[str]:
        return [t.path for t in self.items if t.probe == probe and t.path is not None]

    def add(self, probe: str, path: str) -> None:
        self.items.append(Target(probe, path))

    def names(self) -> list[str]:
        return [*self.projects, *(t.path for t in self.items if t.path is not None)]

    def extend(self, other: "Targets") -> None:
        self.items += other.items
        self.projects += other.projects
        self.skipped.update(other.skipped)


def discover_project(root: Path) -> Targets:
    found = Targets(env=True, projects=[str(root)])
    base_depth = len(root.resolve().parts)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        if len(here.resolve().parts) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        owner = registry.probe_for_folder(here, files)
        if owner is not None:
            # a model folder's files (config.json, tokenizer.json...) are its probe's to read
            found.add(owner.name, str(here))
            continue
        for name in sorted(files):
            if name in _OWN_FILES:
                found.skipped["unsloth-doctor's own baseline"] += 1
                continue
            if is_generated(name):
                found.skipped["repaired copy or rejects file"] += 1
                continue
            probe = registry.probe_finding(here / name)
            if probe is None:
                found.skipped[registry.skip_reason(here / name)] += 1
            else:
                found.add(probe.name, str(here / name))
    return found


_ANCHOR_NAMES = ("requirements.txt", "pyproject.toml", "environment.yml", "environment.yaml", "setup.cfg", "setup.py")


def project_anchor(targets: Targets) -> str | None:
    """A real file of the scanned project that findings without a file of their own (the
    environment's) can be attached to in SARIF: its requirements or pyproject, else the
    training config it holds. None when the project has no such file."""
    for root in targets.projects:
        for name in _ANCHOR_NAMES:
            if (Path(root) / name).is_file():
                return str(Path(root) / name)
    configs = targets.of("config")
    return configs[0] if configs else None
