"""Notebook cells read as IPython reads them: magics, shell escapes and help become
placeholder statements, line for line, so the cell parses and line numbers stay put."""
from __future__ import annotations

import ast
import inspect
import json
import json.decoder
import tokenize

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doctor.probes.ipython import cell_to_python, python_lines

SHAPES = {
    "multi-line pip": "!pip install --no-deps \\\n    trl==0.22.2 \\\n    peft\nimport os\n",
    "capture cell": "%%capture\nimport os\nif 'COLAB_' not in ''.join(os.environ.keys()):\n    !pip install unsloth\nelse:\n    !pip install --no-deps unsloth_zoo \\\n        bitsandbytes\n",
    "escape in if": "if True:\n    !pip install x\nx = 1\n",
    "magic in for": "for i in range(2):\n    %time y = i\n",
    "bash cell": "%%bash\nif [ -d x ]; then\n  echo hi\nfi\n",
    "writefile cell": "%%writefile a.py\ndef f(:\n",
    "help": "len?\n?len\nos.path.join??\n",
    "system assign": "x = !ls\nfiles, more = %sx ls\n",
    "env magic": "%env UNSLOTH_RETURN_LOGITS = 1 # Run this\n",
    "indented cell": "  x = 1\n  !ls\n",
}


@pytest.mark.parametrize("cell", SHAPES.values(), ids=SHAPES.keys())
def test_each_shape_parses_with_its_line_count(cell: str) -> None:
    out = python_lines(cell)
    assert len(out) == len(cell.split("\n"))
    ast.parse("\n".join(out))


def test_statements_keep_their_indentation_and_place() -> None:
    out = python_lines(SHAPES["capture cell"])
    assert out[3] == "    pass" and out[5] == "    pass" and out[6] == ""
    assert out[1] == "import os"


def test_magic_assignment_keeps_the_name() -> None:
    tree = ast.parse(cell_to_python("x = !ls\nprint(x)\n"))
    assert isinstance(tree.body[0], ast.Assign) and tree.body[0].targets[0].id == "x"


def test_text_inside_strings_and_brackets_is_left_alone() -> None:
    cell = 'doc = """\n!not a shell escape\n%not a magic\n"""\nx = (1\n  % 2)\ny = "why?"\n# is this right?\n'
    assert cell_to_python(cell) == cell.rstrip("\n") + "\n"


def test_only_python_cell_magics_are_read() -> None:
    assert cell_to_python("%%time\nx = 1\n") == "\nx = 1\n"
    assert cell_to_python("%%bash\nfrom unsloth import UnslothModel\n").strip() == ""


@pytest.mark.parametrize("module", [json.decoder, tokenize, inspect, ast], ids=lambda m: m.__name__)
def test_plain_python_is_left_as_it_is(module: object) -> None:
    text = inspect.getsource(module)   # strings, brackets and continuations of every kind
    assert cell_to_python(text) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="!%?#'\"\\()[]{}=x \n\t", max_size=80))
def test_any_text_keeps_its_line_count(cell: str) -> None:
    assert len(python_lines(cell)) == len(cell.split("\n"))
