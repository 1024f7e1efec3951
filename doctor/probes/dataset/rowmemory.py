"""Which rows repeat an earlier row, and where it first appeared: the exact-duplicate check.

A row is known by the hash of its raw bytes. During the scan, hashes are only appended to
a list (runs of consecutive lines say which line each came from); the duplicates are found
once, at the end, by building one set in a tight C loop. Checking every batch against a
growing set cost a cache miss per row in the middle of the parsing, which was the largest
part of the scan's own cost. Memory stays bounded: past `capacity` rows, the remembered ones
are frozen into a set and later rows are checked against it but not remembered.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Iterator


class RowMemory:
    def __init__(self, capacity: int, keep: int = 20) -> None:
        self.capacity = capacity
        self.keep = keep                     # duplicates listed with their lines; the rest counted
        self.full = False                    # some rows were not remembered (capacity reached)
        self._late_count = 0
        self._keys: list[int] = []           # hashes in line order
        # (position in _keys, its line): the rows from there to the next run are consecutive lines
        self._runs: list[tuple[int, int]] = []
        self._late: list[tuple[int, int]] = []   # (line, first line) found once the memory was full
        self._set: set[int] | None = None        # the remembered hashes, once needed
        self._index: dict[int, int] | None = None  # hash -> first line, once needed

    def __len__(self) -> int:
        return len(self._keys)

    def add_batch(self, keys: list[int], first_line: int) -> None:
        """Rows first_line, first_line + 1, ... have these hashes."""
        room = self.capacity - len(self._keys)
        if room >= len(keys):
            self._remember(keys, first_line)
            return
        if room > 0:
            self._remember(keys[:room], first_line)
            keys, first_line = keys[room:], first_line + room
        self.full = True
        known = self.hash_set()
        if known.isdisjoint(keys):
            return
        index = self.index()
        for i, key in enumerate(keys):
            if key in known:
                self._late_count += 1
                if len(self._late) < self.keep:
                    self._late.append((first_line + i, index[key]))

    def add(self, key: int, line: int) -> None:
        self.add_batch([key], line)

    def _remember(self, keys: list[int], first_line: int) -> None:
        if not (self._runs and self._line_after_last() == first_line):
            self._runs.append((len(self._keys), first_line))
        self._keys += keys
        if self._set is not None:
            self._set.update(keys)
        if self._index is not None:
            for key, line in zip(keys, range(first_line, first_line + len(keys))):
                self._index.setdefault(key, line)

    def _line_after_last(self) -> int:
        at, line = self._runs[-1]
        return line + len(self._keys) - at

    def _lines(self) -> Iterator[int]:
        ends = [at for at, _ in self._runs[1:]] + [len(self._keys)]
        return chain.from_iterable(range(line, line + end - at) for (at, line), end in zip(self._runs, ends))

    def duplicates(self) -> tuple[list[tuple[int, int]], int]:
        """The first `keep` repeated rows as (line, line of the first occurrence), in line
        order, and how many there are in all."""
        shown: list[tuple[int, int]] = []
        count = 0
        if len(self.hash_set()) != len(self._keys):     # the common case, clean data, stops here
            first = self.index()
            for key, line in zip(self._keys, self._lines()):
                seen = first[key]
                if seen != line:
                    count += 1
                    if len(shown) < self.keep:
                        shown.append((line, seen))
        # Rows past the capacity come after every remembered row, so the order holds.
        shown += self._late[:max(0, self.keep - len(shown))]
        return shown, count + self._late_count

    # Across ranges (--jobs) and for the first lines ----------------------------------------

    def hash_set(self) -> set[int]:
        if self._set is None:
            self._set = set(self._keys)
        return self._set

    def common(self, other: "RowMemory") -> set[int]:
        """Hashes both memories hold."""
        return self.hash_set().intersection(other._keys)

    def index(self) -> dict[int, int]:
        """hash -> line of its first occurrence."""
        if self._index is None:
            # Reversed, so that the earliest line of a repeated hash is the one that stays.
            self._index = dict(zip(reversed(self._keys), reversed(list(self._lines()))))
        return self._index

    def __getstate__(self) -> dict[str, Any]:
        # Only the list and runs travel; the set and dict are rebuilt on the other side if used.
        return {"capacity": self.capacity, "keep": self.keep, "full": self.full, "keys": self._keys,
                "runs": self._runs, "late": self._late, "late_count": self._late_count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity, self.keep, self.full = state["capacity"], state["keep"], state["full"]
        self._keys, self._runs, self._late = state["keys"], state["runs"], state["late"]
        self._late_count = state["late_count"]
        self._set = None
        self._index = None
