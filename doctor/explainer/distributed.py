"""torchrun's ChildFailedError summary: which rank failed first, with what exit code."""
from __future__ import annotations

from doctor.explainer.lazyre import LazyRE
from doctor.results.explain import LogLine, RankFailure

_RANK = LazyRE(r"^\s*rank\s*:\s*(\d+)")
_EXITCODE = LazyRE(r"^\s*exitcode\s*:\s*(-?\d+)")
_SIGNAL = LazyRE(r"Signal (\d+) \((SIG[A-Z0-9]+)\)")


def parse_failures(lines: list[LogLine]) -> list[RankFailure]:
    """Each rank in the "Failures:" and "Root Cause (first observed failure):" sections."""
    out: list[RankFailure] = []
    section: str | None = None
    rank: int | None = None
    exitcode: int | None = None
    signal: str | None = None

    def flush() -> None:
        nonlocal rank, exitcode, signal
        if rank is not None:
            out.append(RankFailure(rank, exitcode, section == "root", signal))
        rank, exitcode, signal = None, None, None

    for line in lines:
        text = line.text
        if "Root Cause (first observed failure)" in text:
            flush()
            section = "root"
        elif text.strip() == "Failures:":
            flush()
            section = "failures"
        elif section is None:
            continue
        elif text.startswith("=====") or text.startswith("-----"):
            flush()
            if text.startswith("====="):
                section = None   # the end of the summary
        elif "rank" in text and (m := _RANK.search(text)):
            flush()
            rank = int(m.group(1))
        elif "exitcode" in text and (m := _EXITCODE.search(text)):
            exitcode = int(m.group(1))
        elif "Signal" in text and (m := _SIGNAL.search(text)):
            signal = m.group(2)
    flush()
    return out
