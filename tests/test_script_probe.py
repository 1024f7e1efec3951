"""Training scripts and notebooks: folklore found at its line; safe edits apply, re-check, undo."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from doctor.fixes.apply import apply_fixes
from doctor.fixes.journal import Journal
from doctor.probes.script import read_source, scan_source, scan_script
from tests.helpers.cli import ROOT, run_cli


def ids(observations) -> list[str]:
    return sorted(o.entry_id for o in observations)


def test_demo_script_shows_each_myth_at_its_line() -> None:
    result = scan_script(str(ROOT / "fixtures/demo/train.py"))
    found = {o.entry_id: o.location.line for o in result.observations}
    text = (ROOT / "fixtures/demo/train.py").read_text().splitlines()
    assert "UnslothModel" in text[found["SCRIPT-UNSLOTH-MODEL-IMPORT"] - 1]
    assert "set_default_dtype" in text[found["SCRIPT-SET-DEFAULT-DTYPE-BF16"] - 1]
    assert "learning_rate" in text[found["SCRIPT-LR-TOO-HIGH"] - 1]
    assert "merge_and_unload" in text[found["SCRIPT-MERGE-AND-UNLOAD"] - 1]
    assert "from unsloth import" in text[found["SCRIPT-IMPORT-ORDER"] - 1]


def test_notebook_cells_and_magics(tmp_path: Path) -> None:
    nb = {"cells": [
        {"cell_type": "code", "source": ["!pip install unsloth\n", "%time x = 1\n"]},
        {"cell_type": "markdown", "source": ["from unsloth import UnslothModel"]},
        {"cell_type": "code", "source": ["from transformers import AutoModelForCausalLM\n",
                                         "m = AutoModelForCausalLM.from_pretrained('out', trust_remote_code=True)\n"]},
    ]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert ids(scan_script(str(path)).observations) == ["SCRIPT-TRUST-REMOTE-CODE"]


def test_syntax_error_is_located(tmp_path: Path) -> None:
    (obs,) = scan_source(read_source("bad.py", "x = 1\ndef f(:\n"))
    assert obs.entry_id == "SCRIPT-SYNTAX-ERROR" and obs.location.line == 2


def test_fix_moves_import_first_and_undo_restores(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    shutil.copy(ROOT / "fixtures/demo/train.py", script)
    original = script.read_text()
    journal = Journal(tmp_path / "journal")
    rescan = lambda p: scan_source(read_source(p))  # noqa: E731
    applied = apply_fixes([str(script)], rescan, unsafe=False, label="t", journal=journal)
    assert len(applied) == 1 and applied[0].entry_id == "SCRIPT-IMPORT-ORDER"
    assert "SCRIPT-IMPORT-ORDER" not in ids(rescan(str(script)))
    compile(script.read_text(), "train.py", "exec")  # still valid Python
    journal.undo_last()
    assert script.read_text() == original


def test_cli_fix_then_undo(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("from trl import SFTTrainer\nfrom unsloth import FastLanguageModel\n")
    shown = run_cli("scan", "--no-env", "--script", str(script))
    assert "+import unsloth" in shown.stdout and script.read_text().startswith("from trl")
    fixed = run_cli("scan", "--no-env", "--script", str(script), "--fix")
    assert fixed.returncode == 0 and script.read_text().startswith("import unsloth")
    assert "unsloth-doctor undo" in fixed.stdout
    undone = run_cli("undo")
    assert undone.returncode == 0 and script.read_text().startswith("from trl")


def _notebook(tmp_path: Path, *cells: tuple[str, str], one_string: bool = False) -> Path:
    """A notebook written the way Jupyter writes it (indent=1, one source line per element)."""
    nb = {"cells": [{"cell_type": kind, "metadata": {}, "source": src if one_string else src.splitlines(keepends=True)}
                    for kind, src in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    return path


OFFICIAL_SHAPES = (
    ("code", "%%capture\nimport os\nif 'COLAB_' not in ''.join(os.environ.keys()):\n    !pip install unsloth\n"
             "else:\n    !pip install --no-deps bitsandbytes \\\n        accelerate xformers\n"),
    ("markdown", "# Training"),
    ("code", "%%bash\nls -la\n"),
    ("code", "x = !ls\nlen?\nfrom unsloth import FastLanguageModel\n"),
    ("code", "from trl import SFTTrainer\nimport torch\ntorch.set_default_dtype(torch.bfloat16)\n"),
)


def test_official_notebook_shapes_parse_and_are_checked(tmp_path: Path) -> None:
    path = _notebook(tmp_path, *OFFICIAL_SHAPES)
    assert ids(scan_script(str(path)).observations) == ["SCRIPT-SET-DEFAULT-DTYPE-BF16"]


@pytest.mark.parametrize("one_string", [False, True])
def test_notebook_finding_names_its_cell_and_the_file_line(tmp_path: Path, one_string: bool) -> None:
    path = _notebook(tmp_path, *OFFICIAL_SHAPES, one_string=one_string)
    (obs,) = scan_script(str(path)).observations
    where = obs.location
    assert (where.cell, where.cell_line) == (5, 3)
    assert str(where) == f"{path} cell 5, line 3"
    raw_line = path.read_text().splitlines()[where.line - 1]
    assert raw_line[where.column - 1:].startswith("torch.set_default_dtype")


def test_notebook_column_counts_json_escapes(tmp_path: Path) -> None:
    path = _notebook(tmp_path, ("code", 's = "\\"é\\"";  torch.set_default_dtype(torch.bfloat16)\n'))
    (obs,) = scan_script(str(path)).observations
    raw_line = path.read_text().splitlines()[obs.location.line - 1]
    assert raw_line[obs.location.column - 1:].startswith("torch.set_default_dtype")


def test_notebook_syntax_error_names_its_cell(tmp_path: Path) -> None:
    path = _notebook(tmp_path, ("code", "x = 1\n"), ("code", "y = 2\ndef f(:\n"))
    (obs,) = scan_script(str(path)).observations
    assert obs.entry_id == "SCRIPT-SYNTAX-ERROR" and (obs.location.cell, obs.location.cell_line) == (2, 2)


DEAD = "model.save_pretrained_merged('out', tok, save_method='merged_4bit')"


@pytest.mark.parametrize("code, expected", [
    (f"if False:\n    {DEAD}\n", []),
    (f"if 0: {DEAD}\n", []),
    (f"if not True:\n    {DEAD}\n", []),
    (f"if False and x:\n    {DEAD}\n", []),
    (f"while False:\n    {DEAD}\n", []),
    (f"for i in x:\n    if False:\n        {DEAD}\n", []),
    (f"if False:\n    pass\nelse:\n    {DEAD}\n", ["SCRIPT-MERGED-4BIT"]),
    (f"if True:\n    {DEAD}\n", ["SCRIPT-MERGED-4BIT"]),
    (f"if x:\n    {DEAD}\n", ["SCRIPT-MERGED-4BIT"]),
])
def test_code_that_never_runs_is_not_checked(code: str, expected: list[str]) -> None:
    assert ids(scan_source(read_source("t.py", code))) == expected


def test_unsloth_in_a_comment_or_string_is_not_an_import() -> None:
    lora = "from peft import LoraConfig\ncfg = LoraConfig(r=32)\n"
    assert ids(scan_source(read_source("t.py", "# trained with unsloth\n" + lora))) == []
    assert ids(scan_source(read_source("t.py", "s = 'unsloth'\n" + lora))) == []
    assert ids(scan_source(read_source("t.py", "import unsloth\n" + lora))) == ["SCRIPT-RAW-LORA-CONFIG"]


def test_dead_branch_in_an_official_notebook_shape(tmp_path: Path) -> None:
    path = _notebook(tmp_path, ("code", f"if False: # Change to True to save\n    {DEAD}\n"))
    assert ids(scan_script(str(path)).observations) == []


def test_import_order_in_a_notebook_names_cells(tmp_path: Path) -> None:
    path = _notebook(tmp_path, ("code", "!pip install x\nimport transformers\n"), ("markdown", "hi"),
                     ("code", "x = 1\nfrom unsloth import FastModel\n"))
    (obs,) = scan_script(str(path)).observations
    assert obs.entry_id == "SCRIPT-IMPORT-ORDER"
    assert (obs.values["module_at"], obs.values["unsloth_at"]) == ("cell 1, line 2", "cell 3, line 2")


def test_parsing_prints_no_warnings_of_the_users_code() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan_source(read_source("t.py", 'pattern = "\\{x\\}"\n'))
    assert [str(w.message) for w in caught] == []


def test_odd_cells_still_place_findings(tmp_path: Path) -> None:
    nb = {"cells": [{"cell_type": "code", "source": []}, {"cell_type": "code", "source": 5},
                    {"cell_type": "code", "source": ["import torch\n", 7, "torch.set_default_dtype(torch.bfloat16)"]},
                    {"cell_type": "code", "source": ""}]}
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    (obs,) = scan_script(str(path)).observations
    assert (obs.location.cell, obs.location.cell_line) == (3, 2)
    assert path.read_text().splitlines()[obs.location.line - 1].lstrip().startswith('"torch.set_default_dtype')
