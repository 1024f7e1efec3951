"""RE2 patterns compiled on first use: most logs never reach the build-error, OOM or
torchrun patterns, and `explain` must start fast."""
from __future__ import annotations

from typing import Any

import re2


class LazyRE:
    __slots__ = ("pattern", "_compiled")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: Any = None

    def search(self, text: str) -> Any:
        if self._compiled is None:
            self._compiled = re2.compile(self.pattern)
        return self._compiled.search(text)
