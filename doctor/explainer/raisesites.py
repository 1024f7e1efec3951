"""Read a library's source (never import it) for every place that raises or prints a message.

`sites_from_source(source, file)` is pure: it walks one module's AST and returns a record per
`raise X("...")`, `warnings.warn("...")`, `logger.warning("...")` and `print("...")` whose
message has enough literal text to be recognised later. A message is kept as a template:
literal parts, and a HOLE where an f-string, `%` or `.format()` puts a value in.
`build_package(root, package)` is the thin edge that walks a package's files.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Iterator, NamedTuple
from doctor.probes import pep701

HOLE = "\x00"          # a value filled in at run time; never in real source text
MIN_LITERAL = 16       # fewer literal characters than this would match too much
MIN_FRAGMENT = 8       # the longest literal run must be at least this long to index by it
_LOG_METHODS = {"warning", "warn", "error", "critical", "exception", "info"}


class SiteRecord(NamedTuple):
    file: str            # relative to site-packages
    line: int
    function: str        # qualified: "Class.method.<inner>", "<module>" at top level
    kind: str            # raise | warn | log | print | text (a sentence built away from its call)
    exc_type: str        # the raised class or the warning category; "" for log/print
    template: str        # the message, HOLE where a value goes
    condition: str       # source of the nearest enclosing `if` test ("not (...)" in its else)


def literal_chars(template: str) -> int:
    return len(template.replace(HOLE, "").strip())


def longest_fragment(template: str) -> str:
    return max(template.split(HOLE), key=len).strip()


def message_template(node: ast.expr | None) -> str | None:
    """The message an expression builds, with HOLEs for run-time values; None if unknown."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            else:
                parts.append(HOLE)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_template(node.left), message_template(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else HOLE) + (right if right is not None else HOLE)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = message_template(node.left)
        return None if left is None else _percent_holes(left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        base = message_template(node.func.value)
        return None if base is None else _format_holes(base)
    return None


def _percent_holes(text: str) -> str:
    return re.sub(r"%(?:\([^)]*\))?[-+ #0]*\d*(?:\.\d+)?[sdrifgxXeEc]", HOLE, text).replace("%%", "%")


def _format_holes(text: str) -> str:
    text = re.sub(r"(?<!\{)\{[^{}]*\}(?!\})", HOLE, text)
    return text.replace("{{", "{").replace("}}", "}")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


class _ScopeVisitor(ast.NodeVisitor):
    """Names each def and class it enters (`_scoped` says what else entering one does)."""

    def _scoped(self, node: ast.AST, name: str) -> None:
        raise NotImplementedError

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name)


