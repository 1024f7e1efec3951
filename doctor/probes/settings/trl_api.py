"""What the installed trl (and transformers) accept, read from their source files with `ast`
(neither is ever imported).

Which names `from trl import X` gives (trl/__init__.py's lazy `_import_structure`), where
the ones it no longer exports went (trl/experimental/<name>/), and the keyword arguments
of each trainer's `__init__` and each config dataclass's fields, the inherited
transformers.TrainingArguments fields included. Read once per trl folder and version, so
the rules follow whichever trl is installed.
"""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable
from doctor.probes import pep701


@dataclass(frozen=True)
class Signature:
    params: frozenset[str] | None    # the keywords accepted; None: any (a **kwargs, or unreadable)
    where: str                       # "trl/trainer/sft_trainer.py:617"


@dataclass
class TrlApi:
    version: str
    root: str                               # the folder holding trl/ (site-packages)
    exports: frozenset[str]
    _modules: dict[str, str] = field(default_factory=dict)       # exported name -> module file
    _signatures: dict[str, Signature | None] = field(default_factory=dict)
    _experimental: dict[str, str] | None = None

    def signature(self, name: str) -> Signature | None:
        """The accepted keywords of an exported trainer or config; None when unknown."""
        if name not in self._signatures:
            module = self._modules.get(name)
            self._signatures[name] = _class_signature(self.root, module, name) if module else None
        return self._signatures[name]

    def has_submodule(self, name: str) -> bool:
        """trl has the module `trl.<name>` (dotted names too: "experimental.orpo")."""
        path = os.path.join(self.root, "trl", *name.split("."))
        return os.path.isfile(path + ".py") or os.path.isdir(path)

    def moved_to(self, name: str) -> str | None:
        """`trl.experimental.orpo` for a name trl no longer exports but defines there."""
        if self._experimental is None:
            self._experimental = _experimental_names(os.path.join(self.root, "trl", "experimental"))
        return self._experimental.get(name)


def find_distribution(name: str, site_dirs: Iterable[str] | None = None) -> tuple[str, str] | None:
    """(site folder, version) of the first installed copy of `name` on the path."""
    return _find_distribution(name, tuple(site_dirs if site_dirs is not None else sys.path))


@lru_cache(maxsize=64)
def _find_distribution(name: str, site_dirs: tuple[str, ...]) -> tuple[str, str] | None:
    # cached for the process: a folder scan asks once per notebook, and an install during a
    # scan is not something a read-only scan must follow
    for site in site_dirs:
        if not site or not os.path.isdir(os.path.join(site, name)):
            continue
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        prefix = name.replace("-", "_").lower() + "-"
        for entry in entries:
            if entry.lower().startswith(prefix) and entry.endswith(".dist-info"):
                return site, entry[len(prefix):-len(".dist-info")]
    return None


def installed_trl(site_dirs: Iterable[str] | None = None) -> TrlApi | None:
    found = find_distribution("trl", tuple(site_dirs) if site_dirs is not None else None)
    return read_trl(*found) if found else None


@lru_cache(maxsize=4)
def read_trl(root: str, version: str) -> TrlApi | None:
    package = os.path.join(root, "trl")
    top = _import_structure(os.path.join(package, "__init__.py"))
    if top is None:
        return None
    modules: dict[str, str] = {}
    for submodule, names in top.items():
        path = os.path.join(package, *submodule.split("."))
        inner = _import_structure(os.path.join(path, "__init__.py")) if os.path.isdir(path) else None
        for name in names:
            if inner is not None:   # trl.trainer: one more lazy level, name -> its own file
                module = next((m for m, ns in inner.items() if name in ns), None)
                modules[name] = os.path.join(path, *module.split(".")) + ".py" if module else ""
            else:
                modules[name] = path + ".py"
    return TrlApi(version, root, frozenset(modules), modules)


