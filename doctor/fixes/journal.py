"""A journal of applied fixes, so `unsloth-doctor undo` can put everything back.

One `scan --fix` run is one transaction: `with Journal().transaction(label) as tx:` opens it,
every fixer writes through `tx`, and a clean exit commits it. Transactions are numbered by a
sequence that only grows, so undo takes the newest first however close together two runs
started. A transaction is a list of steps in the order they happened: before a file is first
replaced its original is kept as a backup (a hard link when possible, else a copy) in a
`.unsloth-doctor-backup/<id>/` folder next to it; a file it creates is recorded so undo can
remove it. Undo walks the steps backwards, refuses to touch a file that changed since the fix
wrote it, and removes the backup folders it emptied. A run that raises, Ctrl-C included, is
rolled back on the spot, so no transaction is left open by anything short of a kill.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator

from doctor.atomic import atomic_write_bytes
from doctor.paths import state_dir

BACKUP_DIR = ".unsloth-doctor-backup"
OPEN, COMMITTED, UNDONE, ROLLED_BACK = "open", "committed", "undone", "rolled back"
UNDOABLE = (OPEN, COMMITTED)     # an open one was killed midway: undo finishes the job
CREATE, REPLACE = "create", "replace"
FORMAT = 2                       # 1: "replaced"/"created" lists, named by time and a random suffix


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path_key(path: str | os.PathLike[str]) -> str:
    """How the journal names a file: absolute, symlinks resolved, so two spellings match."""
    return str(Path(path).resolve())


class UndoError(Exception):
    pass


@dataclass
class Transaction:
    journal: "Journal"
    seq: int
    id: str
    label: str
    created_at: float
    file: Path
    steps: list[dict[str, Any]] = field(default_factory=list)   # op, path, backup?, source?, digest?
    status: str = OPEN

    # -- recording, before a file is written ----------------------------------------------

    def step_for(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        key = path_key(path)
        return next((s for s in self.steps if s["path"] == key), None)

    def backup(self, path: str | os.PathLike[str], source: str | None = None) -> Path | None:
        """Keep the original of `path` before it is replaced; returns where it was kept.

        Only the first touch in a transaction counts: that is the state undo goes back to. A
        later call returns the same backup (None when this transaction created the file)."""
        earlier = self.step_for(path)
        if earlier is not None:
            return Path(earlier["backup"]) if earlier["op"] == REPLACE else None
        original = Path(path_key(path))
        kept = self._backup_name(original)
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(original, kept)   # no copy of a large dataset: the old inode stays alive
        except OSError:
            shutil.copy2(original, kept)
        self._record({"op": REPLACE, "path": str(original), "backup": str(kept)}, source)
        return kept

    def created(self, path: str | os.PathLike[str], source: str | None = None) -> None:
        """Record a file this fix creates, so undo removes it."""
        if self.step_for(path) is None:
            self._record({"op": CREATE, "path": path_key(path)}, source)

    def prepare(self, path: str | os.PathLike[str], source: str | None = None) -> Path | None:
        """Record what undo needs before `path` is written (replaced or created)."""
        if os.path.lexists(path):
            return self.backup(path, source)
        self.created(path, source)
        return None

    def write(self, path: str | os.PathLike[str], data: bytes, source: str | None = None) -> None:
        """Replace or create `path` atomically, recording what undo needs."""
        self.prepare(path, source)
        atomic_write_bytes(path, data)

    def source_of(self, path: str | os.PathLike[str]) -> tuple[bool, str | None]:
        """Whether this transaction wrote `path` yet, and from which input."""
        step = self.step_for(path)
        return (step is not None, step.get("source") if step else None)

    def _backup_name(self, original: Path) -> Path:
        folder = original.parent / BACKUP_DIR / self.id
        kept, n = folder / original.name, 1
        while os.path.lexists(kept):   # a stale folder of a journal deleted since: never overwrite it
            kept, n = folder / f"{original.name}.{n}", n + 1
        return kept

    def _record(self, step: dict[str, Any], source: str | None) -> None:
        if source is not None:
            step["source"] = path_key(source)
        self.steps.append(step)
        self._save()   # before the write: a kill between the two leaves a step undo can finish

    # -- closing ---------------------------------------------------------------------------

    def commit(self) -> None:
        if not self.steps:   # nothing was written: no entry for undo to stop at
            self._discard()
            return
        # Remember what we wrote, so undo can tell if someone edited it afterwards.
        for step in self.steps:
            p = Path(step["path"])
            step["digest"] = file_digest(p) if p.is_file() else ""
        self.status = COMMITTED
        self._save()

    def rollback(self) -> list[str]:
        """Put back everything this transaction did so far (an interrupted or failed run)."""
        if not self.steps:
            self._discard()
            return []
        done = revert(self.steps, force=True, save=self._save)
        self.status = ROLLED_BACK
        self._save()
        return done

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Steps recorded inside are reverted and forgotten if the block raises."""
        mark = len(self.steps)
        try:
            yield
        except BaseException:
            revert(self.steps[mark:], force=True)
            del self.steps[mark:]
            self._save()
            raise

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
            return
        # An exception or Ctrl-C midway: the run is all or nothing. If the rollback itself
        # fails, the entry stays open and `undo` finishes it.
        with contextlib.suppress(Exception):
            self.rollback()

    # -- storage ---------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "seq": self.seq, "id": self.id, "label": self.label,
                "created_at": self.created_at, "status": self.status, "steps": self.steps,
                # the lists an older doctor reads, and `undo --list` counts
                "replaced": [s for s in self.steps if s["op"] == REPLACE],
                "created": [s for s in self.steps if s["op"] == CREATE]}

    def _save(self) -> None:
        self.journal.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.file, json.dumps(self.as_dict(), indent=2).encode())

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()


