"""What Unsloth adds to trl's keyword arguments, read from the installed unsloth's source.

With unsloth imported, every trl trainer takes `tokenizer=` for `processing_class=`
(unsloth/models/rl.py, unsloth/trainer.py `_backwards_compatible_trainer`) and moves config
fields passed to the trainer into its `args`; every trl config takes Unsloth's own extras
and drops, with a warning, the arguments trl renamed or removed
(unsloth/models/rl_config_compat.py). The rename and removal tables are that file's literals.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from doctor.probes.settings.trl_api import find_distribution
from doctor.probes import pep701

# The keywords Unsloth's generated config `__init__` adds (unsloth/models/rl.py:606, and
# max_seq_length where the trl config has max_length: rl.py:3430).
CONFIG_EXTRAS = frozenset({"vllm_sampling_params", "unsloth_num_chunks", "unsloth_logit_chunk_multiplier",
                           "unsloth_grpo_mini_batch", "max_seq_length"})
CONFIG_EXTRAS_REF = "unsloth/models/rl.py:606"
TRAINER_EXTRAS = frozenset({"tokenizer"})    # rl.py:2603: tokenizer stands in for processing_class
TRAINER_EXTRAS_REF = "unsloth/models/rl.py:2603"


@dataclass(frozen=True)
class UnslothCompat:
    version: str
    renames: dict[str, str]          # old config keyword -> new (trl's and transformers')
    removed: dict[str, str]          # retired config keyword -> trl's advice
    ref: str                         # where the tables are


def installed_unsloth(site_dirs: Iterable[str] | None = None) -> UnslothCompat | None:
    found = find_distribution("unsloth", tuple(site_dirs) if site_dirs is not None else None)
    return read_unsloth(*found) if found else None


@lru_cache(maxsize=4)
def read_unsloth(root: str, version: str) -> UnslothCompat:
    path = os.path.join(root, "unsloth", "models", "rl_config_compat.py")
    tables: dict[str, dict[str, str]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            tree = pep701.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, dict):
                tables[node.targets[0].id] = {str(k): str(v) for k, v in value.items()}
    renames = {**tables.get("TRANSFORMERS_CONFIG_RENAMES", {}), **tables.get("TRL_CONFIG_RENAMES", {})}
    removed = {**tables.get("TRANSFORMERS_REMOVED_FIELD_ADVICE", {}), **tables.get("TRL_REMOVED_FIELD_ADVICE", {})}
    return UnslothCompat(version, renames, removed, "unsloth/models/rl_config_compat.py")
