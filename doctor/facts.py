"""Facts: named, typed values that probes gather and rules read.

A fact name is dotted (`torch.cuda_build`, `gpu.0.capability`). Each fact remembers where it
came from so a finding can show its evidence.
"""
from __future__ import annotations


from typing import Any, Iterator, Mapping


class Facts(Mapping[str, Any]):
    """A read-only mapping of fact name to value, with provenance on the side."""

    def __init__(self, facts: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None):
        self._values: dict[str, Any] = dict(facts or {})
        self._sources: dict[str, str] = dict(sources or {})

    @classmethod
    def of(cls, *groups: "Facts | Mapping[str, Any]") -> "Facts":
        out = cls()
        for group in groups:
            out = out.merged(group)
        return out

    def merged(self, other: "Facts | Mapping[str, Any]") -> "Facts":
        values = dict(self._values)
        sources = dict(self._sources)
        values.update(other)
        if isinstance(other, Facts):
            sources.update(other._sources)
        return Facts(values, sources)

    def source(self, name: str) -> str:
        return self._sources.get(name, "")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Facts({self._values!r})"


class FactCollector:
    """Mutable builder a probe fills; `freeze()` gives the immutable Facts."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}

    def set(self, name: str, value: Any, source: str | None = None) -> None:
        if value is None:
            return
        self._values[name] = value
        self._sources[name] = source or self._source

    def freeze(self) -> Facts:
        return Facts(self._values, self._sources)
