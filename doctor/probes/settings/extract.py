"""The settings a training script passes, read from its syntax tree (a pure function).

Which calls count: Unsloth's loaders (`FastLanguageModel/FastModel/FastVisionModel
.from_pretrained`), `get_peft_model`, peft's `LoraConfig`, the trainer configs (SFTConfig,
GRPOConfig, DPOConfig, TrainingArguments...), the trainers, and the save, merge and push
calls. Each keyword argument keeps its node (for its place in the file) and, where the text
fixes it, its value: literals, and names bound exactly once to something that resolves
(`max_seq_length = 2048` at the top, then `max_seq_length = max_seq_length`), with the
arithmetic notebooks do on them (`lora_alpha = r * 2`). Everything else is UNKNOWN, and no
rule judges an unknown value.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN", "__bool__": lambda self: False})()

LOADERS = ("FastLanguageModel", "FastModel", "FastVisionModel", "FastTextModel")
SAVE_CALLS = frozenset({"save_pretrained", "save_pretrained_merged", "push_to_hub", "push_to_hub_merged",
                        "save_pretrained_gguf", "push_to_hub_gguf", "merge_and_unload"})
ARGUMENT_CLASSES = ("TrainingArguments", "Seq2SeqTrainingArguments", "UnslothTrainingArguments")

# kinds of call
LOAD, PEFT, LORA_CONFIG, CONFIG, TRAINER, SAVE = "load", "peft", "lora_config", "config", "trainer", "save"

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}


@dataclass(frozen=True)
class Arg:
    value: Any            # the resolved value, or UNKNOWN
    node: ast.keyword     # `name=value` as written: its place in the file


@dataclass(frozen=True)
class SettingsCall:
    kind: str                               # LOAD, PEFT, LORA_CONFIG, CONFIG, TRAINER or SAVE
    name: str                               # the callee as written: "FastLanguageModel.from_pretrained"
    short: str                              # its last part: "from_pretrained", "SFTConfig"
    node: ast.Call
    kwargs: Mapping[str, Arg] = field(default_factory=dict)
    open_ended: bool = False                # a `**mapping` the text does not fix: more keywords may come

    def value(self, key: str, default: Any = UNKNOWN) -> Any:
        """The resolved value of `key`; `default` when the call does not pass it (UNKNOWN when
        it passes something unresolved, or when a `**mapping` might pass it)."""
        if key in self.kwargs:
            return self.kwargs[key].value
        return UNKNOWN if self.open_ended else default


def dotted_name(node: ast.AST) -> str:
    """`a.b.c` for a dotted name; "" for anything else. A loop: chains can be thousands long."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def call_kind(name: str) -> str | None:
    """Which kind of settings call `name` is, or None."""
    short = name.rsplit(".", 1)[-1]
    if short == "from_pretrained":
        return LOAD if any(loader in name for loader in LOADERS) else None
    if short == "get_peft_model":
        return PEFT
    if short == "LoraConfig":
        return LORA_CONFIG
    if short in ARGUMENT_CLASSES or (short.endswith("Config") and short[:1].isupper() and _trl_like(short)):
        return CONFIG
    if short.endswith("Trainer") and short[:1].isupper():
        return TRAINER
    if short in SAVE_CALLS:
        return SAVE
    return None


def _trl_like(short: str) -> bool:
    # SFTConfig, GRPOConfig, DPOConfig...: an upper-case stem; not LoraConfig, BitsAndBytesConfig, AutoConfig
    stem = short[: -len("Config")]
    return bool(stem) and stem.isupper()


# --- names bound once --------------------------------------------------------------------

def all_nodes(tree: ast.AST | Sequence[ast.AST]) -> Sequence[ast.AST]:
    """Every node of a tree, once (the rules share one walk: walking is most of their cost)."""
    return list(ast.walk(tree)) if isinstance(tree, ast.AST) else tree


