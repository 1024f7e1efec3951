"""Turn what people paste into a `ParsedLog`: tracebacks, chains, ranks, build errors, OOM.

The parser is a line-by-line state machine over cleaned lines. Lines from different
torchrun ranks are parsed apart (their tracebacks interleave in the log) and the chains
are put back in order of where they start.
"""
from __future__ import annotations

from typing import IO

import re2

from doctor.explainer import banner, build, distributed, native, oom
from doctor.explainer.clean import clean_lines
from doctor.explainer.frames import classify, match_arrow, match_frame
from doctor.results.explain import Chain, ExceptionInfo, Frame, LogLine, ParsedLog, RankFailure
from doctor.explainer.prefilter import Selection, select_stream, select_text

_EXC = re2.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?::(?:\s(.*))?)?\s*$")
# `ValueError:message` (retyped without the space): only for the unmistakable suffixes
_EXC_TIGHT = re2.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning)):(\S.*?)\s*$")
_EXC_SUFFIXES = ("Error", "Exception", "Warning", "Exit", "Interrupt", "Iteration", "Fault",
                 "Failure", "Failed", "Errors", "Unsupported", "OutOfResources", "Abort", "Group")
_JUPYTER_HEAD = re2.compile(r"^\s*([A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)")
# A line that starts a new log record, so it can't be part of an exception's message.
_LOG_RECORD = re2.compile(
    r"^(?:\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d|\[\d{4}-|\[?(?:INFO|WARNING|ERROR|DEBUG|CRITICAL)\b|wandb:|"
    r"E\d{4} |W\d{4} |I\d{4} |\s*\d{1,3}%\|)")
_CAUSE = "The above exception was the direct cause of the following exception"
_CONTEXT = "During handling of the above exception, another exception occurred"
_MAX_MESSAGE_LINES = 40
_MAX_NOISE_IN_TRACEBACK = 60

WRAPPER_TYPES = ("ChildFailedError", "ProcessRaisedException", "ProcessExitedException")


def parse_text(text: str) -> ParsedLog:
    return parse_selection(select_text(text))


def parse_stream(stream: IO[bytes]) -> ParsedLog:
    return parse_selection(select_stream(stream))


def parse_selection(sel: Selection) -> ParsedLog:
    lines = clean_lines(sel.lines)
    chains = _parse_chains(lines) or _bare_error(lines)
    if any("terminate called" in line.text for line in lines):
        chains = _merge_native(lines, chains)
    failures = distributed.parse_failures(lines)
    log = ParsedLog(
        lines=lines,
        chains=chains,
        primary=pick_primary(chains, failures),
        build_errors=build.find_build_errors(lines),
        rank_failures=failures,
        death=native.find_death(lines),
        run=banner.read_banners(lines),
        total_lines=sel.total_lines,
        dropped_lines=sel.dropped,
    )
    log.oom = oom.find_oom(lines, log.final)
    return log


def pick_primary(chains: list[Chain], failures: list[RankFailure]) -> Chain | None:
    """The chain that explains the failure: the root-cause rank's, else the last real one."""
    if not chains:
        return None
    real = [c for c in chains if c.final.short_type not in WRAPPER_TYPES] or chains
    root = next((f.rank for f in failures if f.root_cause), None)
    if root is not None:
        of_root = [c for c in real if c.rank == root]
        if of_root:
            return of_root[-1]
    if len(real) < len(chains) or failures:
        return real[0]           # torchrun: the first observed failure, not the echoes
    return real[-1]


def _parse_chains(lines: list[LogLine]) -> list[Chain]:
    by_rank: dict[int | None, list[LogLine]] = {}
    for line in lines:
        by_rank.setdefault(line.rank, []).append(line)
    found: list[tuple[int, Chain]] = []
    for group in by_rank.values():
        found.extend(_Parser(group).run())
    found.sort(key=lambda item: item[0])
    return [chain for _, chain in found]


def _merge_native(lines: list[LogLine], chains: list[Chain]) -> list[Chain]:
    """Put C++ aborts among the Python chains, in log order; they often end the process."""
    placed = [(_first_line(c), c) for c in chains] + native.native_chains(lines)
    placed.sort(key=lambda item: item[0])
    return [c for _, c in placed]


def _first_line(chain: Chain) -> int:
    first = chain.exceptions[0]
    numbers = [f.log_line for f in first.frames if f.log_line is not None]
    return min(numbers) if numbers else (first.log_line or 0)


