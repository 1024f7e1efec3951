"""A traceback cut before its error line still says where it was: its innermost frame.

When that frame is in a package the raise-site index covers, the errors that function
raises are the likely candidates, and that file is where to look. This is a lead, never a
certainty: the confidence stays at LEAD.
"""
from __future__ import annotations

import re

from doctor.explainer.raiseindex import (ALL_PACKAGES, PACKAGES, RaiseIndex, default_index,
                                         second_tier_index, sites_in, to_result)
from doctor.results.explain import ExceptionInfo, RaiseSite

LEAD = 0.5
_SITE_DIR = re.compile(r"[/\\](?:site|dist)-packages[/\\]")


def relative_file(path: str) -> str | None:
    """`unsloth/save.py` from `/usr/lib/python3.10/site-packages/unsloth/save.py`."""
    parts = _SITE_DIR.split(path.replace("\\", "/"))
    return parts[-1] if len(parts) > 1 else None


def cut_traceback_sites(final: ExceptionInfo, index: RaiseIndex | None = None) -> tuple[list[RaiseSite], str | None]:
    if not final.frames:
        return [], None
    frame = final.frames[-1]
    rel = relative_file(frame.file)
    if rel is None or frame.package not in ALL_PACKAGES:
        return [], None
    if index is None:
        index = default_index() if frame.package in PACKAGES else second_tier_index()
    version = index.version_of(frame.package) or "?"
    found = sites_in(index, rel, frame.function)
    note = (f"The traceback stops inside {frame.package}'s `{frame.function}` ({rel}) before its error "
            "line" + (f"; that function raises {len(found)} error(s) in {frame.package} {version}, listed "
                      "under 'Raised in the source'." if found else "; paste the end of the log for the error itself."))
    if found:
        return [to_result(item, None, LEAD) for item in found[:3]], note
    where = RaiseSite(frame.package, version, rel, frame.line or 0, frame.function, "frame", "",
                      "", "", _category(rel), None, LEAD - 0.05)
    return [where], note


def _category(rel: str) -> str:
    from doctor.explainer.raiseindex import category

    return category(rel)
