"""What a probe found, without the notes every run gets (the run's VRAM estimate)."""
from __future__ import annotations

from typing import Any, Iterable

ALWAYS = frozenset({"RUN-VRAM-ESTIMATE"})


def problems(observations: Iterable[Any]) -> list[Any]:
    return [o for o in observations if o.entry_id not in ALWAYS]
