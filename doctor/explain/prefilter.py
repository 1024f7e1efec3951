"""Choose the lines of a log worth parsing, in one streaming pass with bounded memory.

A small paste is kept whole. A big log (a whole training run) is cut down to the lines that
look like errors, tracebacks or build output, a few lines of context around each, the head
and the tail. The search for such lines is one RE2 scan per chunk (linear time, C speed);
Python only touches the lines that matched.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import IO, Iterable, Iterator

import re2

SMALL_BYTES = 512 * 1024      # below this the whole text is kept
CHUNK_BYTES = 1 << 20
HEAD_LINES = 40               # the command line, the versions banner
TAIL_LINES = 400              # the failure is usually at the end
BEFORE, AFTER = 1, 5          # context kept around each interesting line
MAX_KEPT_HEAD = 4000          # the first interesting lines, kept for good
MAX_KEPT_LATER = 8000         # then a sliding window of the latest ones
MAX_REPEATS = 20              # a line (digits ignored) seen more often is noise
MAX_LINE_BYTES = 16 * 1024    # a tqdm line of a million \r updates is cut to its end

_INTERESTING = re2.compile(
    rb"(?im)traceback|error|exception|fatal|fail|killed|segmentation fault|core dumped"
    rb"|out of memory|warning|unsloth|\bnan\b|abort|^\s*file |cell in \[|in <module>"
    rb"|-+> |ipython-input|root cause|exitcode|\brank\b|\*\*\*|cmake|ptxas|nvcc|assert"
    rb"|the above exception|during handling|not found|no such file|denied|cannot|can't"
)
_DIGITS = b"0123456789"


@dataclass
class Selection:
    lines: list[tuple[int, str]]   # (1-based original line number, raw text)
    total_lines: int
    dropped: int


def select_text(text: str) -> Selection:
    """Lines of a pasted text: all of them when small, the interesting ones when big."""
    if len(text) <= SMALL_BYTES:
        raw = text.split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        return Selection([(i + 1, line) for i, line in enumerate(raw)], len(raw), 0)
    return select_chunks([text.encode("utf-8", "surrogatepass")])


def select_stream(stream: IO[bytes]) -> Selection:
    return select_chunks(iter(lambda: stream.read(CHUNK_BYTES), b""))


def select_chunks(chunks: Iterable[bytes]) -> Selection:
    """Filter a byte stream, chunk by chunk; a small stream is kept whole."""
    buffered: list[bytes] = []
    size = 0
    it = iter(chunks)
    for chunk in it:
        buffered.append(chunk)
        size += len(chunk)
        if size > SMALL_BYTES:
            break
    else:
        return select_text(b"".join(buffered).decode("utf-8", "replace")) if size <= SMALL_BYTES \
            else _filter(iter(buffered))
    return _filter(_chain(buffered, it))


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def _whole_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut chunks so each ends at a newline (except possibly the last)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            if len(carry) > 4 * CHUNK_BYTES:   # a giant line with no newline: pass it on
                yield carry
                carry = b""
            continue
        carry = data[cut + 1:]
        yield data[:cut + 1]
    if carry:
        yield carry


class _Kept:
    """Kept lines by number: the first ones for good, later ones in a sliding window."""

    def __init__(self) -> None:
        self.head: dict[int, bytes] = {}
        self.later: OrderedDict[int, bytes] = OrderedDict()
        self.seen: dict[bytes, int] = {}

    def add(self, no: int, line: bytes) -> None:
        if no in self.head or no in self.later:
            return
        key = line.translate(None, _DIGITS)[:200]
        count = self.seen.get(key, 0) + 1
        if len(self.seen) > 100_000:
            self.seen.clear()
        self.seen[key] = count
        if count > MAX_REPEATS:
            return
        if len(self.head) < MAX_KEPT_HEAD:
            self.head[no] = line
            return
        self.later[no] = line
        if len(self.later) > MAX_KEPT_LATER:
            self.later.popitem(last=False)


def _filter(chunks: Iterator[bytes]) -> Selection:
    kept = _Kept()
    tail: deque[tuple[int, bytes]] = deque(maxlen=TAIL_LINES)
    base = 0            # lines before this chunk
    pending_after = 0   # context lines still owed from a hit at the end of the last chunk
    last_chunk = b""
    for chunk in _whole_lines(chunks):
        if pending_after:
            _keep_range(chunk, 0, base, pending_after, kept)
        pending_after = _scan_chunk(chunk, base, kept)
        if base < HEAD_LINES:
            _keep_range(chunk, 0, base, HEAD_LINES - base, kept)
        lines_here = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        base += lines_here
        last_chunk = chunk
        _push_tail(tail, last_chunk, base)
    total = base
    merged = dict(kept.head)
    merged.update(kept.later)
    for no, line in tail:
        merged[no] = line
    lines = [(no, merged[no].decode("utf-8", "replace")) for no in sorted(merged)]
    return Selection(lines, total, total - len(lines))


def _push_tail(tail: deque[tuple[int, bytes]], chunk: bytes, last_no: int) -> None:
    """Append the chunk's last TAIL_LINES lines to the tail window."""
    end = len(chunk)
    if chunk.endswith(b"\n"):
        end -= 1
    found: list[tuple[int, bytes]] = []
    no = last_no
    while end >= 0 and len(found) < TAIL_LINES:
        start = chunk.rfind(b"\n", 0, end) + 1
        found.append((no, _cap(chunk[start:end])))
        no -= 1
        if start == 0:
            break
        end = start - 1
    tail.extend(reversed(found))


def _line_end(chunk: bytes, pos: int) -> int:
    end = chunk.find(b"\n", pos)
    return len(chunk) if end < 0 else end


def _cap(line: bytes) -> bytes:
    """Cut an endless progress-bar line to its last few updates."""
    if len(line) <= MAX_LINE_BYTES:
        return line
    return line[-MAX_LINE_BYTES:]


def _keep_range(chunk: bytes, pos: int, first_no: int, count: int, kept: _Kept) -> int:
    """Keep up to `count` lines from byte `pos` (numbered first_no + 1 on); return how many."""
    done = 0
    while done < count and pos < len(chunk):
        end = _line_end(chunk, pos)
        kept.add(first_no + done + 1, _cap(chunk[pos:end]))
        pos = end + 1
        done += 1
    return done


def _scan_chunk(chunk: bytes, base: int, kept: _Kept) -> int:
    """Keep interesting lines with context; return context lines owed to the next chunk."""
    pos, counted_to, line_idx, owed = 0, 0, 0, 0
    n = len(chunk)
    while pos < n:
        m = _INTERESTING.search(chunk, pos)
        if m is None:
            break
        start = chunk.rfind(b"\n", 0, m.start()) + 1
        line_idx += chunk.count(b"\n", counted_to, start)   # 0-based line of the hit
        counted_to = start
        before_start, before = start, 0
        while before < BEFORE and before_start > 0:
            before_start = chunk.rfind(b"\n", 0, before_start - 1) + 1
            before += 1
        want = before + 1 + AFTER
        done = _keep_range(chunk, before_start, base + line_idx - before, want, kept)
        owed = want - done
        pos = _line_end(chunk, start) + 1   # every hit gets its own window
    return owed
