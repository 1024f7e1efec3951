"""The guard every probe runs behind (flutter doctor's per-validator guard): whatever a probe
raises becomes a located finding and a ✗ line that says why, and the rest of the scan goes on.

- an OSError about a file (permission denied, a folder where a file was expected, a file that
  vanished) is the input's problem, not ours: DOCTOR-TARGET-UNREADABLE at that file;
- an ImportError is a module the check needs and cannot import: DOCTOR-PROBE-MISSING-MODULE;
- anything else is a bug of ours: DOCTOR-PROBE-CRASHED, with the traceback's tail as evidence.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable

from doctor.findings import AreaStatus, Evidence, Location, Observation
from doctor.probes.base import ProbeResult

UNREADABLE = "DOCTOR-TARGET-UNREADABLE"
MISSING_MODULE = "DOCTOR-PROBE-MISSING-MODULE"
CRASHED = "DOCTOR-PROBE-CRASHED"


def guarded(label: str, area: str, fn: Callable[[], ProbeResult], path: str | None = None) -> ProbeResult:
    try:
        return fn()
    except OSError as exc:
        if exc.filename is None and path is None:
            return _crashed(label, area, exc, path)
        where = str(exc.filename) if exc.filename is not None else str(path)
        reason = exc.strerror or type(exc).__name__
        obs = Observation(UNREADABLE, Location(where), {"probe": label, "path": where, "reason": reason})
        return ProbeResult(observations=[obs], areas=[AreaStatus(area, label, f"not read: {reason}", ran=False, path=path)])
    except ImportError as exc:
        module = exc.name or str(exc)
        obs = Observation(MISSING_MODULE, Location(path) if path else None, {"probe": label, "module": module})
        return ProbeResult(observations=[obs],
                           areas=[AreaStatus(area, label, f"not checked: needs {module}", ran=False, path=path)])
    except Exception as exc:  # noqa: BLE001 - the guard exists to contain anything
        return _crashed(label, area, exc, path)


def _crashed(label: str, area: str, exc: BaseException, path: str | None) -> ProbeResult:
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    obs = Observation(CRASHED, Location(path) if path else None,
                      values={"probe": label, "error": f"{type(exc).__name__}: {exc}"},
                      evidence=(Evidence("observation", "traceback", tail.strip()),))
    return ProbeResult(observations=[obs], areas=[AreaStatus(area, label, "not checked: the check failed",
                                                             ran=False, path=path)])


def _raising_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: a probe that raises (options: `error` = RuntimeError | PermissionError |
    ImportError) the example's text must come back as the entry's finding."""
    kind = options.get("error", "RuntimeError")

    def probe() -> ProbeResult:
        if not text:
            return ProbeResult()
        if kind == "PermissionError":
            raise PermissionError(13, "Permission denied", text)
        if kind == "ImportError":
            raise ImportError(f"No module named {text!r}", name=text)
        raise RuntimeError(text)
    return guarded("Example", "env", probe, path=options.get("path")).observations


EXAMPLES = {"doctor.crash": _raising_example}
