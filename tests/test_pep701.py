"""Python 3.12 f-strings (PEP 701) read on any Python: the code after them keeps its places,
and a file broken on 3.12 too still gets its syntax error at the right line."""
from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from doctor.probes import pep701
from doctor.probes.script import read_source, scan_source
from tests.helpers.cli import ROOT

# an official notebook written for Colab's Python 3.12 (vendored, outputs stripped)
VISION_GRPO = ROOT / "fixtures" / "notebooks" / "official" / "Gemma3_(4B)-Vision-GRPO.ipynb"
LOAD = 'model, tok = FastLanguageModel.from_pretrained("unsloth/x", load_in_4bit = True)\n'

# 3.12-only f-strings as people write them; each is followed by a load whose place is checked
PEP701 = {
    "nested same quotes (Gemma3 Vision GRPO)":
        'prompt = f"{dataset[100]["question"]}, provide your reasoning between {START} and {END}"\n',
    "conversion and nested spec with same quotes":
        'cell = f"{row["name"]!r:>{widths["name"]}}"\n',
    "backslash in the expression":
        "text = f\"{'\\n'.join(lines)}\"\n",
    "multi-line field with comments":
        'text = f"{\n    tokenizer.apply_chat_template(  # the chat format\n'
        '        messages, tokenize = False,  # a string, not ids\n    )\n}"\n',
    "multi-line field with a blank line":
        'text = f"{\n\n    tokenizer.eos_token\n  }"\n',
    "multi-line field, blank line, brace first": 'text = f"{\n\n    tokenizer.eos_token\n}"\n',
    "triple-quoted, quotes inside, backslash in a field":
        'doc = f"""Answer: "{row["answer"]}" and \'{x}\'\n{"\\n".join(steps)}\n"""\n',
    "rf-string with backslashes":
        'pattern = rf"\\d+{sep}\\w+{names["k"]}\\s"\n',
    "rf-string, a backslash before braces": 'pattern = rf"\\{{{names["k"]}\\}}"\n',
    "non-ASCII before a blanked field": "label = f\"é → {'\\n'.join(a)}\"; ",
    "nested f-string with the same quote": 'msg = f"{f"{x!r}"}"\n',
    "same quote inside, load on the same line": 'msg = f"{d["k"]}"; ',
    "self-documenting field with a comment": 'dbg = f"{loss = # the value\n}{"\\n"}"\n',
    "blanks after a conversion": 'dbg = f"{loss!r  }{"\\n"}"\n',
}


def _place(text: str, needle: str) -> tuple[int, int]:
    """(1-based line, 0-based UTF-8 column) of `needle` in `text`, as ast counts them."""
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before.rsplit("\n", 1)[-1].encode("utf-8"))


def _load_call(tree: ast.AST) -> ast.Call:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "from_pretrained")


@pytest.mark.parametrize("snippet", PEP701.values(), ids=PEP701.keys())
def test_code_after_a_312_fstring_keeps_its_places(snippet: str) -> None:
    text = snippet + LOAD
    if sys.version_info < (3, 12):   # the case is one this Python cannot parse by itself
        with pytest.raises(SyntaxError):
            ast.parse(text)
    call = _load_call(pep701.parse(text))
    assert (call.lineno, call.col_offset) == _place(text, "FastLanguageModel")
    (kw,) = call.keywords
    assert (kw.lineno, kw.col_offset, kw.end_col_offset) == (*_place(text, "load_in_4bit"), _place(text, "True)")[1] + 4)


@pytest.mark.parametrize("snippet", PEP701.values(), ids=PEP701.keys())
def test_rewrite_keeps_every_byte_outside_the_literals(snippet: str) -> None:
    text = snippet + LOAD
    new, spans = pep701.downlevel(text)
    if sys.version_info < (3, 12):
        assert spans
    inside = {i for start, end in spans for i in range(start, end)}
    assert len(new) == len(text)
    assert all(new[i] == text[i] for i in range(len(text)) if i not in inside)
    assert [len(line.encode()) for line in new.split("\n")] == [len(line.encode()) for line in text.split("\n")]
    for start, end in spans:   # only f-strings were replaced, by a string of the same shape
        assert new[start:end].count("\n") == text[start:end].count("\n")


def test_the_inner_quotes_are_swapped_where_that_keeps_the_value() -> None:
    text = 'prompt = f"{sample["question"]}, reason"\n'
    new, _ = pep701.downlevel(text)
    assert new == "prompt = f\"{sample['question']}, reason\"\n"
    tree = pep701.parse(text)   # the subscript inside survives, so rules still see it
    assert any(isinstance(n, ast.Subscript) for n in ast.walk(tree))


def test_the_official_vision_grpo_notebook_parses_with_its_calls_in_place() -> None:
    text = read_source(str(VISION_GRPO)).text
    if sys.version_info < (3, 12):
        with pytest.raises(SyntaxError):
            ast.parse(text)
    loads = [c for c in ast.walk(pep701.parse(text)) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "from_pretrained"]
    assert loads and all(text.split("\n")[c.lineno - 1][c.col_offset:].startswith("FastVisionModel.from_pretrained") for c in loads)


def test_a_notebook_with_a_312_fstring_gets_its_findings_in_their_cells(tmp_path: Path) -> None:
    cells = [PEP701["nested same quotes (Gemma3 Vision GRPO)"], "model.save_pretrained_merged('out', tok, save_method='merged_4bit')\n"]
    path = tmp_path / "vision.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c} for c in cells]}))
    (obs,) = scan_source(read_source(str(path)))
    assert (obs.entry_id, obs.location.cell, obs.location.cell_line) == ("SCRIPT-MERGED-4BIT", 2, 1)