def _bare_error(lines: list[LogLine]) -> list[Chain]:
    """No traceback at all: people often paste just the last line. Take the last line that
    reads like `SomeError: message` (also in backticks, quotes or `<class 'X'>: message`)
    as a chain of one, without frames; a paste of one line is its message even untyped."""
    for at in range(len(lines) - 1, -1, -1):
        line = lines[at]
        found = _is_exception_line(line.text) or _is_exception_line(unwrap(line.text)) or _quoted_error(line.text)
        if found is not None:
            more = _bare_continuation(lines, at) if found[1] else []
            message = "\n".join([found[1], *(x.text.strip() for x in more)])
            numbers = (line.no, *(x.no for x in more))
            return [Chain((ExceptionInfo(found[0], message, (), line.no, numbers, line.rank),))]
    # An untyped line counts only when the user quoted it (backticks, quotes, a fence): a
    # bare sentence ("it hangs at step 0") is a question, not the error.
    content = [line for line in lines if line.text.strip() and not _FENCE.search(line.text)]
    if len(content) == 1:
        only = content[0]
        message = unwrap(only.text)
        quoted = message != only.text.strip() or len(content) < len([x for x in lines if x.text.strip()])
        if quoted and len(message) >= 8 and not match_frame(only.text):
            return [Chain((ExceptionInfo("", message, (), only.no, (only.no,), only.rank),))]
    return []


_FENCE = re2.compile(r"^\s*(?:```|~~~)[\w+-]*\s*$")
_NOT_MESSAGE = re2.compile(r"^\s*(?:\.\.\.|…|>|\$|#|In \[|Out\[|pip |uv |python )")


def _bare_continuation(lines: list[LogLine], at: int) -> list[LogLine]:
    """The lines right after a bare `Error: message` that carry on its message (a multi-line
    raise string pasted without its traceback), up to a blank line, a fence, a prompt or
    an elision (`...`), or a line that starts a log record, a frame or another error."""
    out: list[LogLine] = []
    for line in lines[at + 1:at + 1 + _MAX_MESSAGE_LINES]:
        text = line.text
        prev = out[-1].no if out else lines[at].no
        if line.no != prev + 1 or _FENCE.search(text) or _NOT_MESSAGE.search(text) \
                or not _Parser._continues_message(text) or _is_exception_line(text.strip()):
            break
        out.append(line)
    return out
_CLASS_FORM = re2.compile(r"^<class '([A-Za-z_][\w.]*)'>:?\s*(.*)$")
# Markdown code and emphasis (`**RuntimeError: ...**` in an issue body), then quotes
_WRAPPERS = ("```", "``", "**", "__", "`", "*", '"""', "'''", '"', "'")


# An issue title's tags ("[Bug] ", "[FIXED] ", "[import unsloth] ") before the message.
_TITLE_TAGS = re2.compile(r"^(?:\[[^\]\n]{1,30}\]\s*)+")
# The same tags as a report's first line: words only ([Bug], [Feature Request]), so that a log
# line's "[2024-01-05 10:00:00]" timestamp is no issue title.
_ISSUE_TITLE = re2.compile(r"^(?:\[[A-Za-z][^\]\n]{0,29}\]\s*)+(\S.*)$")
# An error quoted inside a sentence: Getting "KeyError: None" when passing ...
_QUOTED = re2.compile(r"`([^`]{8,})`|\"([^\"]{8,})\"|“([^”]{8,})”")


def issue_title(line: str) -> str | None:
    """The message of a line that opens with issue-title tags (`[Bug] Unsloth detected ...`),
    None for any other line."""
    m = _ISSUE_TITLE.match(line.strip())
    return m.group(1) if m else None


def _quoted_error(text: str) -> tuple[str, str] | None:
    """A `Type: message` quoted inside a line of prose (backticks or double quotes)."""
    for m in _QUOTED.finditer(text):
        found = _is_exception_line(next(g for g in m.groups() if g is not None).strip())
        if found is not None:
            return found
    return None


def unwrap(text: str) -> str:
    """One pasted line without what chat, issue titles and Markdown put around it: title tags
    ("[Bug] "), backticks, bold or italic marks, quotes, a `<class 'TypeError'>:` prefix (how `print(type(e), e)` shows it) becomes `TypeError:`."""
    s = _TITLE_TAGS.sub("", text.strip())
    changed = True
    while changed and len(s) > 1:
        changed = False
        for w in _WRAPPERS:
            if len(s) > 2 * len(w) and s.startswith(w) and s.endswith(w):
                s, changed = s[len(w):-len(w)].strip(), True
                break
    m = _CLASS_FORM.search(s)
    if m:
        s = f"{m.group(1)}: {m.group(2)}".rstrip()
    return s


def _is_exception_line(text: str) -> tuple[str, str] | None:
    if not text or text[0] in " \t" or ":" not in text and not text[:1].isupper():
        return None
    m = _EXC.search(text)
    if not m:
        tight = _EXC_TIGHT.search(text)
        return (tight.group(1), tight.group(2).strip()) if tight else None
    name = m.group(1)
    last = name.rsplit(".", 1)[-1]
    if not last[:1].isupper():
        return None
    if "." not in name and not last.endswith(_EXC_SUFFIXES):
        return None
    return name, (m.group(2) or "").strip()


class _Block:
    """A traceback being read: its frames so far (a plain class: cheap to define)."""

    __slots__ = ("start", "frames", "header_type", "link")

    def __init__(self, start: int, header_type: str | None = None, link: str | None = None) -> None:
        self.start = start
        self.frames: list[Frame] = []
        self.header_type = header_type
        self.link = link


