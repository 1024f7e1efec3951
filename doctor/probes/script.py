"""Training scripts and notebooks, read with `ast` (never run, never imported).

Finds the seed blog's folklore where users apply it (`UnslothModel`, a global bf16 default,
`trust_remote_code` for Unsloth exports, an LR scaled up by a formula, a raw PEFT LoraConfig,
`merge_and_unload` on a 4-bit model) and Unsloth's own rules (import order, merged_4bit),
each at its line and column. Some come with an edit a fix can apply.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Fix, Location, Observation, Safety
from doctor.probes import limits, pep701, savemethod
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.codeedit import code_edit, keyword_fix
from doctor.probes.livecode import imports_module, live_module
from doctor.probes.system import NotAPython, absolute_python, other_python
from doctor.probes.notebook import CellLine, file_place, read_notebook, string_places
from doctor.probes.settings.cross import example as cross_example
from doctor.probes.settings.extract import dotted_name as _name   # `a.b.c` of a dotted name, "" otherwise
from doctor.probes.settings.rules import LORA_LR_CEILING
from doctor.probes.script_settings import (example_stack, is_requirements_file, requirements_example, scan_requirements,
                                           script_settings)

_PATCHED_BY_UNSLOTH = ("trl", "transformers", "peft")
LR_CEILING = LORA_LR_CEILING   # config.py reads the same ceiling
# The Python named in a syntax error: the grammar is its own, plus 3.12's f-strings (pep701).
_PYTHON = ".".join(map(str, sys.version_info[:2]))


@dataclass(frozen=True)
class Source:
    """Python text with a map from its lines to where they stand in the user's file."""

    path: str
    text: str
    places: tuple[CellLine, ...] = ()   # a notebook's: where each line of text comes from
    raw: str = ""                       # a notebook's JSON text, to place findings in it
    refused: Observation | None = None  # why the file was not read (then text is "")
    commands: tuple[tuple[int, str], ...] = ()   # a notebook's magics and shell escapes, by line of text
    # where each cell's source strings stand in `raw`, found on the first finding placed
    _strings: dict[tuple[int, int], int] = field(default_factory=dict, compare=False, repr=False)

    def line_name(self, line: int) -> str:
        """A line of text as people find it: "line 12", or "cell 7, line 3" in a notebook."""
        if not self.places:
            return f"line {line}"
        place = self.places[min(max(line, 1), len(self.places)) - 1]
        return f"cell {place.cell}, line {place.line}"

    def where(self, line: int, col: int, in_bytes: bool = True) -> Location:
        """`line` (1-based) and `col` (0-based) of text, as a place in the user's file.
        `ast` counts columns in UTF-8 bytes; editors and SARIF count characters."""
        if in_bytes:
            col = _char_column(self.text, line, col)
        if not self.places:
            return Location(self.path, line, col + 1)
        place = self.places[min(max(line, 1), len(self.places)) - 1]
        if not self._strings:
            self._strings.update(string_places(self.raw) or {(0, 0): 0})
        raw_line, raw_col = file_place(self.raw, self._strings, place, col)
        return Location(self.path, raw_line, raw_col, cell=place.cell, cell_line=place.line)


    def where_later(self, line: int, col: int) -> dict[str, Any]:
        """What `where` needs, as plain data, without reading a notebook's JSON again: for a
        fact that becomes a finding only if another target of the scan completes it."""
        col = _char_column(self.text, line, col)
        if not self.places:
            return {"path": self.path, "line": line, "column": col + 1, "name": self.line_name(line)}
        place = self.places[min(max(line, 1), len(self.places)) - 1]
        return {"path": self.path, "cell": place.cell, "cell_line": place.line, "part": place.part,
                "offset": place.offset, "char": col, "name": self.line_name(line)}


