"""A training config as read: its text, data, where each value stands, its vocabulary and settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from doctor.findings import Location
from doctor.probes import configvocab


@dataclass(frozen=True)
class ConfigFile:
    """A parsed config: its data, where each value stands, its vocabulary and settings."""

    path: str
    text: str
    data: Any
    places: Mapping[tuple[Any, ...], Any]   # value path -> .line/.column (YAML marks, JSON spans)
    kind: configvocab.Recognised
    settings: configvocab.Settings

    @property
    def is_json(self) -> bool:
        return self.path.lower().endswith(".json")

    def value(self, name: str) -> Any:
        return self.settings[name].value if name in self.settings else None

    def at(self, name: str) -> Location:
        place = self.places.get(self.settings[name].path) if name in self.settings else None
        return Location(self.path, place.line if place else None, place.column if place else None)
