"""A journal of applied fixes, so `unsloth-doctor undo` can put everything back.

Each `--fix` run is one transaction. Before a file is replaced, its original is kept as a
backup (a hard link when possible, else a copy); files a fix creates are recorded so undo can
remove them. Undo refuses to touch a file that changed since the fix wrote it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctor.atomic import atomic_write_bytes
from doctor.paths import state_dir


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class UndoError(Exception):
    pass


@dataclass
class Transaction:
    journal: "Journal"
    id: str
    label: str
    created_at: float
    replaced_files: list[dict[str, str]] = field(default_factory=list)   # path, backup
    created_files: list[dict[str, str]] = field(default_factory=list)    # path
    status: str = "open"

    @property
    def file(self) -> Path:
        return self.journal.root / f"{self.id}.json"

    def backup(self, path: str | os.PathLike[str]) -> Path:
        """Keep the original of `path` before it is replaced; returns where it was kept."""
        original = Path(path).resolve()
        folder = original.parent / ".unsloth-doctor-backup" / self.id
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / original.name
        try:
            os.link(original, kept)   # no copy of a large dataset: the old inode stays alive
        except OSError:
            shutil.copy2(original, kept)
        self.replaced_files.append({"path": str(original), "backup": str(kept)})
        self._save()
        return kept

    def created(self, path: str | os.PathLike[str]) -> None:
        """Record a file this fix creates, so undo removes it."""
        self.created_files.append({"path": str(Path(path).resolve())})
        self._save()

    def write(self, path: str | os.PathLike[str], data: bytes) -> None:
        """Replace or create `path` atomically, recording what undo needs."""
        target = Path(path)
        if target.exists():
            self.backup(target)
        else:
            self.created(target)
        atomic_write_bytes(target, data)

    def commit(self) -> None:
        # Remember what we wrote, so undo can tell if someone edited it afterwards.
        for item in [*self.replaced_files, *self.created_files]:
            p = Path(item["path"])
            item["digest"] = file_digest(p) if p.exists() else ""
        self.status = "committed"
        self._save()

    def _save(self) -> None:
        self.journal.root.mkdir(parents=True, exist_ok=True)
        data = {"id": self.id, "label": self.label, "created_at": self.created_at, "status": self.status,
                "replaced": self.replaced_files, "created": self.created_files}
        atomic_write_bytes(self.file, json.dumps(data, indent=2).encode())


class Journal:
    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root else state_dir() / "journal"

    def begin(self, label: str) -> Transaction:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        tx = Transaction(self, f"{stamp}-{uuid.uuid4().hex[:8]}", label, time.time())
        tx._save()
        return tx

    def transactions(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for f in sorted(self.root.glob("*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def last_undoable(self) -> dict[str, Any] | None:
        candidates = [t for t in self.transactions() if t["status"] in ("committed", "open")]
        return candidates[-1] if candidates else None

    def undo_last(self, force: bool = False) -> list[str]:
        """Restore the last transaction; returns a line per file put back."""
        tx = self.last_undoable()
        if tx is None:
            raise UndoError("nothing to undo: no fixes have been applied")
        problems = []
        if not force:
            for item in [*tx["replaced"], *tx["created"]]:
                p = Path(item["path"])
                if item.get("digest") and p.exists() and file_digest(p) != item["digest"]:
                    problems.append(f"{p} changed after the fix was applied")
        if problems:
            raise UndoError("; ".join(problems) + " (use --force to restore anyway)")
        done = []
        for item in reversed(tx["created"]):
            p = Path(item["path"])
            if p.exists():
                p.unlink()
                done.append(f"removed {p}")
        for item in reversed(tx["replaced"]):
            p, kept = Path(item["path"]), Path(item["backup"])
            if not kept.exists():
                raise UndoError(f"the backup of {p} is gone ({kept})")
            os.replace(kept, p)
            done.append(f"restored {p}")
            _remove_empty(kept.parent)
        tx["status"] = "undone"
        atomic_write_bytes(self.root / f"{tx['id']}.json", json.dumps(tx, indent=2).encode())
        return done


def _remove_empty(folder: Path) -> None:
    for f in (folder, folder.parent):
        try:
            f.rmdir()
        except OSError:
            return