class _Parser:
    """Parse one rank's lines into chains (first line number, chain)."""

    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = lines
        self.chains: list[tuple[int, Chain]] = []
        self.current: list[ExceptionInfo] = []   # the chain being built
        self.chain_start = 0
        self.pending_link: str | None = None
        self.block: _Block | None = None
        self.noise = 0

    def run(self) -> list[tuple[int, Chain]]:
        i, n = 0, len(self.lines)
        while i < n:
            i = self._step(i)
        if self.block is not None:
            self._finish_truncated()
        self._close_chain()
        return self.chains

    def _step(self, i: int) -> int:
        line = self.lines[i]
        text = line.text
        if "Traceback (most recent call last)" in text:
            self._start_block(line)
            return i + 1
        if _CAUSE in text or _CONTEXT in text:
            if self.block is not None:
                self._finish_truncated()
            if self.current:
                self.pending_link = "cause" if _CAUSE in text else "context"
            return i + 1
        if self.block is None:
            if not text.lstrip().startswith("File ") or match_frame(text) is None:
                return i + 1   # CPython `File "x.py", line 3` or IPython 8 `File x.py:3, in f`
            self._start_block(line)   # the paste begins in the middle of a traceback
        return self._in_block(i)

    def _start_block(self, line: LogLine) -> None:
        if self.block is not None:
            self._finish_truncated()
        if self.pending_link is None:
            self._close_chain()
        m = _JUPYTER_HEAD.search(line.text)
        self.block = _Block(line.no, header_type=m.group(1) if m else None, link=self.pending_link)
        if not self.current:
            self.chain_start = line.no
        self.pending_link = None
        self.noise = 0

    def _in_block(self, i: int) -> int:
        assert self.block is not None
        line = self.lines[i]
        text = line.text
        head = match_frame(text)
        if head is not None:
            library, package = classify(head.file)
            self.block.frames.append(Frame(head.file, head.line, head.function, library, package,
                                           None, line.no))
            self.noise = 0
            return i + 1
        if self.block.frames and (arrow := match_arrow(text)) is not None:
            last = self.block.frames[-1]
            self.block.frames[-1] = Frame(last.file, last.line or arrow[0], last.function,
                                          last.in_library, last.package, arrow[1] or last.code,
                                          last.log_line)
            return i + 1
        if not text.strip() or text[0] in " \t":
            if self.block.frames and self.block.frames[-1].code is None and text.strip() \
                    and not _is_marker(text):
                last = self.block.frames[-1]
                self.block.frames[-1] = Frame(last.file, last.line, last.function, last.in_library,
                                              last.package, text.strip(), last.log_line)
            return i + 1
        exc = _is_exception_line(text)
        if exc is not None:
            return self._finish_exception(i, *exc)
        self.noise += 1
        if self.noise > _MAX_NOISE_IN_TRACEBACK:
            self._finish_truncated()
        return i + 1

    def _finish_exception(self, i: int, name: str, message: str) -> int:
        assert self.block is not None
        first = self.lines[i]
        msg_lines = [first.no]
        parts = [message] if message else []
        j = i + 1
        while j < len(self.lines) and len(msg_lines) < _MAX_MESSAGE_LINES:
            line = self.lines[j]
            if not line.text.strip() and self._indented_paragraph_follows(j, line.no):
                j += 1      # a raise string's blank line between indented paragraphs
                continue
            if not self._continues_message(line.text) or line.no > msg_lines[-1] + 2:
                break
            parts.append(line.text.strip())
            msg_lines.append(line.no)
            j += 1
        block = self.block
        self.current.append(ExceptionInfo(
            type=name, message="\n".join(parts), frames=tuple(block.frames), log_line=first.no,
            message_lines=tuple(msg_lines), rank=first.rank, link=block.link))
        self.block = None
        return j

    @staticmethod
    def _continues_message(text: str) -> bool:
        return bool(text.strip()) and "Traceback (most recent" not in text \
            and _CAUSE not in text and _CONTEXT not in text and match_frame(text) is None \
            and not _LOG_RECORD.search(text)

    def _indented_paragraph_follows(self, j: int, blank_no: int) -> bool:
        nxt = self.lines[j + 1] if j + 1 < len(self.lines) else None
        return nxt is not None and nxt.no == blank_no + 1 and nxt.text[:1] in (" ", "\t") \
            and self._continues_message(nxt.text)

    def _finish_truncated(self) -> None:
        """The paste ended (or moved on) before this traceback's exception line."""
        block = self.block
        self.block = None
        if block is None or not block.frames:
            return
        self.current.append(ExceptionInfo(
            type=block.header_type or "<truncated>", message="", frames=tuple(block.frames),
            log_line=None, rank=self.lines[0].rank if self.lines else None, link=block.link,
            truncated=True))

    def _close_chain(self) -> None:
        if self.current:
            self.chains.append((self.chain_start, Chain(tuple(self.current))))
        self.current = []
        self.pending_link = None


def _is_marker(text: str) -> bool:
    """Python 3.11+ position markers under a code line: `    ^^^^^` / `~~~~^^^`."""
    s = text.strip()
    return bool(s) and set(s) <= {"^", "~", " "}