class _Walker(_ScopeVisitor):
    def __init__(self, source: str, file: str) -> None:
        self.source = source
        self.lines = source.encode("utf-8").splitlines(keepends=True)   # offsets are UTF-8 bytes
        self.file = file
        self.scope: list[str] = []
        self.guards: list[str] = []
        self.out: list[SiteRecord] = []
        self.docstrings: set[int] = set()
        self.message_nodes: set[int] = set()   # every node inside a call's message: never free text

    # scopes: the qualified function name
    def _scoped(self, node: ast.AST, name: str) -> None:
        self._skip_docstring(node)
        self.scope.append(name)
        saved, self.guards = self.guards, []   # a guard outside the def does not guard its body
        self.generic_visit(node)
        self.guards = saved
        self.scope.pop()

    def _skip_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self.docstrings.add(id(body[0].value))   # an example in the docs raises nothing

    def visit_Module(self, node: ast.Module) -> None:
        self._skip_docstring(node)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        test = " ".join(self._segment(node.test).split())
        self.visit(node.test)
        self.guards.append(test)
        for stmt in node.body:
            self.visit(stmt)
        self.guards[-1] = f"not ({test})"
        for stmt in node.orelse:
            self.visit(stmt)
        self.guards.pop()

    def _segment(self, node: ast.expr) -> str:
        """`ast.get_source_segment` without its split of the whole file on every call
        (quadratic on a 5,000-line module)."""
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if last >= len(self.lines):
            return ""
        if first == last:
            text = self.lines[first][node.col_offset:node.end_col_offset]
        else:
            text = b"".join([self.lines[first][node.col_offset:], *self.lines[first + 1:last],
                             self.lines[last][:node.end_col_offset]])
        return text.decode("utf-8", "replace")

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc
        if isinstance(exc, ast.Call) and exc.args:
            self._message(node, "raise", _dotted(exc.func), exc.args[0])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if node.args:
            if name in ("warnings.warn", "warn"):
                category = _dotted(node.args[1]) if len(node.args) > 1 else next(
                    (_dotted(k.value) for k in node.keywords if k.arg == "category"), "UserWarning")
                self._message(node, "warn", category or "UserWarning", node.args[0])
            elif name == "print":
                self._message(node, "print", "", node.args[0])
            elif isinstance(node.func, ast.Attribute) and node.func.attr in _LOG_METHODS \
                    and "log" in _dotted(node.func.value).lower():
                self._message(node, "log", "", node.args[0])
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        """Code kept in a string and run later (Unsloth writes patched functions as source text,
        then execs it): its one-line `raise X("...")` and `warnings.warn("...")` raise too."""
        text = node.value
        if id(node) in self.docstrings or not isinstance(text, str) or "\n" not in text \
                or ("raise " not in text and "warn(" not in text and "print(" not in text):
            return
        lines = text.split("\n")
        for offset, line in enumerate(lines):
            if not _CODE_LINE.match(line):
                continue
            found = _string_code_call(line)
            if found is None:
                continue
            kind, exc_type, template = found
            at = _Line(node.lineno + offset)
            guard = _guard_above(lines, offset)
            self.guards.append(guard) if guard else None
            self._add(at, kind, exc_type, template)
            self.guards.pop() if guard else None

    def _message(self, node: ast.AST, kind: str, exc_type: str, arg: ast.expr) -> None:
        self.message_nodes.update(id(n) for n in ast.walk(arg))
        self._add(node, kind, exc_type, message_template(arg))

    def _add(self, node: ast.AST, kind: str, exc_type: str, template: str | None) -> None:
        if any("mlx" in g.lower() for g in self.guards):
            return   # an MLX-only branch
        if template is None or literal_chars(template) < MIN_LITERAL \
                or len(longest_fragment(template)) < MIN_FRAGMENT:
            return
        self.out.append(SiteRecord(self.file, getattr(node, "lineno", 0), ".".join(self.scope) or "<module>",
                                   kind, exc_type, template, self.guards[-1] if self.guards else ""))


_CODE_LINE = re.compile(r"^\s*(?:raise\s+[\w.]+\(.*\)|(?:warnings\.)?warn\(.*\)|print\(.*)\s*$")
# A print whose message goes on over the next lines of the string (`print('Unsloth: ...\\n'`
# then `'more' + str(x))`) does not parse alone: its first literal is the message's start.
_FIRST_LITERAL = re.compile(r"""^\s*print\(\s*(f?)(['"])((?:\\.|(?!\2).)*)""")


def _string_code_call(line: str) -> tuple[str, str, str | None] | None:
    """(kind, exception type, template) of a raise, warn or print on one line of code kept
    in a string; None for anything else."""
    try:
        stmt = ast.parse(line.strip()).body[0]
    except (SyntaxError, ValueError, IndexError):
        m = _FIRST_LITERAL.match(line)
        if not m:
            return None
        try:   # the literal as Python reads it, cut at the string's own line end
            literal = ast.literal_eval(m.group(2) + m.group(3) + m.group(2))
        except (SyntaxError, ValueError):
            return None
        if not isinstance(literal, str):
            return None
        first = literal.split("\n", 1)[0]
        return "print", "", _format_holes(first) if m.group(1) else first
    call = stmt.exc if isinstance(stmt, ast.Raise) else getattr(stmt, "value", None)
    if not isinstance(call, ast.Call) or not call.args:
        return None
    if isinstance(stmt, ast.Raise):
        return "raise", _dotted(call.func), message_template(call.args[0])
    name = _dotted(call.func)
    if name == "print":
        return "print", "", message_template(call.args[0])
    if name in ("warnings.warn", "warn"):
        return "warn", "UserWarning", message_template(call.args[0])
    return None


class _Line(NamedTuple):
    lineno: int


def _guard_above(lines: list[str], at: int) -> str:
    """The `if`/`elif` test that guards line `at` of code kept in a string ("" when none)."""
    indent = len(lines[at]) - len(lines[at].lstrip())
    for line in reversed(lines[:at]):
        stripped = line.strip()
        if stripped and len(line) - len(line.lstrip()) < indent:
            if stripped.startswith(("if ", "elif ")):
                return stripped.split(" ", 1)[1].rstrip(":").strip()
            if stripped == "else:":
                return "else"
            return ""
    return ""


