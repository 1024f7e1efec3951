"""Linear-time regular expressions for knowledge patterns: RE2 when installed.

RE2 guarantees time linear in the input, so a pathological pattern in the knowledge base
cannot hang `explain` on a 50 MB log. Without google-re2 we fall back to `re` and rely on
the test that checks every shipped pattern against adversarial input.
"""
from __future__ import annotations

import functools
from typing import Any, Protocol

try:
    import re2 as _re2  # google-re2

    HAVE_RE2 = True
except ImportError:  # pragma: no cover - exercised only where google-re2 is missing
    _re2 = None
    HAVE_RE2 = False

import re as _re


class Pattern(Protocol):
    def search(self, text: str) -> Any: ...


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Pattern:
    """Compile case-insensitively; patterns are RE2 syntax (no backreferences or lookaround)."""
    if HAVE_RE2:
        options = _re2.Options()
        options.case_sensitive = False
        options.log_errors = False
        return _re2.compile(pattern, options)
    return _re.compile(pattern, _re.IGNORECASE)


def pattern_problem(pattern: str) -> str | None:
    """Why a pattern can't be used, or None. Lookaround and backreferences are refused even
    where RE2 is missing, so the knowledge base stays portable."""
    for token, name in (("(?=", "lookahead"), ("(?!", "lookahead"), ("(?<=", "lookbehind"),
                        ("(?<!", "lookbehind")):
        if token in pattern:
            return f"{name} '{token}' is not allowed: patterns must be RE2 (linear-time)"
    if _re.search(r"\\[1-9]", pattern):
        return "backreferences are not allowed: patterns must be RE2 (linear-time)"
    try:
        compile_pattern(pattern)
        _re.compile(pattern)
    except Exception as exc:  # both engines raise their own error types
        return f"invalid regular expression: {exc}"
    return None


# `.{0,40}` or `[^,]{0,10}`: each bounded gap is N states of the set's automaton
_BOUNDED_GAP = _re.compile(r"(\.|\[[^\]]*\])\{0,\d+\}")


def loosened(pattern: str) -> str:
    """The pattern with its bounded gaps unbounded (`.{0,40}` -> `.*`): it matches every line
    the pattern matches, and its automaton is far smaller."""
    return _BOUNDED_GAP.sub(lambda m: m.group(1) + "*", pattern)


class PatternSet:
    """Many patterns matched in one pass per line (RE2::Set), giving the indices that hit.

    The set holds each pattern with its bounded gaps loosened (compiling dozens of `.{0,40}`
    gaps into one automaton cost more than the rest of a short explain); a hit of a loosened
    pattern is confirmed with the pattern itself, so the answers are the pattern's own."""

    def __init__(self, patterns: list[str]):
        self.patterns = patterns
        self._set = None
        self._confirm: dict[int, str] = {}
        if HAVE_RE2 and patterns:
            options = _re2.Options()
            options.case_sensitive = False
            options.log_errors = False
            s = _re2.Set.SearchSet(options)
            for i, p in enumerate(patterns):
                loose = loosened(p)
                if loose != p:
                    self._confirm[i] = p
                s.Add(loose)
            s.Compile()
            self._set = s
        self._compiled = [compile_pattern(p) for p in patterns] if self._set is None else None

    def match(self, line: str) -> list[int]:
        if self._set is not None:
            hits = self._set.Match(line) or ()
            return [i for i in hits if i not in self._confirm or compile_pattern(self._confirm[i]).search(line)]
        return [i for i, c in enumerate(self._compiled or []) if c.search(line)]
