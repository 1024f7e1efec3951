"""Find what to examine: the environment, datasets, training scripts and configs, models.

A project folder is searched (not too deep, skipping virtualenvs and caches) for the files
each probe understands.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DATA_SUFFIXES = (".jsonl", ".parquet", ".csv")
SCRIPT_SUFFIXES = (".py", ".ipynb")
CONFIG_SUFFIXES = (".yaml", ".yml")
_SKIP_DIRS = {".git", ".venv", "venv", "env", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache",
              ".ipynb_checkpoints", "site-packages", ".unsloth-doctor-backup", "unsloth_compiled_cache", "wandb"}
_MAX_DEPTH = 4


@dataclass
class Targets:
    env: bool = True
    data: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [*self.projects, *self.data, *self.scripts, *self.configs, *self.models]


def _is_generated(name: str) -> bool:
    # our own repaired copies and reject files are not inputs
    return ".fixed." in name or ".rejects." in name


def discover_project(root: Path) -> Targets:
    found = Targets(env=True, projects=[str(root)])
    base_depth = len(root.resolve().parts)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        if len(here.resolve().parts) - base_depth >= _MAX_DEPTH:
            dirs[:] = []
        if "config.json" in files and any(f.endswith(".safetensors") or f == "adapter_config.json" for f in files):
            found.models.append(str(here))
        for name in sorted(files):
            path = str(here / name)
            if _is_generated(name):
                continue
            if name.endswith(DATA_SUFFIXES):
                found.data.append(path)
            elif name.endswith(SCRIPT_SUFFIXES):
                found.scripts.append(path)
            elif name.endswith(CONFIG_SUFFIXES):
                found.configs.append(path)
    return found