def revert(steps: list[dict[str, Any]], force: bool, save: Any = None) -> list[str]:
    """Undo `steps`, newest first; returns a line per file. Without `force`, refuses (before
    touching anything) a file that changed since the fix wrote it."""
    todo = [s for s in reversed(steps) if not s.get("undone")]
    problems = [] if force else [p for p in map(_problem, todo) if p]
    if problems:
        raise UndoError("; ".join(problems) + " (use --force to restore anyway)")
    done = []
    for step in todo:
        p = Path(step["path"])
        if step["op"] == CREATE:
            if os.path.lexists(p):
                p.unlink()
                done.append(f"removed {p}")
        else:
            kept = Path(step["backup"])
            if not os.path.lexists(kept):
                done.append(f"could not restore {p}: its backup {kept} is gone")
            elif os.path.lexists(p) and os.path.samefile(kept, p):
                kept.unlink()            # never rewritten (a failed write): nothing to put back
            else:
                os.replace(kept, p)
                done.append(f"restored {p}")
            _remove_empty(kept.parent)
        step["undone"] = True
        if save is not None:
            save()   # a second Ctrl-C midway leaves a journal that says how far undo got
    return done


def _problem(step: dict[str, Any]) -> str | None:
    p = Path(step["path"])
    if step["op"] == REPLACE and not os.path.lexists(step["backup"]):
        return f"the backup of {p} is gone ({step['backup']})"
    if "digest" not in step:          # never committed (killed midway): nothing to compare with
        return None
    now = file_digest(p) if p.is_file() else ""
    if now == step["digest"] or (not now and not os.path.lexists(p)):
        return None                   # unchanged, or deleted since (nothing of the user's to lose)
    return f"{p} changed after the fix was applied"


class Journal:
    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root else state_dir() / "journal"

    def begin(self, label: str) -> Transaction:
        """Open a transaction; use it with `with`, or call commit() yourself."""
        seq, file = self._claim()
        tx = Transaction(self, seq, f"{seq:06d}-{time.strftime('%Y%m%dT%H%M%S')}", label, time.time(), file)
        tx._save()
        return tx

    def transaction(self, label: str) -> Transaction:
        """`with journal.transaction(label) as tx:` commits on success, rolls back on any exception."""
        return self.begin(label)

    def _claim(self) -> tuple[int, Path]:
        # The next number, claimed by creating its file exclusively: two doctors running at
        # once never share one.
        self.root.mkdir(parents=True, exist_ok=True)
        seq = max((int(f.stem) for f in self.root.glob("*.json") if f.stem.isdigit()), default=0) + 1
        while True:
            file = self.root / f"{seq:06d}.json"
            try:
                os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                return seq, file
            except FileExistsError:
                seq += 1

    def _load(self) -> list[Transaction]:
        if not self.root.is_dir():
            return []
        out = []
        for f in self.root.glob("*.json"):
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue   # a number just claimed, not written yet; or not ours
            if isinstance(data, dict) and "id" in data:
                out.append(_from_dict(self, f, data))
        return sorted(out, key=lambda t: (t.seq, t.created_at))

    def transactions(self) -> list[dict[str, Any]]:
        """Every transaction, oldest first."""
        return [t.as_dict() for t in self._load()]

    def _last_undoable(self) -> Transaction | None:
        candidates = [t for t in self._load() if t.status in UNDOABLE]
        return candidates[-1] if candidates else None

    def undo_last(self, force: bool = False) -> list[str]:
        """Restore the last transaction, its steps newest first; returns a line per file."""
        tx = self._last_undoable()
        if tx is None:
            raise UndoError("nothing to undo: no fixes have been applied")
        done = revert(tx.steps, force, save=tx._save)
        tx.status = UNDONE
        tx._save()
        return done

    def last_source(self, path: str | os.PathLike[str]) -> str | None:
        """The input whose repair last wrote `path`, per transactions not undone; else None."""
        key = path_key(path)
        for tx in reversed(self._load()):
            if tx.status not in UNDOABLE:
                continue
            step = next((s for s in reversed(tx.steps) if s["path"] == key and not s.get("undone")), None)
            if step is not None:
                return step.get("source")
        return None


def _from_dict(journal: Journal, file: Path, data: dict[str, Any]) -> Transaction:
    if data.get("format") == FORMAT:
        steps = data.get("steps", [])
    else:
        # Format 1: the old undo removed created files, then restored replaced ones.
        label = str(data.get("label", ""))
        source = label[len("fix dataset "):] if label.startswith("fix dataset ") else None
        steps = [{"op": REPLACE, **s} for s in data.get("replaced", [])] + \
                [{"op": CREATE, **s} for s in data.get("created", [])]
        for s in steps:
            if source and s["path"] != path_key(source):
                s.setdefault("source", path_key(source))
    return Transaction(journal, int(data.get("seq", 0)), str(data["id"]), str(data.get("label", "")),
                       float(data.get("created_at", 0.0)), file, steps, str(data.get("status", OPEN)))


def _remove_empty(folder: Path) -> None:
    # the transaction's backup folder, then .unsloth-doctor-backup itself, if nothing else is in them
    for f in (folder, folder.parent):
        try:
            f.rmdir()
        except OSError:
            return
