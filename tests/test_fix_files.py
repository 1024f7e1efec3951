"""--fix on configs, scripts and notebooks: only the value a fix names changes, the diff is
shown without --fix, the result re-scans clean for the fixed finding, undo restores bytes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from doctor.fixes.apply import apply_fixes
from doctor.fixes.journal import Journal
from doctor.probes.codeedit import code_edit
from doctor.probes.config import config_observations
from doctor.probes.script import read_source, scan_source
from tests.helpers.cli import ROOT, run_cli

AXOLOTL = ROOT / "fixtures" / "configs" / "axolotl"
OFFICIAL = ROOT / "fixtures" / "notebooks" / "official"

RUN_YAML = """\
# my Unsloth run
model_name: unsloth/Qwen2.5-3B-Instruct   # base
fast_inference: true
lora:
  r: 128
  lora_alpha: 128
  target_modules:
  - q_proj
  - v_proj
max_lora_rank: 64   # vLLM buffer
training:
  fp16: true
  bf16: true
  learning_rate: 2.0e-4
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


def rescan_script(path: str) -> list:
    return scan_source(read_source(path))


def test_yaml_config_diff_without_fix_then_safe_fix_then_undo(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML)
    env = {"UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")}
    shown = run_cli("scan", "--no-env", "--config", str(cfg), env=env)
    assert "+max_lora_rank: 128   # vLLM buffer" in shown.stdout and cfg.read_text() == RUN_YAML
    fixed = run_cli("scan", "--no-env", "--config", str(cfg), "--fix", env=env)
    # the safe fix only: fp16/bf16 needs --unsafe-fixes (which of the two depends on the GPU)
    assert changed_lines(RUN_YAML, cfg.read_text()) == [("max_lora_rank: 64   # vLLM buffer",
                                                        "max_lora_rank: 128   # vLLM buffer")]
    assert "CONFIG-FP16-AND-BF16" in fixed.stdout and "CONFIG-MAX-LORA-RANK" not in fixed.stdout.split("fixed")[0]
    assert run_cli("undo", env=env).returncode == 0
    assert cfg.read_bytes() == RUN_YAML.encode()


def test_unsafe_fix_on_a_real_axolotl_config_changes_one_line(tmp_path: Path) -> None:
    original = (AXOLOTL / "llama-3_qlora.yml").read_text().replace("bf16: auto\n", "bf16: true\nfp16: true\n")
    cfg = tmp_path / "qlora.yml"
    cfg.write_text(original)
    assert sorted(o.entry_id for o in config_observations(str(cfg))) == ["CONFIG-FP16-AND-BF16", "CONFIG-LORA-ALPHA-LOW"]
    journal = Journal(tmp_path / "journal")
    assert apply_fixes([str(cfg)], config_observations, unsafe=False, label="t", journal=journal) == []
    applied = apply_fixes([str(cfg)], config_observations, unsafe=True, label="t", journal=journal)
    assert [a.entry_id for a in applied] == ["CONFIG-FP16-AND-BF16"]
    assert changed_lines(original, cfg.read_text()) == [("fp16: true", "fp16: false")]   # comments and all kept
    journal.undo_last()
    assert cfg.read_text() == original


def test_json_config_fix_keeps_key_order_indentation_and_text(tmp_path: Path) -> None:
    original = ('{\n    "model_name": "unsloth/Qwen2.5-3B-Instruct",\n    "note": "réglé à la main",\n'
                '    "fast_inference": true,\n    "r": 128,\n    "max_lora_rank":   64,\n    "learning_rate": 2e-4\n}\n')
    cfg = tmp_path / "run.json"
    cfg.write_text(original)
    applied = apply_fixes([str(cfg)], config_observations, unsafe=False, label="t", journal=Journal(tmp_path / "j"))
    assert [a.entry_id for a in applied] == ["CONFIG-MAX-LORA-RANK"]
    assert cfg.read_text() == original.replace('"max_lora_rank":   64', '"max_lora_rank":   128')


def test_script_keyword_fix_goes_through_libcst_keeping_quotes_and_comments(tmp_path: Path) -> None:
    original = ("from unsloth import FastLanguageModel\n"
                "model = FastLanguageModel.get_peft_model(\n"
                "    model,\n"
                "    r = 16,      # rank\n"
                "    bias = 'all',  # train the biases too\n"
                ")\n")
    script = tmp_path / "train.py"
    script.write_text(original)
    (obs,) = rescan_script(str(script))
    assert obs.entry_id == "SCRIPT-LORA-BIAS" and "+    bias = 'none',  # train the biases too" in obs.fixes[0].edits[0].diff
    journal = Journal(tmp_path / "journal")
    assert apply_fixes([str(script)], rescan_script, unsafe=False, label="t", journal=journal) == []
    apply_fixes([str(script)], rescan_script, unsafe=True, label="t", journal=journal)
    assert changed_lines(original, script.read_text()) == [("    bias = 'all',  # train the biases too",
                                                           "    bias = 'none',  # train the biases too")]
    assert rescan_script(str(script)) == []
    journal.undo_last()
    assert script.read_text() == original


