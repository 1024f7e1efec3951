"""The probe contract: what every probe declares, what it is given, and what it returns.

A probe looks at one kind of target (the environment, a dataset file, a script, a config, a
model folder) and returns facts and located observations. It never decides severity or
wording: the knowledge entry named by an observation does that. Everything else about a
probe (which files it claims in a folder, its command-line flag, its console heading, the
areas its entries may name) is declared here, on its class, and read by the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

from doctor.facts import Facts
from doctor.findings import AreaStatus, Observation

# An example runner: (example input text, options, knowledge base) -> observations. `kb test`
# runs one on each example of an entry that a probe emits (`observed: true`).
ExampleRunner = Callable[[str, dict[str, Any], Any], list[Observation]]


@dataclass
class ProbeResult:
    facts: Facts = field(default_factory=Facts)
    observations: list[Observation] = field(default_factory=list)
    areas: list[AreaStatus] = field(default_factory=list)

    def merge(self, other: "ProbeResult") -> "ProbeResult":
        return ProbeResult(
            facts=self.facts.merged(other.facts),
            observations=[*self.observations, *other.observations],
            areas=[*self.areas, *other.areas],
        )


@dataclass(frozen=True)
class Target:
    """One thing to examine: `probe` names the registry entry, `path` the file or folder
    (None for the environment)."""

    probe: str
    path: str | None = None


@dataclass
class ProbeOptions:
    """Options a probe may read. Each probe takes what it needs and ignores the rest."""

    deep: bool = False
    timeout: float = 120.0
    python: str | None = None           # examine this interpreter's environment instead of ours
    tokenizer: str | None = None
    max_seq_length: int | None = None
    response_part: str | None = None
    base: str | None = None             # the base model folder a LoRA adapter is checked against
    jobs: int = 1
    progress: bool = False


@dataclass
class ProbeContext:
    kb: Any                             # doctor.kb.KnowledgeBase, loaded once per command
    options: ProbeOptions = field(default_factory=ProbeOptions)


class Probe:
    """Subclass, fill in the class attributes, implement `run`; see CONTRIBUTING.md."""

    name: ClassVar[str]                       # the registry key: "dataset"
    area: ClassVar[str]                       # the knowledge area of the entries it emits
    label: ClassVar[str]                      # a target's status line: f"{label} {path}"
    headings: ClassVar[Mapping[str, str]]     # area -> console heading, for every area it owns
    suffixes: ClassVar[tuple[str, ...]] = ()  # files it claims (lower case, with the dot)
    folder: ClassVar[bool] = False            # its targets are folders (see claims_folder)
    option: ClassVar[str | None] = None       # the flag naming one target: "--data"
    option_help: ClassVar[str] = ""
    examples: ClassVar[Mapping[str, ExampleRunner]] = {}
    not_found_reason: ClassVar[str] = "not a kind of file the doctor reads"   # when `finds` says no

    def claims_file(self, path: Path) -> bool:
        name = path.name.lower()
        return name.endswith(self.suffixes) and not is_generated(name)

    def finds(self, path: Path) -> bool:
        """Whether a folder scan takes this file it came across (default: by its suffix, as
        for a file named on the command line). A probe may also look inside."""
        return self.claims_file(path)

    def claims_folder(self, path: Path, files: list[str]) -> bool:
        return False

    def skip_reason(self, path: Path) -> str | None:
        """What a file of its kind that `finds` did not take is, when the probe can name it
        (a DeepSpeed config among training configs); None: nothing to say."""
        return None

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        raise NotImplementedError


def is_generated(name: str) -> bool:
    """Our own repaired copies and rejects files are outputs, never inputs."""
    return ".fixed." in name or ".rejects." in name
