"""Load and validate the knowledge files; a bad entry is reported at its file and line."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, TypeVar

from doctor.findings import Location
from doctor.kb import schema as _schema
from doctor.kb.model import Entry, entry_from_dict


# Part of the cache key: a change to the schema or the validator's rules revalidates.
_SCHEMA_STAMP = hashlib.sha256(repr(_schema.json_schema()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class KnowledgeProblem:
    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        return f"{Location(self.file, self.line, self.column)}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge base has problems; each one names its file, line and column."""

    def __init__(self, problems: list[KnowledgeProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


T = TypeVar("T")


class KnowledgeBase:
    def __init__(self, entries: Iterable[Entry]):
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._by_id = {e.id: e for e in self.entries}
        self._derived: dict[str, Any] = {}

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def derived(self, key: str, build: Callable[[], T]) -> T:
        """Data built from the entries once per knowledge base (the engine's symptom index)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]


def default_knowledge_dir() -> Path:
    """Inside an installed wheel the files sit in `doctor/knowledge`; in a checkout, at the root."""
    override = os.environ.get("UNSLOTH_DOCTOR_KNOWLEDGE")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent.parent
    packaged = here / "knowledge"
    if packaged.is_dir():
        return packaged
    return here.parent / "knowledge"


def knowledge_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_knowledge(paths: Iterable[str | Path] | None = None, use_cache: bool = True,
                   areas: Collection[str] | Callable[[], Collection[str]] | None = None) -> KnowledgeBase:
    """Load every entry; raise KnowledgeError listing *all* problems, not just the first.

    Validation costs far more than reading, so a knowledge base that validated once is kept
    as JSON, keyed by every file's path, size and mtime (any edit revalidates).
    `areas`: the areas an entry may name (the probe registry's, passed in by the caller, so
    that this package imports nothing above it); None accepts any slug. A callable is called
    only when the files are validated: a cached base passed the same check when it was written
    (asking the registry imports every probe, a third of a one-line `explain`).
    """
    if paths is None:
        files = knowledge_files(default_knowledge_dir())
    else:
        files = []
        for p in map(Path, paths):
            files += knowledge_files(p) if p.is_dir() else [p]
    cache = _cache_file(files, areas is not None) if use_cache else None
    if cache is not None:
        cached = _read_cache(cache)
        if cached is not None:
            return KnowledgeBase(cached)
    kb = _load_and_validate(files)
    if areas is not None:
        allowed = areas() if callable(areas) else areas
        unknown = [KnowledgeProblem(e.file, e.line, None, f"entry {e.id}: area {e.area!r} is not one of: "
                                    f"{', '.join(sorted(allowed))}") for e in kb.entries if e.area not in allowed]
        if unknown:
            raise KnowledgeError(unknown)
    if cache is not None:   # only a base that passed every check is kept
        _write_cache(cache, kb)
    return kb


def _cache_file(files: list[Path], areas_checked: bool) -> Path | None:
    """`areas_checked`: a base kept without the area check never stands in for one with it."""
    from doctor.version import __version__
    from doctor.paths import state_dir

    h = hashlib.sha256(f"{__version__}|{_SCHEMA_STAMP}|{areas_checked}".encode())
    try:
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    except OSError:
        return None
    return state_dir() / "cache" / f"knowledge-{h.hexdigest()[:20]}.json"


def _read_cache(cache: Path) -> list[Entry] | None:
    try:
        data = json.loads(cache.read_bytes())
        return [entry_from_dict(e["raw"], e["file"], e["line"]) for e in data]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(cache: Path, kb: KnowledgeBase) -> None:
    from doctor.atomic import atomic_write_bytes

    data = [{"raw": e.raw, "file": e.file, "line": e.line} for e in kb.entries]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, json.dumps(data, default=str).encode())
    except OSError:
        pass  # a read-only home is fine: we validate every time instead


def _load_and_validate(files: list[Path]) -> KnowledgeBase:
    base = default_knowledge_dir().parent
    entries: list[Entry] = []
    problems: list[KnowledgeProblem] = []
    for file in files:
        shown = _display_path(file, base)
        found, file_problems = _load_file(file, shown)
        entries += found
        problems += file_problems
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.id in seen:
            first = seen[entry.id]
            problems.append(KnowledgeProblem(entry.file, entry.line, None,
                                             f"duplicate id {entry.id} (first defined at {first.file}:{first.line})"))
        seen[entry.id] = entry
    for entry in entries:
        for other in (*entry.related, *entry.explains):
            if other not in seen:
                problems.append(KnowledgeProblem(entry.file, entry.line, None,
                                                 f"{entry.id} refers to {other}, which no entry defines"))
    if problems:
        raise KnowledgeError(problems)
    return KnowledgeBase(entries)


def _display_path(file: Path, base: Path) -> str:
    try:
        return str(file.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(file)


def _load_file(file: Path, shown: str) -> tuple[list[Entry], list[KnowledgeProblem]]:
    # YAML and the validator load only when the cache can't answer
    from doctor.kb.validate import validate_entry
    from doctor.kb.yamlnodes import YamlSyntaxError, load_with_marks, mark_for

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [KnowledgeProblem(shown, None, None, f"cannot read: {exc}")]
    try:
        data, marks = load_with_marks(text)
    except YamlSyntaxError as exc:
        return [], [KnowledgeProblem(shown, exc.line, exc.column, f"YAML syntax: {exc.message}")]
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], [KnowledgeProblem(shown, 1, 1, "a knowledge file is a YAML list of entries (start each with '- id: ...')")]
    entries: list[Entry] = []
    problems: list[KnowledgeProblem] = []
    for i, raw in enumerate(data):
        entry_problems = validate_entry(raw, (i,))
        for problem in entry_problems:
            mark = mark_for(marks, problem.path, key=problem.at_key)
            label = f"entry {raw.get('id', '#' + str(i + 1))}" if isinstance(raw, dict) else f"entry #{i + 1}"
            problems.append(KnowledgeProblem(shown, mark.line if mark else None, mark.column if mark else None,
                                             f"{label}: {problem.message}"))
        if not entry_problems:
            mark = mark_for(marks, (i,))
            entries.append(entry_from_dict(raw, shown, mark.line if mark else 0))
    return entries, problems
