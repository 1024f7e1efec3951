"""Edits of Python code through a concrete syntax tree (libcst): comments, spacing and quotes
stay as they were, only the argument that a fix names changes.

The code is a script's text, or a notebook's code as the script probe reads it (magics
turned into calls); `codeedit` writes the result back into the file it came from. libcst is
the optional `fix` extra: without it a fix is offered as text only, saying what to install.
"""
from __future__ import annotations

from typing import Any

MISSING_LIBCST = "(install unsloth-doctor[fix] to have --fix apply it: script edits need libcst)"


class MissingLibcst(Exception):
    pass


def literal(value: Any, like: str | None = None) -> str:
    """`value` written as Python source; a string takes the quotes of `like` (the old value's code)."""
    if isinstance(value, str):
        quote = "'" if like and like.lstrip("rbuRBU")[:1] == "'" else '"'
        escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
        return f"{quote}{escaped}{quote}"
    return repr(value)


def set_keyword(code: str, line: int, keyword: str, value: Any) -> str | None:
    """`code` with the keyword argument `keyword` of the call on `line` (1-based, where the
    argument's value starts) set to `value`; None when no such argument is there.
    Raises MissingLibcst when libcst is not installed."""
    try:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider
    except ImportError as exc:
        raise MissingLibcst(str(exc)) from None

    try:
        wrapper = MetadataWrapper(cst.parse_module(code))
    except cst.ParserSyntaxError:
        return None
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module

    class _Set(cst.CSTTransformer):
        done = False

        def leave_Arg(self, original: "cst.Arg", updated: "cst.Arg") -> "cst.Arg":
            if self.done or original.keyword is None or original.keyword.value != keyword:
                return updated
            if positions[original.value].start.line != line:
                return updated
            self.done = True
            old = module.code_for_node(original.value)
            return updated.with_changes(value=cst.parse_expression(literal(value, old)))

    setter = _Set()
    new = wrapper.module.visit(setter)
    return new.code if setter.done else None
