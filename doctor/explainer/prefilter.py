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
MAX_KEPT_BYTES = 4 * 1024 * 1024   # and neither part holds more than this
# Past these budgets (a log that is errors from end to end) only each chunk's end is
# scanned: the sliding window would keep only the latest lines anyway. Repeats are cheap,
# so they have their own, larger budget.
MAX_HITS = 20_000             # interesting lines kept
MAX_ALL_HITS = 60_000         # interesting lines seen, repeats included
SPARSE_BYTES = 32 * 1024
MAX_SEEN = 50_000             # distinct line shapes remembered for the repeat count
MAX_REPEATS = 20              # a line (digits ignored) seen more often is noise
MAX_LINE_BYTES = 16 * 1024    # a tqdm line of a million \r updates is cut to its end

# One match per interesting line, spanning the whole line, so the scan loop gets the line's
# bounds from the match and never searches for them.
_INTERESTING = re2.compile(
    rb"(?im)^[^\n]*(?:traceback|error|exception|fatal|fail|killed|segmentation fault|core dumped"
    rb"|out of memory|warning|unsloth|\bnan\b|\binf\b|abort|^\s*file |cell in \[|in <module>"
    rb"|-+> |ipython-input|root cause|exitcode|\brank\b|\*\*\*|cmake|ptxas|nvcc|assert"
    rb"|the above exception|during handling|not found|no such file|denied|cannot|can't"
    rb"|batch size per device|max memory:)[^\n]*"
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
        text = _encodable(text)
        raw = text.split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        return Selection([(i + 1, line) for i, line in enumerate(raw)], len(raw), 0)
    return select_chunks([_to_bytes(text)])


def _encodable(text: str) -> str:
    """Text read with errors='surrogateescape' (a pipe of non-UTF-8 bytes) holds lone
    surrogates that no UTF-8 codec, RE2's included, accepts: make them U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    return _to_bytes(text).decode("utf-8", "replace")   # one U+FFFD per bad byte


def _to_bytes(text: str) -> bytes:
    """UTF-8, with surrogateescape'd bytes turned back into the bytes the pipe carried."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


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
    """Re-cut chunks into pieces of about CHUNK_BYTES that end at a newline (except
    possibly the last)."""
    carry = b""
    for whole in chunks:
        for at in range(0, len(whole), CHUNK_BYTES):
            piece = whole[at:at + CHUNK_BYTES]
            data = carry + piece if carry else piece
            cut = data.rfind(b"\n")
            if cut < 0:
                # a line with no newline yet (progress bar): only its end will be kept
                carry = data if len(data) <= MAX_LINE_BYTES else data[-MAX_LINE_BYTES:]
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
        self.seen: dict[int, int] = {}
        self.head_bytes = 0
        self.later_bytes = 0
        self.hits = 0       # interesting lines kept (not counting context or repeats)

    def add(self, no: int, line: bytes) -> bool:
        """Keep a line; False when it is a repeat past MAX_REPEATS (noise)."""
        if no in self.head or no in self.later:
            return True
        key = hash(line.translate(None, _DIGITS)[:200])
        count = self.seen.get(key, 0) + 1
        if len(self.seen) >= MAX_SEEN:
            self.seen.clear()
        self.seen[key] = count
        if count > MAX_REPEATS:
            return False
        if len(self.head) < MAX_KEPT_HEAD and self.head_bytes + len(line) <= MAX_KEPT_BYTES:
            self.head[no] = line
            self.head_bytes += len(line)
            return True
        self.later[no] = line
        self.later_bytes += len(line)
        while len(self.later) > MAX_KEPT_LATER or self.later_bytes > MAX_KEPT_BYTES:
            self.later_bytes -= len(self.later.popitem(last=False)[1])
        return True


def _filter(chunks: Iterator[bytes]) -> Selection:
    kept = _Kept()
    tail: deque[tuple[int, bytes]] = deque(maxlen=TAIL_LINES)
    base = 0            # lines before this chunk
    pending_after = 0   # context lines still owed from a hit at the end of the last chunk
    hits = 0
    previous: tuple[bytes, int] | None = None   # the last chunk and the number of its last line
    for chunk in _whole_lines(chunks):
        if pending_after:
            _keep_range(chunk, 0, base, pending_after, kept)
        dense = kept.hits >= MAX_HITS or hits >= MAX_ALL_HITS
        start_at = max(0, len(chunk) - SPARSE_BYTES) if dense else 0
        pending_after, found = _scan_chunk(chunk, base, kept, start_at)
        hits += found
        if base < HEAD_LINES:
            _keep_range(chunk, 0, base, HEAD_LINES - base, kept)
        lines_here = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        # The tail window needs an earlier chunk only when the later ones are short.
        if previous is not None and lines_here < TAIL_LINES:
            _push_tail(tail, *previous)
        base += lines_here
        previous = (chunk, base)
    if previous is not None:
        _push_tail(tail, *previous)
    merged = dict(kept.head)
    merged.update(kept.later)
    for no, line in tail:
        merged[no] = line
    lines = [(no, merged[no].decode("utf-8", "replace")) for no in sorted(merged)]
    return Selection(lines, base, base - len(lines))


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


def _keep_range(chunk: bytes, pos: int, first_no: int, count: int, kept: _Kept) -> tuple[int, int]:
    """Keep up to `count` lines from byte `pos` (numbered first_no + 1 on).
    Returns (lines kept, byte position after the last one)."""
    done = 0
    while done < count and pos < len(chunk):
        end = _line_end(chunk, pos)
        kept.add(first_no + done + 1, _cap(chunk[pos:end]))
        pos = end + 1
        done += 1
    return done, pos


def _scan_chunk(chunk: bytes, base: int, kept: _Kept, start_at: int = 0) -> tuple[int, int]:
    """Keep interesting lines with context, from byte `start_at` on.
    Returns (context lines owed to the next chunk, hits seen)."""
    n = len(chunk)
    pos = chunk.rfind(b"\n", 0, start_at) + 1 if start_at else 0    # a line start
    line_idx = chunk.count(b"\n", 0, pos)        # 0-based line of `pos` in this chunk
    counted_to = pos
    kept_until = pos    # lines before this byte were already handed to `kept`
    owed = hits = 0
    for m in _INTERESTING.finditer(chunk, pos, n):
        hits += 1
        start, end = m.span()
        line_idx += chunk.count(b"\n", counted_to, start)
        counted_to = start
        if start < kept_until:   # inside the last window: extend it by this hit's context
            kept.hits += 1
            first, first_no = kept_until, base + line_idx + chunk.count(b"\n", start, kept_until)
        else:
            if not kept.add(base + line_idx + 1, _cap(chunk[start:end])):
                continue         # a line repeated past MAX_REPEATS: noise, no context
            kept.hits += 1
            first = start
            for _ in range(BEFORE):
                if first == 0 or first <= kept_until:
                    break
                first = chunk.rfind(b"\n", 0, first - 1) + 1
            first_no = base + line_idx - chunk.count(b"\n", first, start)
        want = base + line_idx + 1 + AFTER - first_no     # through AFTER lines past the hit
        done, kept_until = _keep_range(chunk, first, first_no, want, kept)
        owed = want - done
    return owed, hits