def _char_column(text: str, line: int, col: int) -> int:
    if text.isascii():
        return col
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return col
    return len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def read_source(path: str, raw: str | None = None, max_bytes: int | None = None) -> Source:
    """The Python text of a script or notebook. A file past its size limit, or a notebook
    nested too deeply, comes back empty with the observation that says so."""
    notebook = path.endswith(".ipynb")
    if max_bytes is None:
        max_bytes = limits.NOTEBOOK_MAX_BYTES if notebook else limits.SCRIPT_MAX_BYTES
    try:
        if raw is None:
            text = limits.read_text(path, max_bytes, errors="replace")
        else:
            limits.check_size(raw, max_bytes)
            text = raw
        if not notebook:
            return Source(path, text)
        try:
            parsed = limits.load_json(text)     # one parse: the depth check's and the reader's
        except ValueError:
            parsed = None
        src = _notebook_source(path, text, parsed)
        limits.check_size(src.text, limits.SCRIPT_MAX_BYTES)   # its code is parsed like a script
        return src
    except limits.Refusal as refused:
        if refused.kind == limits.TOO_LARGE:
            values = {"file": Path(path).name, **refused.values}
            return Source(path, "", refused=Observation("SCRIPT-TOO-LARGE", Location(path, 1, 1), values))
        detail = f"the notebook's JSON nests more than {refused.values['limit']} levels deep"
        return Source(path, "", refused=Observation("SCRIPT-NESTING-TOO-DEEP", Location(path, refused.line, refused.column),
                                                    {"file": Path(path).name, "detail": detail}))


