"""Real material: a vendored sample of Unsloth's official notebooks (LGPL-3.0, outputs
stripped), scripts written here by following them, and a script that follows the seed blog.

Each expected finding was checked against the notebook and the installed unsloth source."""
from __future__ import annotations

from pathlib import Path

import pytest

from doctor.probes.script import scan_script
from tests.helpers.findings import problems

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL = ROOT / "fixtures" / "notebooks" / "official"
SCRIPTS = ROOT / "fixtures" / "scripts"

# notebook -> [(finding, cell, line in the cell)]
EXPECTED = {
    "Gemma3_(4B).ipynb": [],
    "Llama3.1_(8B)-Alpaca.ipynb": [],
    "Llama3.2_(11B)-Vision.ipynb": [],
    "Mistral_v0.3_(7B)-Conversational.ipynb": [],
    "Qwen2.5_(3B)-GRPO.ipynb": [],
    "Qwen3_(14B)-Reasoning-Conversational.ipynb": [],
    # Cell 7 imports transformers to check its version; cell 10 imports unsloth after it, so
    # Unsloth's patches come too late (unsloth 2026.10.9 unsloth/_gpu_init.py:138 warns
    # "Unsloth should be imported before [transformers]"). True.
    "Muse_Glimmer_(30B)-Conversational.ipynb": [("SCRIPT-IMPORT-ORDER", 10, 1)],
    # AutoProcessor(model_path, trust_remote_code=True) on the base model that
    # FastVisionModel loads, which ships its own code: not an export, no note.
    "Paddle_OCR_(1B)_Vision.ipynb": [],
    # Python 3.12 f-strings (f"{sample["question"]}, ..."): read on 3.11 too, no syntax error.
    "Gemma3_(4B)-Vision-GRPO.ipynb": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_official_notebooks_give_only_the_findings_checked_true(name: str) -> None:
    found = [(o.entry_id, o.location.cell, o.location.cell_line)
             for o in problems(scan_script(str(OFFICIAL / name)).observations)]
    assert found == EXPECTED[name]


def test_every_vendored_notebook_is_listed_licensed_and_valid() -> None:
    import nbformat

    assert {p.name for p in OFFICIAL.glob("*.ipynb")} == set(EXPECTED)
    assert "LESSER GENERAL PUBLIC LICENSE" in (OFFICIAL / "LICENSE").read_text()
    for path in OFFICIAL.glob("*.ipynb"):   # stripping the outputs kept them notebooks
        notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
        if path.name in INVALID_UPSTREAM:
            assert not nbformat.validator.isvalid(notebook)
        else:
            nbformat.validate(notebook)


# Invalid in the repository itself (checked on the unstripped file): cell ids, which
# nbformat 4.5 introduced, in a notebook that says it is 4.4. Jupyter opens it all the same.
INVALID_UPSTREAM = {"Qwen3_(14B)-Reasoning-Conversational.ipynb"}


@pytest.mark.parametrize("name", ["follows_notebook_sft.py", "follows_notebook_grpo.py"])
def test_scripts_that_follow_the_notebooks_get_no_finding(name: str) -> None:
    assert problems(scan_script(str(SCRIPTS / name)).observations) == []


def test_a_script_that_follows_the_seed_gets_each_myth_at_its_line() -> None:
    path = SCRIPTS / "follows_seed_advice.py"
    lines = path.read_text().splitlines()
    found = {o.entry_id: lines[o.location.line - 1] for o in problems(scan_script(str(path)).observations)}
    assert set(found) == {"SCRIPT-IMPORT-ORDER", "SCRIPT-RAW-LORA-CONFIG", "SCRIPT-LR-TOO-HIGH",
                          "SCRIPT-MERGE-AND-UNLOAD", "SCRIPT-TRUST-REMOTE-CODE", "SCRIPT-MERGED-4BIT",
                          "SCRIPT-LORA-ALPHA-RATIO"}   # the seed's r=32, lora_alpha=16
    assert found["SCRIPT-IMPORT-ORDER"].startswith("from unsloth import")
    assert "LoraConfig(" in found["SCRIPT-RAW-LORA-CONFIG"]
    assert "1.8e-3" in found["SCRIPT-LR-TOO-HIGH"]
    assert "merge_and_unload" in found["SCRIPT-MERGE-AND-UNLOAD"]
    assert "trust_remote_code" in found["SCRIPT-TRUST-REMOTE-CODE"]
    assert "merged_4bit" in found["SCRIPT-MERGED-4BIT"]
