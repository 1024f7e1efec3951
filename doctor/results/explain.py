"""The typed results of `explain`: the parsed log (frames, exceptions, chains, OOM numbers),
the diagnoses with how they were weighed, and the honest no-match.

Parsing and diagnosis build these; the reporters only read them. Every line number is the
1-based line of the text as the user pasted it, so evidence points at what they see.
The small records are NamedTuples: immutable, and several times cheaper to define than
frozen dataclasses, which counts for a command that must answer in a fraction of a second.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from doctor.findings import Finding

class LogLine(NamedTuple):
    """One cleaned line and where it was in the original text."""

    no: int                 # 1-based line number in the original text
    text: str               # without ANSI codes, quote markers, rank prefix, progress bars
    rank: int | None = None  # from a `[rank3]:` / `[default3]:` prefix

class Frame(NamedTuple):
    file: str
    line: int | None
    function: str
    in_library: bool         # site-packages, dist-packages, stdlib, generated code
    package: str | None      # top-level package of a library frame ("transformers")
    code: str | None = None  # the source line shown under the frame, if any
    log_line: int | None = None

    def where(self) -> str:
        at = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{at} in {self.function}"

class ExceptionInfo(NamedTuple):
    type: str                # as printed: "torch.OutOfMemoryError", "KeyError"
    message: str
    frames: tuple[Frame, ...] = ()
    log_line: int | None = None      # where the "Type: message" line is
    message_lines: tuple[int, ...] = ()  # every line the message spans
    rank: int | None = None
    link: str | None = None  # how it connects to the previous one: "cause" | "context"
    truncated: bool = False  # the paste ended before the exception line

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

class Chain(NamedTuple):
    """Exceptions linked by "direct cause" / "during handling"; the last one was raised."""

    exceptions: tuple[ExceptionInfo, ...]

    @property
    def final(self) -> ExceptionInfo:
        return self.exceptions[-1]

    @property
    def rank(self) -> int | None:
        return self.final.rank

class BuildError(NamedTuple):
    tool: str                # gcc | nvcc | ptxas | cmake | make | ld | ninja | pip
    message: str
    log_line: int

class RankFailure(NamedTuple):
    """One entry of torchrun's ChildFailedError summary."""

    rank: int
    exitcode: int | None
    root_cause: bool
    signal: str | None = None

class Death(NamedTuple):
    """A process killed by a signal, as the log shows it."""

    kind: str        # killed | segfault | abort | bus error
    log_line: int
    text: str

class OomInfo(NamedTuple):
    """The numbers of a CUDA out-of-memory message, in bytes (None when not printed)."""

    log_line: int
    gpu: int | None = None
    tried: float | None = None
    total: float | None = None
    free: float | None = None
    allocated: float | None = None          # allocated by PyTorch
    reserved_unallocated: float | None = None
    reserved_total: float | None = None     # old format: "reserved in total by PyTorch"
    process_in_use: float | None = None
    context: str | None = None              # training | generation | saving | loading | evaluation

    @property
    def fragmented(self) -> bool:
        """Reserved-but-unallocated memory big enough for the request and a real share of
        the card (a few hundred MiB spare on a full card is not worth a setting)."""
        spare = self.reserved_unallocated
        if spare is None and self.reserved_total is not None and self.allocated is not None:
            spare = self.reserved_total - self.allocated
        if spare is None or self.tried is None:
            return False
        floor = 0.05 * self.total if self.total is not None else 0.0
        return spare >= max(self.tried, floor)

@dataclass
class ParsedLog:
    lines: list[LogLine]                      # cleaned, in order; may have gaps (pre-filter)
    chains: list[Chain] = field(default_factory=list)
    primary: Chain | None = None              # the chain that explains the failure
    build_errors: list[BuildError] = field(default_factory=list)
    rank_failures: list[RankFailure] = field(default_factory=list)
    oom: OomInfo | None = None
    death: Death | None = None
    run: RunInfo | None = None                # what Unsloth's banners said
    total_lines: int = 0                      # lines in the original text
    dropped_lines: int = 0                    # lines the pre-filter left out
    _by_no: dict[int, str] | None = field(default=None, repr=False, compare=False)

    @property
    def final(self) -> ExceptionInfo | None:
        return self.primary.final if self.primary else None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def line_text(self, no: int) -> str | None:
        if self._by_no is None or len(self._by_no) != len(self.lines):
            self._by_no = {line.no: line.text for line in self.lines}
        return self._by_no.get(no)

class RunInfo(NamedTuple):
    """What Unsloth's start-up banners said about the run."""

    unsloth_version: str | None = None
    gpu_name: str | None = None
    gpu_memory_gb: float | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    bf16: bool | None = None
    batch_line: int | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in self)

class Unmatched(NamedTuple):
    """No entry fits: the closest category, why, and what to collect for a bug report."""

    category: str          # from the schema's category list
    reason: str            # which part of the log the category was guessed from
    collect: tuple[str, ...]

@dataclass(frozen=True)
class Diagnosis:
    """One ranked diagnosis: the finding, and how explain weighed it.

    env: "confirmed" / "ruled_out" / "unknown" by the live facts, None when not checked.
    explains / caused_by: entries it is the cause of, or a consequence of, in this log.
    alternatives: entries the log cannot tell apart from this one.
    """

    finding: Finding
    on_final_error: bool = False
    env: str | None = None
    env_note: str | None = None
    oom_summary: str | None = None
    alternatives: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()
    caused_by: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.finding.id

    @property
    def confidence(self) -> float:
        return self.finding.confidence or 0.0

    @property
    def by_wording(self) -> bool:
        """A lead that rests on the entry's own words, not on a symptom in the log."""
        return any(ev.kind == "words" for ev in self.finding.evidence)

    @property
    def by_reading(self) -> bool:
        """An answer read from where the error happened (Python's NameError inside Unsloth's
        code), not from a symptom in the log."""
        return any(ev.kind == "reading" for ev in self.finding.evidence)

class RaiseSite(NamedTuple):
    """Where in the library's own source a pasted message is raised or printed."""

    package: str             # "unsloth", "unsloth_zoo"
    version: str             # of the source the index was read from
    file: str                # relative to site-packages: "unsloth/save.py"
    line: int
    function: str            # qualified: "FastLlamaModel.from_pretrained"
    kind: str                # raise | warn | log | print
    exc_type: str            # the raised class or warning category; "" for log/print
    template: str            # the message, "…" where the source fills in a value
    condition: str           # the `if` test that guards it ("" when none)
    category: str            # from where it is raised: saving/GGUF, kernels, vision, RL, ...
    version_note: str | None = None  # the log's Unsloth version differs from the index's
    confidence: float = 0.0  # how surely the pasted text is this site's message, 0..1

    def where(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


@dataclass
class ExplainResult:
    log: ParsedLog
    diagnoses: list[Diagnosis]
    key_frames: list[Frame]
    unmatched: Unmatched | None = None
    env_checked: bool = False
    notes: list[str] = field(default_factory=list)
    run_summary: str | None = None                 # the banners in one line
    oom_summary: str | None = None                 # the OOM message's numbers in one line
    oom_advice: list[str] = field(default_factory=list)
    raise_sites: list[RaiseSite] = field(default_factory=list)  # the message, found in the source

    @property
    def findings(self) -> list[Finding]:
        return [d.finding for d in self.diagnoses]

    @property
    def matched(self) -> bool:
        """A diagnosis is claimed (not just weak leads)."""
        return bool(self.diagnoses) and self.unmatched is None
