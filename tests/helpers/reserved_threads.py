"""Public issue threads reserved for the final, blind judgement of `explain`.

They must stay out of the traceback corpus, the knowledge entries' examples and refs, and
every test input, so that the judgement measures generalisation and not memory.
"""
from __future__ import annotations

import re

_UNSLOTH_ISSUES = (
    10018, 1026, 1175, 1237, 1308, 1313, 1495, 1723, 1772, 200, 2010, 2024, 2044, 212, 2225,
    237, 2499, 2597, 268, 2783, 2791, 2863, 2895, 3145, 3205, 321, 3283, 3293, 3542, 356, 362,
    3647, 3665, 381, 3893, 3915, 3977, 4098, 412, 4202, 446, 465, 7, 8580, 964, 978, 992,
)

RESERVED: frozenset[tuple[str, str, int]] = frozenset(
    {("unslothai/unsloth", "issues", n) for n in _UNSLOTH_ISSUES}
    | {("unslothai/unsloth", "pull", 3578)}
    | {("hiyouga/llamafactory", "issues", 2025), ("hiyouga/llamafactory", "issues", 7175)}
)

_URL = re.compile(r"github\.com/([\w.-]+/[\w.-]+)/(issues|pull)/(\d+)", re.IGNORECASE)


def reserved_urls_in(text: str) -> list[str]:
    """Every GitHub issue/PR address in `text` that names a reserved thread."""
    found = []
    for m in _URL.finditer(text):
        key = (m.group(1).lower(), m.group(2).lower(), int(m.group(3)))
        if key in RESERVED:
            found.append(m.group(0))
    return found
