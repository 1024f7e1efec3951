"""YAML to plain Python, keeping where every value stood (file, line, column).

We compose with libyaml when available (fast) and walk the node tree ourselves, so that a
schema problem deep inside an entry can be reported at its own line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

try:  # libyaml is an order of magnitude faster; fall back to the pure-Python composer
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Mark:
    line: int    # 1-based
    column: int  # 1-based


class YamlSyntaxError(Exception):
    def __init__(self, message: str, line: int | None, column: int | None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def load_with_marks(text: str) -> tuple[Any, dict[Path, Mark]]:
    """Parse one YAML document; return the data and a map from value path to position."""
    marks: dict[Path, Mark] = {}
    try:
        node = yaml.compose(text, Loader=_Loader)
        # building values can fail too: a tag without a constructor (`=` is yaml's "value" tag)
        return (None if node is None else _convert(node, (), marks)), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise YamlSyntaxError(f"{exc.problem or exc.context}", line, col) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None, None) from None


def _convert(node: yaml.Node, path: Path, marks: dict[Path, Mark]) -> Any:
    marks[path] = Mark(node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1,
                                      key_node.start_mark.column + 1)
            marks[("<key>", *path, key)] = Mark(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, (*path, key), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, (*path, i), marks) for i, child in enumerate(node.value)]
    return _scalar(node)


# The composer has already resolved each scalar's tag (int, float, bool, null, str);
# PyYAML's safe constructor turns it into the value it would have produced.
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _CONSTRUCTOR.construct_object(node, deep=True)
    raise YamlSyntaxError("a key must be a plain value", node.start_mark.line + 1, node.start_mark.column + 1)


def mark_for(marks: dict[Path, Mark], path: Path, key: bool = False) -> Mark | None:
    """The position of `path` (of its key, with key=True), or of its nearest ancestor."""
    if key and ("<key>", *path) in marks:
        return marks[("<key>", *path)]
    while True:
        if path in marks:
            return marks[path]
        if not path:
            return None
        path = path[:-1]
