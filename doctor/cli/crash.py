"""When the doctor itself fails: say so plainly, keep the traceback in a crash log, exit 3."""
from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from typing import Sequence

from doctor.version import __version__


def report_crash(exc: BaseException, argv: Sequence[str]) -> int:
    log = None
    try:
        from doctor.paths import state_dir

        folder = state_dir() / "crashes"
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        log.write_text(
            f"unsloth-doctor {__version__}\npython {sys.version}\nplatform {platform.platform()}\n"
            f"argv {list(argv)}\n\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            encoding="utf-8",
        )
    except OSError:
        log = None
    where = f" The details are in {log}." if log else ""
    print(
        f"unsloth-doctor: internal error: {type(exc).__name__}: {exc}\n"
        f"This is a bug in unsloth-doctor, not a problem with your setup.{where} "
        "Please attach that file to a bug report.",
        file=sys.stderr,
    )
    return 3