def sites_from_source(source: str, file: str) -> list[SiteRecord]:
    """Every message site of one module's source; [] when it does not parse."""
    try:
        tree = pep701.parse(source)
    except (SyntaxError, ValueError):
        return []
    walker = _Walker(source, file)
    walker.visit(tree)
    texts = _TextWalker(file, walker.message_nodes, walker.docstrings)
    texts.visit(tree)
    return walker.out + texts.out


# --- messages built away from their raise: a list of lines, a helper's return, a table -----

MIN_TEXT_LITERAL = 40   # a free-standing string must read as a sentence, not a key or a path
MIN_TEXT_WORDS = 6
_WORDLIKE = re.compile(r"[A-Za-z][a-z]+")
_CODE_LIKE = re.compile(r"\b(def|import|return|lambda|self)\b|==|\)\s*:|^\s*#|^\s*(if|for|while|with|elif) ")


def looks_like_message(template: str) -> bool:
    """A one-line string that reads as one of Unsloth's own messages (they open with
    "Unsloth"): long enough, mostly words, not code. Prompts, help texts and code fragments
    kept in strings are none of these."""
    text = template.replace(HOLE, " ").strip()
    if not text.startswith("Unsloth") or "\n" in text or len(template.replace(HOLE, "").strip()) < MIN_TEXT_LITERAL:
        return False
    words = text.split()
    if len(words) < MIN_TEXT_WORDS:
        return False
    wordlike = sum(1 for w in words if _WORDLIKE.fullmatch(w.strip(".,:;!?()'`\"")))
    return wordlike >= 0.6 * len(words) and not _CODE_LIKE.search(text)


class _TextWalker(_ScopeVisitor):
    """Sentences the code keeps apart from the call that shows them (Unsloth builds its ROCm
    advice as a list of lines, its chat-template refusal with `.format`): kind "text", looked
    up only when no raise, warn, log or print of any indexed package fits the paste."""

    def __init__(self, file: str, consumed: set[int], docstrings: set[int]) -> None:
        self.file, self.consumed, self.docstrings = file, consumed, docstrings
        self.scope: list[str] = []
        self.out: list[SiteRecord] = []

    def _scoped(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._take(node)   # its parts are not strings of their own

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, (ast.Add, ast.Mod)) and message_template(node) is not None:
            self._take(node)
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and message_template(node.func.value) is not None:
            self._take(node)
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                self.visit(arg)
            return
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self._take(node)

    def _take(self, node: ast.expr) -> None:
        if id(node) in self.consumed or id(node) in self.docstrings:
            return
        template = message_template(node)
        if template is None or not looks_like_message(template) or len(longest_fragment(template)) < MIN_FRAGMENT:
            return
        self.out.append(SiteRecord(self.file, node.lineno, ".".join(self.scope) or "<module>", "text", "",
                                   template.strip(), ""))


def never_runs(relpath: str) -> bool:
    """Apple MLX code paths never run on the CUDA setups the doctor diagnoses; nor do the
    benchmarks and tests a wheel carries (unsloth/kernels/moe/benchmark/ repeats transformers'
    messages, and as the first tier it hid the file that really raised them)."""
    parts = relpath.replace(os.sep, "/").split("/")
    return any(p == "mlx" or "_mlx" in p or p.startswith("mlx_") or p in _NOT_RUN for p in parts)


_NOT_RUN = {"benchmark", "benchmarks", "tests", "test"}


def package_files(site_packages: Path, package: str) -> Iterator[Path]:
    root = site_packages / package
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(site_packages).as_posix()
        if not never_runs(rel) and "__pycache__" not in rel:
            yield path


def dist_version(site_packages: Path, package: str) -> str | None:
    """The installed version, from the dist-info METADATA (no import)."""
    for meta in sorted(site_packages.glob(f"{package}-*.dist-info/METADATA")):
        with open(meta, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    return None


def build_package(site_packages: Path, package: str) -> list[SiteRecord]:
    out: list[SiteRecord] = []
    for path in package_files(site_packages, package):
        rel = path.relative_to(site_packages).as_posix()
        out += sites_from_source(path.read_text(encoding="utf-8", errors="replace"), rel)
    return out