def bound_values(tree: ast.AST | Sequence[ast.AST]) -> dict[str, ast.expr]:
    """Names assigned exactly once, by a plain `name = expr` (or `name: T = expr`), to the
    expression; a name bound any other way too (a loop, `+=`, a parameter, an import, a
    tuple target, twice) is left out: its value is not fixed by the text."""
    values: dict[str, ast.expr] = {}
    other: set[str] = set()
    for node in all_nodes(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in values:
                other.add(name)
            values[name] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            if node.target.id in values:
                other.add(node.target.id)
            values[node.target.id] = node.value
        else:
            other.update(_other_bindings(node))
    return {k: v for k, v in values.items() if k not in other}


def _other_bindings(node: ast.AST) -> Iterator[str]:
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
        targets = [node.target]
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        targets = [node.optional_vars]
    elif isinstance(node, ast.comprehension):
        targets = [node.target]
    elif isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        yield from node.names
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                yield sub.id


class Resolver:
    """Values of expressions, following names bound once (with a bound on the chain)."""

    def __init__(self, bindings: Mapping[str, ast.expr]) -> None:
        self.bindings = bindings

    def value(self, node: ast.expr | None, depth: int = 0) -> Any:
        if node is None or depth > 20:
            return UNKNOWN
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            bound = self.bindings.get(node.id)
            return self.value(bound, depth + 1) if bound is not None else UNKNOWN
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.value(e, depth + 1) for e in node.elts]
            return UNKNOWN if any(i is UNKNOWN for i in items) else (list(items) if isinstance(node, ast.List) else tuple(items))
        if isinstance(node, ast.Dict):
            keys = [self.value(k, depth + 1) if k is not None else UNKNOWN for k in node.keys]
            vals = [self.value(v, depth + 1) for v in node.values]
            if any(x is UNKNOWN for x in (*keys, *vals)):
                return UNKNOWN
            try:
                return dict(zip(keys, vals))
            except TypeError:
                return UNKNOWN
        if isinstance(node, ast.UnaryOp):
            inner = self.value(node.operand, depth + 1)
            if inner is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.Not):
                return not inner
            if isinstance(node.op, ast.USub) and isinstance(inner, (int, float)):
                return -inner
            return UNKNOWN
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if not (_number(left) and _number(right)):
                return UNKNOWN
            try:
                if isinstance(node.op, ast.Pow) and abs(right) > 64:
                    return UNKNOWN
                return _BINARY[type(node.op)](left, right)
            except (ArithmeticError, ValueError):
                return UNKNOWN
        if isinstance(node, ast.Attribute):
            name = dotted_name(node)   # torch.bfloat16 names a value the text fixes
            return name if name.startswith("torch.") else UNKNOWN
        return UNKNOWN


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def settings_calls(tree: ast.AST | Sequence[ast.AST], bindings: Mapping[str, ast.expr] | None = None
                   ) -> list[SettingsCall]:
    """Every settings call of the tree (or of its nodes), in the order of the text."""
    nodes = all_nodes(tree)
    resolver = Resolver(bound_values(nodes) if bindings is None else bindings)
    out: list[SettingsCall] = []
    for node in nodes:
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func)
        kind = call_kind(name) if name else None
        if kind is None:
            continue
        kwargs: dict[str, Arg] = {}
        open_ended = False
        for keyword in node.keywords:
            if keyword.arg is not None:
                kwargs[keyword.arg] = Arg(resolver.value(keyword.value), keyword)
                continue
            mapping = resolver.value(keyword.value)   # **{"a": 1} or **a_dict_bound_once
            if isinstance(mapping, dict) and all(isinstance(k, str) for k in mapping):
                kwargs.update({k: Arg(v, keyword) for k, v in mapping.items()})
            else:
                open_ended = True
        out.append(SettingsCall(kind, name, name.rsplit(".", 1)[-1], node, kwargs, open_ended))
    out.sort(key=lambda c: (c.node.lineno, c.node.col_offset))
    return out
