"""A user's YAML checked before anything is built from it: nesting, size, and aliases.

An alias is a second reference to its anchored node, so a few lines of anchors can stand for
billions of values (the "billion laughs" pattern), and an alias inside the node it names
makes a cycle. Code that walks the result as a tree (our converter that records each value's
line, a JSON dump, a validator) then hangs, runs out of memory or recurses without end.

`check_yaml` reads the parser's event stream once (libyaml when available; nothing is kept
per event) and counts the values the document stands for with every alias expanded. Each
anchor's count is computed once, when its node closes, so counting stays linear in the text.
It stops at the first event past a limit and raises `limits.Refusal` located there.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from doctor.probes.limits import (ALIAS_BOMB, MAX_NESTING, RECURSIVE_ALIAS, TOO_DEEP, TOO_LARGE,
                                  YAML_MAX_NODES, Refusal)

try:  # the same parser the converter composes with
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

@dataclass
class _Anchor:
    line: int
    column: int
    size: int | None = None   # values in the node, aliases expanded; None while it is open
    height: int = 1           # its levels of nesting, aliases expanded


@dataclass
class _Open:
    """A sequence or mapping whose end has not been seen yet."""

    level: int
    start_total: int
    deepest: int
    anchor: _Anchor | None


def _where(event: yaml.Event) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def check_yaml(text: str, max_nodes: int = YAML_MAX_NODES, max_nesting: int = MAX_NESTING,
               _retried: bool = False) -> None:
    """Raise `Refusal` for a document nested deeper than `max_nesting`, standing for more than
    `max_nodes` values, or holding an alias to a node that contains it. Text that does not
    parse passes: the composer reports the syntax error at its place."""
    total = 0      # values so far, aliases expanded
    written = 0    # values so far as written (aliases count as none)
    stack: list[_Open] = []
    anchors: dict[str, _Anchor] = {}
    widest: tuple[int, str, yaml.Event] | None = None   # the largest alias so far
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                anchors = {}   # anchors are local to a document
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                done = stack.pop()
                if done.anchor is not None:
                    done.anchor.size = total - done.start_total
                    done.anchor.height = done.deepest - done.level + 1
                if stack:
                    stack[-1].deepest = max(stack[-1].deepest, done.deepest)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            level = len(stack) + 1
            line, column = _where(event)
            if isinstance(event, yaml.AliasEvent):
                target = anchors.get(event.anchor)
                if target is None:
                    continue   # an undefined alias: the composer's syntax error says so
                if target.size is None:
                    raise Refusal(RECURSIVE_ALIAS, line, column, {
                        "anchor": event.anchor, "anchor_line": target.line})
                size, deepest = target.size, level + target.height - 1
                if widest is None or size > widest[0]:
                    widest = (size, event.anchor, event)
            else:
                written += 1
                size, deepest = 1, level
            if deepest > max_nesting:
                raise Refusal(TOO_DEEP, line, column, {"limit": max_nesting})
            total += size
            if total > max_nodes:
                raise _over_budget(event, written, max_nodes, widest)
            if stack:
                stack[-1].deepest = max(stack[-1].deepest, deepest)
            if isinstance(event, yaml.CollectionStartEvent):
                anchor = _Anchor(line, column) if event.anchor is not None else None
                stack.append(_Open(level, total - 1, level, anchor))
                if anchor is not None:
                    anchors[event.anchor] = anchor   # set at the start, as the composer does
            elif event.anchor is not None and not isinstance(event, yaml.AliasEvent):
                anchors[event.anchor] = _Anchor(line, column, size=1)
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None and not _retried:
            # libyaml's own limit (1000 levels) stopped it while looking ahead: check the text
            # before that point, to report the first level past ours.
            mark = exc.problem_mark
            check_yaml(text[:_offset(text, mark.line, mark.column)], max_nodes, max_nesting, _retried=True)
            raise Refusal(TOO_DEEP, mark.line + 1, mark.column + 1, {"limit": max_nesting}) from None
    except yaml.YAMLError:
        return   # the composer reports the syntax error at its place


def _offset(text: str, line: int, column: int) -> int:
    """Offset of a 0-based line and column."""
    start = 0
    for _ in range(line):
        start = text.find("\n", start) + 1
        if start == 0:
            return len(text)
    return start + column


def _over_budget(event: yaml.Event, written: int, max_nodes: int,
                 widest: tuple[int, str, yaml.Event] | None) -> Refusal:
    if written > max_nodes or widest is None:
        line, column = _where(event)
        return Refusal(TOO_LARGE, line, column, {"size": f"more than {max_nodes:,} values",
                                                 "limit": f"{max_nodes:,} values"})
    # Aliases took it past the budget: point at the one that expands the most.
    culprit = event if isinstance(event, yaml.AliasEvent) else widest[2]
    line, column = _where(culprit)
    return Refusal(ALIAS_BOMB, line, column, {"limit": f"{max_nodes:,}", "written": written,
                                              "anchor": culprit.anchor})
