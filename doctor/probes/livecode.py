"""The statements of a script that can run: branches under a constant test are dropped.

Notebooks keep alternatives behind `if False:` (the official ones put every export recipe
there); what never runs is not the user's choice, so no check should read it. Only statement
lists are walked, never expressions, so a long attribute chain cannot exhaust the stack.
"""
from __future__ import annotations

import ast

_BLOCKS = ("body", "orelse", "finalbody")


def constant_truth(test: ast.expr) -> bool | None:
    """True or False when the test's value is fixed in the text (`False`, `0`, `not 1`,
    `False and x`), else None."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = constant_truth(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [constant_truth(v) for v in test.values]
        decisive = isinstance(test.op, ast.Or)   # one True decides an `or`, one False an `and`
        if decisive in values:
            return decisive
        if all(v is not None for v in values):
            return not decisive
    return None


def live_statements(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """`stmts` without the branches a constant test never takes (nested blocks too)."""
    out: list[ast.stmt] = []
    for stmt in stmts:
        if isinstance(stmt, (ast.If, ast.While)):
            truth = constant_truth(stmt.test)
            if truth is False:
                out += live_statements(stmt.orelse)
                continue
            if truth is True and isinstance(stmt, ast.If):
                out += live_statements(stmt.body)
                continue
        for name in _BLOCKS:
            block = getattr(stmt, name, None)
            if isinstance(block, list):
                setattr(stmt, name, live_statements(block))
        for inner in [*getattr(stmt, "handlers", ()), *getattr(stmt, "cases", ())]:
            inner.body = live_statements(inner.body)
        out.append(stmt)
    return out


def live_module(tree: ast.Module) -> ast.Module:
    """The module with its dead branches dropped (in place: the tree is the caller's own)."""
    tree.body = live_statements(tree.body)
    return tree


def imports_module(tree: ast.Module, top: str) -> bool:
    """The code imports `top` (or one of its submodules): a name in a comment or a string
    does not count."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == top for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == top:
            return True
    return False