def _notebook_source(path: str, text: str, parsed: Any = None) -> Source:
    code = read_notebook(text, parsed)   # magics and shell escapes read as IPython reads them
    if code is None:
        return Source(path, "")
    return Source(path, code.text, places=code.lines, raw=text, commands=code.commands)


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _const(node: ast.expr | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None


def scan_source(src: Source) -> list[Observation]:
    return _scan(src)[0]


def _scan(src: Source, site_dirs: tuple[str, ...] | None = None) -> tuple[list[Observation], dict[str, Any]]:
    """The observations of a script, and the facts its settings give (for rules that read
    the environment or a model folder too). `site_dirs`: where the installed unsloth and trl
    are looked up (default: this interpreter's path)."""
    if src.refused is not None:
        return [src.refused], {}
    try:
        tree = pep701.parse(src.text, filename=src.path)   # 3.12 f-strings too, whatever Python runs this
    except SyntaxError as exc:
        return [Observation("SCRIPT-SYNTAX-ERROR", src.where(exc.lineno or 1, max((exc.offset or 1) - 1, 0), in_bytes=False),
                            {"error": exc.msg, "line": exc.lineno, "python": _PYTHON})], {}
    except (RecursionError, MemoryError) as exc:
        # CPython gives up on an expression nested too deeply to build (thousands of chained
        # operators or attributes): RecursionError, or MemoryError from its parser's stack.
        line, col = _densest_statement(src.text)
        error = str(exc) or type(exc).__name__
        return [Observation("SCRIPT-NESTING-TOO-DEEP", src.where(line, col - 1, in_bytes=False),
                            {"file": Path(src.path).name, "detail": f"Python cannot parse this statement ({error})"})], {}
    tree = live_module(tree)   # code under `if False:` never runs: no check reads it
    obs: list[Observation] = []
    obs += _import_checks(src, tree)
    obs += _call_checks(src, tree)
    settings, facts = script_settings(src, tree, site_dirs)
    return obs + settings, facts


def _densest_statement(text: str) -> tuple[int, int]:
    """Line and column of the statement with the most tokens: where the parser gave up.
    The tokenizer is a flat loop, so it reads what the parser could not."""
    import io
    import tokenize

    best, count, start = (0, 1, 1), 0, None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if start is None and tok.type not in skip:
                start = tok.start
            count += 1
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if count > best[0]:
                    best = (count, start[0], start[1] + 1)
                count, start = 0, None
    except (tokenize.TokenError, SyntaxError):
        pass
    if start is not None and count > best[0]:   # the statement the tokenizer stopped in
        best = (count, start[0], start[1] + 1)
    return best[1], best[2]


def _import_checks(src: Source, tree: ast.Module) -> list[Observation]:
    out: list[Observation] = []
    first_patched: tuple[str, ast.stmt] | None = None
    unsloth_at: ast.stmt | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "unsloth":
            for alias in node.names:
                if alias.name == "UnslothModel":
                    out.append(Observation("SCRIPT-UNSLOTH-MODEL-IMPORT", src.where(node.lineno, node.col_offset)))
    for node in tree.body:  # order matters at module level, in execution order
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top == "unsloth" and unsloth_at is None:
                unsloth_at = node
            elif top in _PATCHED_BY_UNSLOTH and first_patched is None and unsloth_at is None:
                first_patched = (top, node)
    if first_patched and unsloth_at is not None:
        module, node = first_patched
        out.append(Observation(
            "SCRIPT-IMPORT-ORDER", src.where(unsloth_at.lineno, unsloth_at.col_offset),
            {"module": module, "module_line": node.lineno, "unsloth_line": unsloth_at.lineno,
             "module_at": src.line_name(node.lineno), "unsloth_at": src.line_name(unsloth_at.lineno)},
            fixes=_import_order_fix(src, node),
        ))
    return out


def _import_order_fix(src: Source, first_import: ast.stmt) -> tuple[Fix, ...]:
    lines = src.text.splitlines(keepends=True)
    at = first_import.lineno - 1
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    new = [*lines[:at], f"{indent}import unsloth  # first, so Unsloth can patch trl/transformers/peft\n", *lines[at:]]
    text = "Import unsloth before trl, transformers and peft"
    if src.places:
        text += " (then restart the kernel and run the notebook again)"
    edit = code_edit(src, "".join(new), "move `import unsloth` first")
    return (Fix(text, Safety.SAFE, "edit", edits=(edit,)),) if edit else ()


class _Lazy:
    """A call's place, found when a finding is built from it (most calls find nothing)."""

    def __init__(self, src: Source, node: ast.expr) -> None:
        self.src, self.node = src, node

    def __call__(self) -> Location:
        return self.src.where(self.node.lineno, self.node.col_offset)


def sets_environ(tree: ast.Module, name: str, value: str) -> bool:
    """The code sets the environment variable `name` to `value`: os.environ[name] = value,
    os.environ.setdefault(name, value), os.environ.update({name: value}) or os.putenv."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _const(node.value) == value:
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _name(target.value).endswith("environ") \
                        and _const(target.slice) == name:
                    return True
        if isinstance(node, ast.Call):
            called = _name(node.func)
            if called.endswith(("environ.setdefault", "putenv")) and len(node.args) == 2 \
                    and _const(node.args[0]) == name and _const(node.args[1]) == value:
                return True
            if called.endswith("environ.update") and node.args and isinstance(node.args[0], ast.Dict):
                pairs = zip(node.args[0].keys, node.args[0].values)
                if any(k is not None and _const(k) == name and _const(v) == value for k, v in pairs):
                    return True
    return False


def _loaded_model(call: ast.Call) -> str | None:
    """The model a from_pretrained call loads, as code (a name or a literal), to compare calls."""
    node = call.args[0] if call.args else _kw(call, "model_name") or _kw(call, "pretrained_model_name_or_path")
    return ast.dump(node) if node is not None else None


def _call_checks(src: Source, tree: ast.Module) -> list[Observation]:
    out: list[Observation] = []
    loads_4bit = False
    uses_unsloth = imports_module(tree, "unsloth")   # the code's imports, not a comment's words
    fused_dropout_off = sets_environ(tree, "UNSLOTH_FUSED_LORA_DROPOUT", "0")
    # what Unsloth's loaders load is a base model: if it needs remote code, so do its processors
    base_models = {_loaded_model(c) for c in _calls(tree)
                   if _name(c.func).endswith("from_pretrained") and "Fast" in _name(c.func)} - {None}
    for call in _calls(tree):
        name = _name(call.func)
        tail = name.rsplit(".", 1)[-1]
        where = _Lazy(src, call)   # placing a notebook line reads the file again: only on a finding
        if tail == "from_pretrained" and ("FastLanguageModel" in name or "FastModel" in name):
            flag = _kw(call, "load_in_4bit")
            # Unsloth's loaders default to load_in_4bit=True
            loads_4bit = loads_4bit or flag is None or _const(flag) is True
        if name.endswith("set_default_dtype") and call.args and _name(call.args[0]).endswith("bfloat16"):
            out.append(Observation("SCRIPT-SET-DEFAULT-DTYPE-BF16", where()))
        if tail == "from_pretrained" and _const(_kw(call, "trust_remote_code")) is True and "Auto" in name \
                and _loaded_model(call) not in base_models:
            out.append(Observation("SCRIPT-TRUST-REMOTE-CODE", where(), {"call": name}))
        if tail == "LoraConfig" and uses_unsloth:
            out.append(Observation("SCRIPT-RAW-LORA-CONFIG", where()))
        if tail == "get_peft_model":
            # Unsloth 2026.10 runs lora_dropout inside its fused LoRA kernels unless
            # UNSLOTH_FUSED_LORA_DROPOUT=0; a bias other than "none" always turns them off.
            dropout = _const(_kw(call, "lora_dropout"))
            if isinstance(dropout, (int, float)) and dropout and fused_dropout_off:
                out.append(Observation("SCRIPT-LORA-DROPOUT", where(), {"dropout": dropout}, fixes=keyword_fix(
                    src, _kw(call, "lora_dropout").lineno, "lora_dropout", 0, "Set lora_dropout=0", Safety.UNSAFE)))
            bias = _const(_kw(call, "bias"))
            if isinstance(bias, str) and bias != "none" and uses_unsloth:
                out.append(Observation("SCRIPT-LORA-BIAS", where(), {"bias": bias}, fixes=keyword_fix(
                    src, _kw(call, "bias").lineno, "bias", "none", 'Set bias="none"', Safety.UNSAFE)))
        if _const(_kw(call, "ddp_find_unused_parameters")) is False:
            out.append(Observation("SCRIPT-DDP-FIND-UNUSED", where()))
        if _const(_kw(call, "save_method")) == "merged_4bit":
            out.append(Observation("SCRIPT-MERGED-4BIT", where(), fixes=keyword_fix(
                src, _kw(call, "save_method").lineno, "save_method", "merged_16bit",
                'Save with save_method="merged_16bit"', Safety.UNSAFE)))
        method = _const(_kw(call, "save_method"))
        if "merged" in tail and savemethod.unknown(method):   # save_pretrained_merged, push_to_hub_merged
            meant = savemethod.intended(method)
            fixes = keyword_fix(src, _kw(call, "save_method").lineno, "save_method", meant,
                                f'Set save_method="{meant}"') if meant and meant != "merged_4bit" else ()
            out.append(Observation("SCRIPT-SAVE-METHOD-UNKNOWN", where(), {"save_method": method, "meant": meant or "-"},
                                   fixes=fixes))
        if tail == "merge_and_unload":
            out.append(Observation("SCRIPT-MERGE-AND-UNLOAD", where()))
    # merge_and_unload is only a problem on a 4-bit model: decide once every load is seen
    return [o for o in out if o.entry_id != "SCRIPT-MERGE-AND-UNLOAD" or loads_4bit]


def scan_script(path: str, site_dirs: tuple[str, ...] | None = None) -> ProbeResult:
    if is_requirements_file(Path(path).name):
        return scan_requirements(path, site_dirs)
    src = read_source(path)
    observations, settings_facts = _scan(src, site_dirs)
    facts = FactCollector(f"script:{path}")
    facts.set(f"script.{Path(path).name}.findings", len(observations))
    for key, value in settings_facts.items():
        facts.set(key, value)
    return ProbeResult(facts=facts.freeze(), observations=observations,
                       areas=[AreaStatus("script", f"Script {path}", path=path)])


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    max_bytes = int(options["max_bytes"]) if "max_bytes" in options else None   # small limits, for examples
    return _scan(read_source(options.get("name", "train.py"), text, max_bytes), example_stack())[0]


def _site_dirs(python: str | None) -> tuple[str, ...] | None:
    """The path of the interpreter `scan --python` names (where its unsloth and trl are)."""
    if not python:
        return None
    try:
        return other_python(absolute_python(python)).site_dirs
    except NotAPython:
        return None   # the environment probe reports an interpreter that does not run


class ScriptProbe(Probe):
    """Training scripts and notebooks, read with `ast` (never run)."""

    name, area, label = "script", "script", "Script"
    headings = {"script": "Training scripts"}
    suffixes = (".py", ".ipynb")
    option, option_help = "--script", "a training script or notebook"
    examples = {"script.py": _example, "requirements.txt": requirements_example, "script+data": cross_example}

    def claims_file(self, path: Path) -> bool:
        return super().claims_file(path) or is_requirements_file(path.name)

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_script(target.path, _site_dirs(context.options.python))


PROBE = ScriptProbe()

