"""Atomic file writes: a temp file in the same folder, fsync, then one rename.

At every instant the target path holds either the old content or the new, never a mix:
a crash, a kill -9 or a full disk midway leaves the original intact, and an error, Ctrl-C or
SIGTERM (doctor.interrupts) also removes the temp file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from doctor.interrupts import deferred

TEMP_MARK = ".doctor-tmp-"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file; on a clean exit it replaces `path` in one rename.

    The result gets permission bits `mode` when given, else those of the file it replaces;
    a new file without `mode` stays private to its owner (0600, as the temp file is made).
    """
    target = Path(path)
    tmp: str | None = None
    ok = False
    try:
        with deferred():   # Ctrl-C or SIGTERM waits until the temp file is known to `finally`
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARK}", dir=target.parent or ".")
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif target.exists():
            # keep the original's permission bits; a fix must not make a file executable or private
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        ok = True
    finally:
        if not ok and tmp is not None:   # an error, or an interruption: the target stays as it was
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a folder be opened.
    with contextlib.suppress(OSError):
        fd = os.open(folder or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
