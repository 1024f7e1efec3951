"""Where the doctor keeps its own state: the fix journal, crash logs, the knowledge cache."""
from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    override = os.environ.get("UNSLOTH_DOCTOR_STATE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "unsloth-doctor"
