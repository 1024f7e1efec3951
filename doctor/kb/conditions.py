"""The `when:` condition language: all / any / not over leaf comparisons of facts.

Evaluation is three-valued. A leaf whose fact is missing is *unknown* (None): `scan` treats
unknown as "does not fire", while `explain` uses it to leave a candidate neither confirmed
nor ruled out. Nothing here evaluates Python from YAML.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from doctor.kb.schema import LEAF_OPERATORS

Tri = bool | None


@dataclass
class Trace:
    """The facts a condition read, so a finding can show its evidence."""

    used: dict[str, Any] = field(default_factory=dict)


def evaluate_condition(cond: Mapping[str, Any], facts: Mapping[str, Any], trace: Trace | None = None) -> Tri:
    if "all" in cond:
        results = [evaluate_condition(c, facts, trace) for c in cond["all"]]
        if any(r is False for r in results):
            return False
        return True if all(r is True for r in results) else None
    if "any" in cond:
        results = [evaluate_condition(c, facts, trace) for c in cond["any"]]
        if any(r is True for r in results):
            return True
        return False if all(r is False for r in results) else None
    if "not" in cond:
        inner = evaluate_condition(cond["not"], facts, trace)
        return None if inner is None else not inner
    return _leaf(cond, facts, trace)


def _leaf(cond: Mapping[str, Any], facts: Mapping[str, Any], trace: Trace | None) -> Tri:
    name = cond["fact"]
    op, operand = next((k, v) for k, v in cond.items() if k != "fact")
    names = _expand(name, facts)
    if op == "present":
        found = bool(names)
        if trace is not None and found:
            for n in names:
                trace.used[n] = facts[n]
        return found == bool(operand)
    if not names:
        return None
    # A wildcard fact (gpu.*.capability) holds when any of its instances holds.
    results: list[Tri] = []
    for n in names:
        value = facts[n]
        if isinstance(operand, Mapping) and "fact" in operand:
            if operand["fact"] not in facts:
                return None
            other = facts[operand["fact"]]
            if trace is not None:
                trace.used[operand["fact"]] = other
        else:
            other = operand
        result = _compare(op, value, other)
        if trace is not None and result is not None:
            trace.used[n] = value
        results.append(result)
    if any(r is True for r in results):
        return True
    return False if all(r is False for r in results) else None


def _expand(name: str, facts: Mapping[str, Any]) -> list[str]:
    if "*" not in name:
        return [name] if name in facts else []
    return [n for n in facts if fnmatch.fnmatchcase(n, name)]


def _version(value: Any) -> Version | None:
    try:
        return Version(str(value))
    except InvalidVersion:
        return None


def _version_cmp(fn: Callable[[Version, Version], bool]) -> Callable[[Any, Any], Tri]:
    def compare(a: Any, b: Any) -> Tri:
        va, vb = _version(a), _version(b)
        if va is None or vb is None:
            return None
        return fn(va, vb)
    return compare


def _number_cmp(fn: Callable[[float, float], bool]) -> Callable[[Any, Any], Tri]:
    def compare(a: Any, b: Any) -> Tri:
        try:
            return fn(float(a), float(b))
        except (TypeError, ValueError):
            return None
    return compare


def _in_spec(a: Any, spec: Any) -> Tri:
    v = _version(a)
    if v is None:
        return None
    # prereleases=True: a dev build of torch still counts as that version
    return SpecifierSet(str(spec)).contains(v, prereleases=True)


def _contains(a: Any, b: Any) -> Tri:
    if isinstance(a, (list, tuple, set)):
        return b in a
    if isinstance(a, str):
        return str(b) in a
    return None


def _matches(a: Any, pattern: Any) -> Tri:
    from doctor.textmatch import compile_pattern

    return compile_pattern(str(pattern)).search(str(a)) is not None


_OPS: dict[str, Callable[[Any, Any], Tri]] = {
    "eq": lambda a, b: a == b or (str(a) == str(b)),
    "ne": lambda a, b: not (a == b or str(a) == str(b)),
    "in": lambda a, b: a in b or str(a) in [str(x) for x in b],
    "not_in": lambda a, b: not (a in b or str(a) in [str(x) for x in b]),
    "contains": _contains,
    "lt": _number_cmp(lambda a, b: a < b),
    "le": _number_cmp(lambda a, b: a <= b),
    "gt": _number_cmp(lambda a, b: a > b),
    "ge": _number_cmp(lambda a, b: a >= b),
    "version_lt": _version_cmp(lambda a, b: a < b),
    "version_le": _version_cmp(lambda a, b: a <= b),
    "version_gt": _version_cmp(lambda a, b: a > b),
    "version_ge": _version_cmp(lambda a, b: a >= b),
    "version_eq": _version_cmp(lambda a, b: a == b),
    "version_in": _in_spec,
    "version_not_in": lambda a, b: (lambda r: None if r is None else not r)(_in_spec(a, b)),
    "matches": _matches,
}
assert set(_OPS) | {"present"} == set(LEAF_OPERATORS), "operators and schema disagree"


def _compare(op: str, a: Any, b: Any) -> Tri:
    return _OPS[op](a, b)


def condition_problems(cond: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema can't check: specifier sets, versions and regexes that don't parse."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if not isinstance(cond, Mapping):
        return out
    for key in ("all", "any"):
        for i, sub in enumerate(cond.get(key, [])):
            out += condition_problems(sub, (*path, key, i))
    if "not" in cond:
        out += condition_problems(cond["not"], (*path, "not"))
    for op in ("version_in", "version_not_in"):
        if op in cond:
            try:
                SpecifierSet(str(cond[op]))
            except InvalidSpecifier:
                out.append(((*path, op), f"{cond[op]!r} is not a PEP 440 specifier set (e.g. '>=4.4,<4.6')"))
    for op in ("version_lt", "version_le", "version_gt", "version_ge", "version_eq"):
        if op in cond and isinstance(cond[op], str) and _version(cond[op]) is None:
            out.append(((*path, op), f"{cond[op]!r} is not a version"))
    if "matches" in cond:
        from doctor.textmatch import pattern_problem

        problem = pattern_problem(str(cond["matches"]))
        if problem:
            out.append(((*path, "matches"), problem))
    return out


def facts_named(cond: Mapping[str, Any]) -> list[str]:
    """Every fact name a condition mentions (explain shows them when it confirms or rules out)."""
    names: list[str] = []
    for key in ("all", "any"):
        for sub in cond.get(key, []):
            names += facts_named(sub)
    if "not" in cond:
        names += facts_named(cond["not"])
    if "fact" in cond:
        names.append(cond["fact"])
        for v in cond.values():
            if isinstance(v, Mapping) and "fact" in v:
                names.append(v["fact"])
    return names