def test_official_notebook_import_order_fix_touches_one_cell_and_undo_restores(tmp_path: Path) -> None:
    nb = tmp_path / "muse.ipynb"
    shutil.copy(OFFICIAL / "Muse_Glimmer_(30B)-Conversational.ipynb", nb)
    original = nb.read_bytes()
    env = {"UNSLOTH_DOCTOR_STATE": str(tmp_path / "state")}
    shown = run_cli("scan", "--no-env", "--script", str(nb), env=env)
    assert "(cell 7)" in shown.stdout and "+import unsloth" in shown.stdout and nb.read_bytes() == original
    run_cli("scan", "--no-env", "--script", str(nb), "--fix", env=env)
    before, after = json.loads(original), json.loads(nb.read_text())
    changed = [i + 1 for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert changed == [7] and len(after["cells"]) == len(before["cells"])
    assert {k: v for k, v in after["cells"][6].items() if k != "source"} == \
        {k: v for k, v in before["cells"][6].items() if k != "source"}
    assert "import unsloth  # first" in "".join(after["cells"][6]["source"])
    # the file's own layout: one more line, every other line as it was
    old_lines, new_lines = original.decode().splitlines(), nb.read_text().splitlines()
    assert len(new_lines) == len(old_lines) + 1 and set(old_lines) <= set(new_lines)
    assert "SCRIPT-IMPORT-ORDER" not in [o.entry_id for o in rescan_script(str(nb))]
    nbformat.validate(nbformat.reads(nb.read_text(), as_version=nbformat.NO_CONVERT))   # Jupyter's own schema
    assert run_cli("undo", env=env).returncode == 0 and nb.read_bytes() == original


def test_notebook_keyword_fix_beside_magics_keeps_the_notebook_valid(tmp_path: Path) -> None:
    cells = [("code", "%%capture\n!pip install unsloth\n"),
             ("markdown", "# Save"),
             ("code", "!ls outputs\nif True:\n    !echo saving\n"
                      "    model.save_pretrained_merged('out', tok, save_method = 'merged_4bit')\n")]
    nb = {"cells": [{"cell_type": k, "id": f"c{i}", "metadata": {}, "source": s.splitlines(keepends=True),
                     **({"outputs": [{"output_type": "stream", "name": "stdout", "text": ["ok\n"]}],
                         "execution_count": 3} if k == "code" else {})} for i, (k, s) in enumerate(cells)],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "save.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    journal = Journal(tmp_path / "journal")
    applied = apply_fixes([str(path)], rescan_script, unsafe=True, label="t", journal=journal)
    assert [a.entry_id for a in applied] == ["SCRIPT-MERGED-4BIT"]
    after = json.loads(path.read_text())
    assert after["cells"][2]["source"][-1] == "    model.save_pretrained_merged('out', tok, save_method = 'merged_16bit')\n"
    assert after["cells"][2]["outputs"] == nb["cells"][2]["outputs"] and after["cells"][:2] == nb["cells"][:2]
    assert rescan_script(str(path)) == []
    nbformat.validate(nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT))


def test_a_change_to_a_magic_line_is_not_carried_back(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                           "source": ["!pip install unsloth\n", "x = 1\n"]}]}))
    src = read_source(str(path))
    magic = src.text.split("\n")[0]
    assert code_edit(src, src.text.replace(magic, "pass", 1), "d") is None
    assert code_edit(src, src.text.replace("x = 1", "x = 2"), "d") is not None


def test_without_libcst_a_script_fix_says_what_to_install(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("from unsloth import FastLanguageModel\nFastLanguageModel.get_peft_model(m, bias='all')\n")
    code = ("import sys; sys.modules['libcst'] = None\n"   # as if the [fix] extra were not installed
            "from doctor.probes.script import read_source, scan_source\n"
            f"(o,) = scan_source(read_source({str(script)!r}))\n"
            "print(o.fixes[0].safety.value, o.fixes[0].edits, o.fixes[0].text)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.startswith("manual () ") and "unsloth-doctor[fix]" in out.stdout


def test_save_method_typos_are_fixed_safely_in_scripts_and_configs(tmp_path: Path) -> None:
    script = tmp_path / "save.py"
    original = 'model.save_pretrained_merged("out", tokenizer, save_method = "merged16bit")  # for GGUF\n'
    script.write_text(original)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model_name: unsloth/x\nmax_seq_length: 2048\nsave_method: 'merged-16bit'   # export\n")
    journal = Journal(tmp_path / "journal")
    assert [a.entry_id for a in apply_fixes([str(script)], rescan_script, False, "t", journal=journal)] == \
        ["SCRIPT-SAVE-METHOD-UNKNOWN"]
    assert script.read_text() == original.replace("merged16bit", "merged_16bit")
    assert [a.entry_id for a in apply_fixes([str(cfg)], config_observations, False, "t", journal=journal)] == \
        ["CONFIG-SAVE-METHOD-UNKNOWN"]
    assert cfg.read_text().endswith("save_method: 'merged_16bit'   # export\n")


def test_a_save_method_with_no_clear_meaning_gets_no_edit(tmp_path: Path) -> None:
    for value in ("merged_8bit", "merged_4bits"):   # no 8-bit merge; merged_4bit itself is refused
        (obs,) = scan_source(read_source("s.py", f"model.save_pretrained_merged('o', t, save_method='{value}')\n"))
        assert obs.entry_id == "SCRIPT-SAVE-METHOD-UNKNOWN" and obs.fixes == ()