def _parse(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return pep701.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None


def _import_structure(path: str) -> dict[str, list[str]] | None:
    """A package's `_import_structure = {...}` literal."""
    tree = _parse(path)
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_import_structure" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _class_signature(root: str, module: str, name: str, depth: int = 0) -> Signature | None:
    tree = _parse(module)
    if tree is None or depth > 6:
        return None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        return None
    where = f"{os.path.relpath(module, root)}:{cls.lineno}".replace(os.sep, "/")
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        if init.args.kwarg is not None:
            return Signature(None, where)
        params = [a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)][1:]
        return Signature(frozenset(params), f"{os.path.relpath(module, root)}:{init.lineno}".replace(os.sep, "/"))
    if not any(dotted(d).endswith("dataclass") for d in cls.decorator_list):
        return None
    fields = set(_dataclass_fields(cls))
    for base in cls.bases:
        base_name = dotted(base)
        base_module = _base_module(root, module, tree, base_name)
        inherited = _class_signature(root, base_module, base_name.rsplit(".", 1)[-1], depth + 1) if base_module else None
        if inherited is None or inherited.params is None:
            return Signature(None, where)
        fields |= inherited.params
    return Signature(frozenset(fields), where)


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _dataclass_fields(cls: ast.ClassDef) -> Iterable[str]:
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        if "ClassVar" in ast.unparse(node.annotation):
            continue
        call = node.value
        if isinstance(call, ast.Call) and dotted(call.func).endswith("field") and any(
                k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False for k in call.keywords):
            continue
        yield node.target.id


def _base_module(root: str, module: str, tree: ast.Module, base: str) -> str | None:
    """The file that defines `base`, from the module's own imports."""
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or base not in {a.asname or a.name for a in node.names}:
            continue
        if node.level:
            folder = os.path.dirname(module)
            for _ in range(node.level - 1):
                folder = os.path.dirname(folder)
            return os.path.join(folder, *(node.module or "").split(".")) + ".py"
        if node.module == "transformers" and base in TRANSFORMERS_CLASSES:
            found = find_distribution("transformers", [root])
            return os.path.join(root, "transformers", TRANSFORMERS_CLASSES[base]) if found else None
    return None


def _experimental_names(folder: str) -> dict[str, str]:
    """Public classes and functions defined under trl/experimental/, by subpackage (a name
    defined in several: the first subpackage in name order)."""
    out: dict[str, str] = {}
    try:
        subs = sorted(os.listdir(folder))
    except OSError:
        return out
    for sub in subs:
        path = os.path.join(folder, sub)
        if not os.path.isdir(path) or sub.startswith("_"):
            continue
        for file in sorted(os.listdir(path)):
            if not file.endswith(".py"):
                continue
            tree = _parse(os.path.join(path, file))
            for node in tree.body if tree else ():
                if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_"):
                    out.setdefault(node.name, f"trl.experimental.{sub}")
    return out


# transformers classes scripts build themselves, and the file of each
TRANSFORMERS_CLASSES = {"TrainingArguments": "training_args.py", "Seq2SeqTrainingArguments": "training_args_seq2seq.py",
                        "Trainer": "trainer.py", "Seq2SeqTrainer": "trainer_seq2seq.py"}


@dataclass
class TransformersApi:
    version: str
    root: str
    _signatures: dict[str, Signature | None] = field(default_factory=dict)

    def signature(self, name: str) -> Signature | None:
        if name not in self._signatures:
            file = TRANSFORMERS_CLASSES.get(name)
            self._signatures[name] = _class_signature(self.root, os.path.join(self.root, "transformers", file), name) \
                if file else None
        return self._signatures[name]


def installed_transformers(site_dirs: Iterable[str] | None = None) -> TransformersApi | None:
    found = find_distribution("transformers", tuple(site_dirs) if site_dirs is not None else None)
    return _read_transformers(*found) if found else None


@lru_cache(maxsize=4)
def _read_transformers(root: str, version: str) -> TransformersApi:
    return TransformersApi(version, root)
