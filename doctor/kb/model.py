"""Knowledge entries as typed, immutable objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from doctor.findings import Fix, Safety, Severity


@dataclass(frozen=True)
class Symptom:
    pattern: str
    weight: float = 0.5
    capture: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    severity: Severity
    category: str
    area: str
    explain: str
    refs: tuple[str, ...]
    examples: Mapping[str, Any]
    when: Mapping[str, Any] | None = None
    symptoms: tuple[Symptom, ...] = ()
    observed: bool = False
    fixes: tuple[Fix, ...] = ()
    myth: str | None = None
    related: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()     # entries whose (misleading) symptom this one causes
    file: str = ""
    line: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def fires_in_scan(self) -> bool:
        """`when:` triggers a scan finding, except for runtime (explain) entries, whose
        condition only confirms or rules out a text match against the live machine."""
        return self.when is not None and self.area != "runtime"


def entry_from_dict(data: Mapping[str, Any], file: str = "", line: int = 0) -> Entry:
    symptoms = tuple(
        Symptom(s) if isinstance(s, str)
        else Symptom(s["pattern"], float(s.get("weight", 0.5)), tuple(s.get("capture", ())))
        for s in data.get("symptoms", ())
    )
    fixes = tuple(
        Fix(text=f["text"], safety=Safety(f.get("safety", "manual")), kind=f.get("kind", "manual"),
            command=f.get("command"))
        for f in data.get("fixes", ())
    )
    return Entry(
        id=data["id"], title=data["title"], severity=Severity(data["severity"]),
        category=data["category"], area=data["area"], explain=data["explain"],
        refs=tuple(data["refs"]), examples=data["examples"], when=data.get("when"),
        symptoms=symptoms, observed=bool(data.get("observed", False)), fixes=fixes,
        myth=data.get("myth"), related=tuple(data.get("related", ())),
        explains=tuple(data.get("explains", ())), file=file, line=line,
        raw=data,
    )
