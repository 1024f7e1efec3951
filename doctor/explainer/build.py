"""Errors from build tools that Unsloth's stack runs: gcc, nvcc/ptxas (Triton), cmake and
make (llama.cpp for GGUF export), the linker, ninja and pip wheel builds."""
from __future__ import annotations

from doctor.explainer.lazyre import LazyRE
from doctor.results.explain import BuildError, LogLine

# (tool, pattern); the message is group 1. Tried only on lines that pass _cheap().
_PATTERNS: tuple[tuple[str, LazyRE], ...] = tuple(
    (tool, LazyRE(p)) for tool, p in (
        ("ptxas", r"^\s*ptxas (?:fatal|error)\s*:\s*(.+)$"),
        ("nvcc", r"^\s*nvcc (?:fatal|error)\s*:\s*(.+)$"),
        ("cmake", r"\b(CMake Error\b.*)$"),        # also behind PowerShell's `cmake : `
        ("make", r"^\s*g?make(?:\[\d+\])?: \*\*\* (.+)$"),
        ("ld", r"^\s*((?:collect2: error: ld returned.*|\S*/?ld(?:\.\w+)?: (?:cannot find|error).*))$"),
        ("ninja", r"^\s*(ninja: build stopped.*|FAILED: .+)$"),
        ("gcc", r"^\s*(\S+?:\d+(?::\d+)?: (?:fatal )?error: .+)$"),
        ("msvc", r"^\s*(\S.*?\(\d+\)\s*: (?:fatal )?error [A-Z]+\d+: .+)$"),   # cuda_utils.c(165): error C2143
        ("msvc", r"^\s*(LINK : fatal error LNK\d+: .+)$"),
        ("gcc", r"^\s*((?:gcc|g\+\+|cc1plus|cc1|clang|c\+\+|cl)(?:\.exe)?: (?:fatal )?error: .+)$"),
        ("pip", r"^\s*(ERROR: (?:Failed building wheel|Could not build wheels|Could not find a version"
                r"|No matching distribution|Failed to build).+)$"),
        ("pip", r"^\s*(error: (?:command '.+' failed.*|subprocess-exited-with-error|"
                r"Microsoft Visual C\+\+ .+ is required.*))$"),
    )
)


def find_build_errors(lines: list[LogLine]) -> list[BuildError]:
    out: list[BuildError] = []
    for idx, line in enumerate(lines):
        text = line.text
        if not _cheap(text):
            continue
        for tool, pattern in _PATTERNS:
            m = pattern.search(text)
            if m:
                message = m.group(1).strip()
                if tool == "cmake":
                    message = _cmake_message(lines, idx, message)
                out.append(BuildError(tool, message, line.no))
                break
    return out


def _cheap(text: str) -> bool:
    """Most lines have none of these; skip them before any regex."""
    return ("rror" in text or "fatal" in text or "***" in text or "FAILED" in text
            or "ninja" in text or "cannot find" in text)


def _cmake_message(lines: list[LogLine], idx: int, head: str) -> str:
    """CMake puts the real message on the indented lines under `CMake Error at ...:`."""
    body = []
    for nxt in lines[idx + 1: idx + 8]:
        if not nxt.text.strip():
            if body:
                break
            continue
        if not nxt.text.startswith(" "):
            break
        body.append(nxt.text.strip())
    return f"{head} {' '.join(body)}".strip() if body else head