def test_a_script_with_a_312_fstring_gets_its_findings_not_a_syntax_error() -> None:
    text = PEP701["nested same quotes (Gemma3 Vision GRPO)"] + "model.save_pretrained_merged('out', tok, save_method='merged_4bit')\n"
    found = scan_source(read_source("train.py", text))
    assert [(o.entry_id, o.location.line, o.location.column) for o in found] == [("SCRIPT-MERGED-4BIT", 2, 1)]


# --- files that are broken on 3.12 too ------------------------------------------------------

BROKEN = {
    "a real error after a 3.12 f-string": ('x = f"{d["k"]}"\ny = 2\nload(a, b\nz = 3\n', "load("),
    "a real error before it": ('def f(:\n    pass\nx = f"{d["k"]}"\n', "def f("),
    "the f-string itself broken": ('x = 1\nx = f"{d["k"]"\n', 'x = f"{d'),
    "a conversion 3.12 refuses": ('x = 1\nx = f"{d["k"]!z}"\nload(1)\n', 'x = f"{d'),
    "a field 3.12 refuses, where a blank string would hide it": ("x = 1\nx = f\"{'\\n' +}\"\nload(1)\n", "x = f"),
    "an empty field after a good one": ('x = f"{d["k"]} {}"\nload(1)\n', "x = f"),
}


@pytest.mark.parametrize("text,needle", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_file_still_gets_its_syntax_error(text: str, needle: str) -> None:
    with pytest.raises(SyntaxError) as err:
        pep701.parse(text)
    assert err.value.lineno == _place(text, needle)[0]
    (obs,) = scan_source(read_source("bad.py", text))
    assert obs.entry_id == "SCRIPT-SYNTAX-ERROR" and obs.location.line == err.value.lineno
    assert obs.values["python"] == ".".join(map(str, sys.version_info[:2]))


# --- the lexer against Python's own tokenizer on real code ----------------------------------

def _token_strings(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of each outermost string literal, by `tokenize` (3.12 splits f-strings)."""
    out, depth, start = [], 0, (0, 0)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        name = tokenize.tok_name[tok.type]
        if name == "FSTRING_START":
            start = tok.start if depth == 0 else start
            depth += 1
        elif name == "FSTRING_END":
            depth -= 1
            if depth == 0:
                out.append((start, tok.end))
        elif tok.type == tokenize.STRING and depth == 0:
            out.append((tok.start, tok.end))
    return out


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, len(before.rsplit("\n", 1)[-1])


def test_the_lexer_finds_the_literals_the_tokenizer_finds_in_the_doctors_own_code() -> None:
    files = sorted((ROOT / "doctor").rglob("*.py"))
    assert len(files) > 50
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = [(_line_col(text, lit.start), _line_col(text, lit.end)) for lit in pep701.find_literals(text)]
        assert found == _token_strings(text), path.name


# --- against Python 3.12 itself, where one is installed --------------------------------------

def _python312() -> str | None:
    """A Python 3.12 or newer: $PYTHON312, else python3.12 / python3.13 on PATH that runs."""
    for exe in (os.environ.get("PYTHON312"), shutil.which("python3.12"), shutil.which("python3.13")):
        if not exe:
            continue
        done = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                              capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == "True":
            return exe
    return None


# run here and by the 3.12 interpreter: every node's place, f-strings as one "str" (3.11
# gives their parts no places of their own, and a rewritten one may be a plain string)
_POSITIONS = """
import ast
def positions(tree):
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        is_str = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
        if hasattr(node, "lineno"):
            kind = "str" if is_str else type(node).__name__
            out.append([kind, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset])
        if not is_str:
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out
"""
_DUMP = """
import json, sys
out = []
for text in json.load(sys.stdin):
    try:
        out.append(positions(ast.parse(text)))
    except SyntaxError as exc:
        out.append(exc.lineno)
json.dump(out, sys.stdout)
"""


def _dump_here(texts: list[str]) -> list:
    namespace: dict = {}
    exec(_POSITIONS, namespace)
    out = []
    for text in texts:
        try:
            out.append(namespace["positions"](pep701.parse(text)))
        except SyntaxError as exc:
            out.append(exc.lineno)
    return out


def test_places_equal_python_312s() -> None:
    exe = _python312()
    if exe is None:
        pytest.skip("no Python 3.12 here (set PYTHON312 to one)")
    # the one rewrite whose string node is not where the f-string was: its neighbours are
    same_shape = [s for name, s in PEP701.items() if name != "multi-line field, blank line, brace first"]
    texts = [s + LOAD for s in same_shape] + [t for t, _ in BROKEN.values()]
    texts.append(read_source(str(VISION_GRPO)).text)
    done = subprocess.run([exe, "-c", _POSITIONS + _DUMP], input=json.dumps(texts),
                          capture_output=True, text=True, check=True)
    assert _dump_here(texts) == json.loads(done.stdout)


def test_library_source_with_312_fstrings_is_read_too() -> None:
    """Installed packages are read with the same parser: the raise-site index of a module that
    uses a 3.12 f-string keeps its sites when the doctor runs on 3.11."""
    from doctor.explainer.raisesites import sites_from_source

    source = ('def check(x):\n    label = f"{"model"}"\n'
              '    if x:\n        raise ValueError("Unsloth: the model cannot be loaded here")\n')
    sites = sites_from_source(source, "unsloth/models/example.py")
    assert any("cannot be loaded here" in str(getattr(s, "template", s)) for s in sites), sites
