"""Settings of training scripts (doctor/probes/settings/) and install pins (doctor/probes/installs.py).

The extraction is a pure function over the syntax tree; the trl rules read trl's source, the
installed one and a small trl release written here, so they are shown to follow the source.
"""
from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

from doctor.probes import installs
from doctor.probes.script import read_source, scan_source, scan_script
from doctor.probes.script_settings import requirements_observations, script_settings
from doctor.probes.settings.extract import CONFIG, LOAD, PEFT, SAVE, TRAINER, UNKNOWN, settings_calls
from doctor.probes.settings.trl_api import installed_trl, read_trl
from tests.helpers.findings import problems
from tests.helpers.cli import ROOT


def _calls(code: str):
    return settings_calls(ast.parse(textwrap.dedent(code)))


def _ids(code: str, name: str = "train.py") -> list[str]:
    return [o.entry_id for o in scan_source(read_source(name, textwrap.dedent(code)))]


def _notebook(*cells: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "source": textwrap.dedent(c).strip("\n").splitlines(keepends=True)}
                                 for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


# --- extraction ----------------------------------------------------------------------------

def test_constants_bound_once_and_their_arithmetic_are_resolved() -> None:
    calls = _calls("""
        max_seq_length = 2048
        lora_rank = 32
        model, tok = FastLanguageModel.from_pretrained("m", max_seq_length=max_seq_length, load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(model, r=lora_rank, lora_alpha=lora_rank * 2,
                                                 target_modules=["q_proj", "up_proj"])
        args = SFTConfig(learning_rate=2e-4, fp16=not is_bfloat16_supported(), **{"bf16": True})
        trainer = SFTTrainer(model=model, args=args)
        model.save_pretrained_merged("out", tok, save_method="merged_16bit")
    """)
    assert [c.kind for c in calls] == [LOAD, PEFT, CONFIG, TRAINER, SAVE]
    load, peft, config, _, save = calls
    assert load.value("max_seq_length") == 2048 and load.value("load_in_4bit") is False
    assert peft.value("r") == 32 and peft.value("lora_alpha") == 64
    assert peft.value("target_modules") == ["q_proj", "up_proj"]
    assert config.value("learning_rate") == 2e-4 and config.value("bf16") is True
    assert config.value("fp16") is UNKNOWN          # a call's result: not fixed by the text
    assert save.value("save_method") == "merged_16bit"
    assert load.kwargs["max_seq_length"].node.lineno == 4   # the argument's own place


def test_names_bound_more_than_once_or_in_loops_are_unknown() -> None:
    calls = _calls("""
        lr = 2e-4
        lr = 1e-3
        for r in (8, 16):
            FastLanguageModel.get_peft_model(m, r=r, lora_alpha=alpha)
        SFTConfig(learning_rate=lr)
        def f(bf16):
            return SFTConfig(bf16=bf16)
    """)
    peft, config, inner = calls
    assert peft.value("r") is UNKNOWN and peft.value("lora_alpha") is UNKNOWN
    assert config.value("learning_rate") is UNKNOWN and inner.value("bf16") is UNKNOWN


def test_an_unresolved_double_star_leaves_every_keyword_open() -> None:
    (config,) = _calls("SFTConfig(learning_rate=2e-4, **extra)\n")
    assert config.open_ended and config.value("fp16", False) is UNKNOWN
    assert config.value("learning_rate") == 2e-4


def test_only_unsloth_loaders_and_trl_style_configs_count() -> None:
    calls = _calls("""
        AutoModelForCausalLM.from_pretrained("m")
        BitsAndBytesConfig(load_in_4bit=True)
        AutoConfig.from_pretrained("m")
        FastVisionModel.from_pretrained("m")
        GRPOConfig(learning_rate=5e-6)
    """)
    assert [(c.kind, c.short) for c in calls] == [(LOAD, "from_pretrained"), (CONFIG, "GRPOConfig")]


# --- trl's own source ----------------------------------------------------------------------

def test_the_installed_trl_is_read_without_importing_it() -> None:
    import subprocess
    import sys

    # in a fresh process: another test of this pytest run may have imported trl in this process
    probe = ("import sys; from doctor.probes.settings.trl_api import installed_trl; "
             "api = installed_trl(); api.signature('SFTConfig'); print(api is not None, 'trl' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.stdout.split() == ["True", "False"], done.stderr
    trl = installed_trl()
    assert trl is not None
    trainer, config = trl.signature("SFTTrainer"), trl.signature("SFTConfig")
    assert "processing_class" in trainer.params and "tokenizer" not in trainer.params
    assert {"max_length", "dataset_text_field", "packing", "learning_rate", "fp16"} <= config.params
    assert "max_seq_length" not in config.params
    assert trainer.where.startswith("trl/trainer/sft_trainer.py:")
    assert "ORPOTrainer" not in trl.exports and trl.moved_to("ORPOTrainer") == "trl.experimental.orpo"


def _fake_trl(site: Path, version: str, trainer_params: str) -> None:
    """A trl release of our own: one trainer and its config, in trl's lazy layout."""
    package = site / "trl"
    (package / "trainer").mkdir(parents=True)
    (site / f"trl-{version}.dist-info").mkdir()
    (package / "__init__.py").write_text('_import_structure = {"trainer": ["SFTConfig", "SFTTrainer"]}\n')
    (package / "trainer" / "__init__.py").write_text(
        '_import_structure = {"sft_config": ["SFTConfig"], "sft_trainer": ["SFTTrainer"]}\n')
    (package / "trainer" / "sft_config.py").write_text(
        "from dataclasses import dataclass\n@dataclass\nclass SFTConfig:\n    max_seq_length: int = 1024\n")
    (package / "trainer" / "sft_trainer.py").write_text(
        f"class SFTTrainer:\n    def __init__(self, {trainer_params}):\n        pass\n")


def test_the_rules_follow_the_trl_release_that_is_installed(tmp_path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _fake_trl(old, "0.9.6", "model, args=None, tokenizer=None, dataset_text_field=None")
    _fake_trl(new, "0.9.7", "model, args=None, processing_class=None")
    code = "from trl import SFTTrainer, SFTConfig\nSFTTrainer(model=m, tokenizer=t)\nSFTConfig(max_seq_length=512)\n"
    tree = ast.parse(code)

    def ids(site: Path) -> list[str]:
        return [o.entry_id for o in script_settings(read_source("t.py", code), tree, [str(site)])[0]]

    assert ids(old) == []
    assert ids(new) == ["SCRIPT-TRL-KWARG-REJECTED"]
    assert read_trl(str(new), "0.9.7").signature("SFTConfig").params == frozenset({"max_seq_length"})


def test_unsloth_scripts_may_use_the_names_unsloth_accepts() -> None:
    seed_style = """
        from unsloth import FastLanguageModel
        from trl import SFTTrainer, SFTConfig
        trainer = SFTTrainer(model=model, tokenizer=tokenizer, train_dataset=dataset,
                             dataset_text_field="text", max_seq_length=1024, packing=True)
    """
    with_args = textwrap.dedent(seed_style).replace("packing=True)", "packing=True, args=SFTConfig())")
    found = scan_source(read_source("t.py", with_args))
    assert sorted(o.values["keyword"] for o in found) == ["dataset_text_field", "max_seq_length", "packing"]
    assert {o.entry_id for o in found} == {"SCRIPT-TRL-KWARG-MOVED"}
    # tokenizer= is accepted either way; the config fields only move when args= is passed
    # (unsloth/trainer.py:1732): without it Unsloth's trainer raises TypeError as trl's does
    without_args = scan_source(read_source("t.py", textwrap.dedent(seed_style)))
    assert {o.entry_id for o in without_args} == {"SCRIPT-TRL-KWARG-REJECTED"} and len(without_args) == 3
    plain = with_args.replace("from unsloth import FastLanguageModel\n", "")
    assert {o.entry_id for o in scan_source(read_source("t.py", plain))} == {"SCRIPT-TRL-KWARG-REJECTED"}


def test_a_notebook_that_installs_another_trl_is_not_judged_by_this_one() -> None:
    cells = ("!pip install --no-deps trl==0.22.2", "from trl import ORPOConfig, ORPOTrainer\nORPOTrainer(model=m, tokenizer=t)")
    assert _ids(_notebook(*cells), "t.ipynb") == []
    assert _ids(_notebook("!pip install trl", cells[1]), "t.ipynb") == ["SCRIPT-TRL-IMPORT-MOVED"] * 2


# --- the settings rules --------------------------------------------------------------------

@pytest.mark.parametrize("code, expected", [
    ("from trl import SFTConfig\nSFTConfig(fp16=True, bf16=True)\n", ["SCRIPT-FP16-AND-BF16"]),
    ("import torch\nfrom unsloth import FastModel\nfrom trl import SFTConfig\n"
     "m, t = FastModel.from_pretrained('x', dtype=torch.bfloat16)\nSFTConfig(fp16=True)\n", ["SCRIPT-FP16-ON-BF16-MODEL"]),
    ("from unsloth import FastLanguageModel\nFastLanguageModel.from_pretrained('x', load_in_8bit=True)\n",
     ["SCRIPT-LOAD-PRECISION-CONFLICT"]),
    ("from unsloth import FastModel\nFastModel.from_pretrained('x', full_finetuning=True, load_in_8bit=True)\n",
     ["SCRIPT-FULL-FT-QUANTIZED"]),
    ("from trl import SFTConfig\nSFTConfig(learning_rate=1e-3)\n", ["SCRIPT-LR-TOO-HIGH"]),
    ("from trl import SFTConfig\nSFTConfig(learning_rate=0.02, optim='muon')\n", []),
    ("from trl import SFTTrainer, SFTConfig\nSFTTrainer(model=m, args=SFTConfig(learning_rate=1e-2), optimizers=(o, s))\n", []),
    ("from trl import DPOConfig\nDPOConfig(learning_rate=5e-4)\n", ["SCRIPT-LR-TOO-HIGH-FOR-REGIME"]),
    ("from peft import LoraConfig\nLoraConfig(r=32, lora_alpha=16, target_modules=['q_proj', 'v_proj'])\n",
     ["SCRIPT-LORA-ALPHA-RATIO", "SCRIPT-LORA-NO-MLP"]),
    ("from trl import GRPOConfig\nGRPOConfig(max_prompt_length=256)\n", ["SCRIPT-TRL-KWARG-REJECTED"]),
])
def test_each_rule_on_the_line_that_sets_it(code: str, expected: list[str]) -> None:
    assert sorted(_ids(code)) == expected


def test_a_finding_points_at_the_keyword_in_a_notebook_cell() -> None:
    nb = _notebook("from trl import SFTConfig", "x = 1\nargs = SFTConfig(\n    fp16 = True,\n    bf16 = True,\n)")
    (obs,) = scan_source(read_source("t.ipynb", nb))
    assert obs.entry_id == "SCRIPT-FP16-AND-BF16"
    assert (obs.location.cell, obs.location.cell_line) == (2, 3)
    raw_line = nb.split("\n")[obs.location.line - 1] if "\n" in nb else nb
    assert "fp16 = True" in raw_line[obs.location.column - 1:]


def test_settings_under_if_false_are_not_judged() -> None:
    assert _ids("from trl import SFTConfig\nif False:\n    SFTConfig(fp16=True, bf16=True)\n") == []


def test_the_environment_rules_read_the_scripts_facts(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text("from unsloth import FastLanguageModel\nfrom trl import SFTConfig\n"
                      "m, t = FastLanguageModel.from_pretrained('x', max_seq_length=4096)\n"
                      "SFTConfig(fp16=True, dataset_text_field='text')\n")
    facts = dict(scan_script(str(script)).facts)
    assert facts["script.fp16_auto_dtype_at"] == "line 4"
    assert facts["script.max_seq_length"] == 4096 and facts["script.dataset_text_field"] == "text"


# --- install pins --------------------------------------------------------------------------

def test_pip_lines_are_read_like_a_shell_reads_them() -> None:
    command = '!pip install --no-deps -q unsloth_zoo {xformers} "trl==0.15.2" -i https://x peft \\\n    transformers==4.56.2 && pip install ./local'
    pins = installs.install_pins(command)
    assert [(p.key, p.specifier) for p in pins] == [("unsloth_zoo", ""), ("trl", "==0.15.2"), ("peft", ""),
                                                   ("transformers", "==4.56.2")]
    assert command[pins[1].column:].startswith("trl==0.15.2")
    assert command[pins[3].column:].startswith("transformers==4.56.2")
    assert installs.install_pins("%pip install -U 'uv'") and installs.install_pins("!uv pip install trl==1.0")
    assert installs.install_pins("!git clone x && cd x") == []


def test_pins_are_judged_against_the_installed_unsloths_metadata(tmp_path) -> None:
    site = tmp_path / "site"
    (site / "unsloth").mkdir(parents=True)
    (site / "unsloth-2030.1.1.dist-info").mkdir()
    (site / "unsloth-2030.1.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: unsloth\nVersion: 2030.1.1\nRequires-Dist: trl<2,>=1.2\n"
        "Requires-Dist: transformers!=5.3.0,>=5.1\nRequires-Dist: trl==0.1; extra == \"old\"\n\nbody\n")
    text = "unsloth\ntrl>=1.0,<1.2  # too old\ntrl>=1.1\ntransformers==5.3.0\ntransformers==5.4\n"
    found = requirements_observations("requirements.txt", text, [str(site)])
    assert [(o.location.line, o.values["requirement"]) for o in found] == [(2, "trl>=1.0,<1.2"), (4, "transformers==5.3.0")]
    assert found[0].values["declared_at"] == "unsloth-2030.1.1.dist-info/METADATA:4"
    assert requirements_observations("r.txt", "unsloth==2020.1\ntrl==0.1\n", [str(site)]) == []


def test_a_requirements_file_is_a_target(tmp_path) -> None:
    req = tmp_path / "requirements-train.txt"
    req.write_text("unsloth\ntrl==0.15.2\n")
    result = scan_script(str(req))
    assert [(o.entry_id, o.location.line, o.location.column) for o in problems(result.observations)] == \
        [("SCRIPT-PIN-OUTSIDE-RANGE", 2, 1)]


def test_a_pin_in_a_continuation_line_is_placed_on_that_line() -> None:
    nb = _notebook("%%capture\n!pip install unsloth \\\n    transformers==4.53.0")
    (obs,) = scan_source(read_source("t.ipynb", nb))
    assert (obs.location.cell, obs.location.cell_line) == (1, 3)


# --- with the model folder and the dataset scanned together ---------------------------------

def _project(tmp_path: Path, field: str, build_it: bool = False) -> tuple[Path, Path, Path]:
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n')
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama", "max_position_embeddings": 2048}')
    build = 'ds = ds.map(lambda e: {"%s": e["instruction"] + e["output"]})\n' % field if build_it else ""
    script = tmp_path / "train.py"
    script.write_text("from unsloth import FastLanguageModel\nfrom trl import SFTTrainer, SFTConfig\n"
                      "model, tokenizer = FastLanguageModel.from_pretrained('model', max_seq_length=8192)\n" + build +
                      f"SFTTrainer(model=model, train_dataset=ds, args=SFTConfig(dataset_text_field={field!r}))\n")
    return script, data, model


def test_dataset_text_field_and_max_seq_length_against_the_targets_scanned_with_them(tmp_path) -> None:
    from doctor import api
    script, data, model = _project(tmp_path, "text")
    report = api.scan(scripts=[str(script)], data=[str(data)], models=[str(model)], env=False)
    found = {f.id: f for f in report.findings if f.id.startswith("SCRIPT-")}
    assert set(found) == {"SCRIPT-TEXT-FIELD-NOT-A-COLUMN", "SCRIPT-SEQ-LEN-ABOVE-MODEL"}
    assert found["SCRIPT-TEXT-FIELD-NOT-A-COLUMN"].location.line == 4
    assert found["SCRIPT-SEQ-LEN-ABOVE-MODEL"].location.line == 3   # the max_seq_length the script passes
    alone = api.scan(scripts=[str(script)], env=False)
    assert not [f for f in alone.findings if f.id in found]


def test_a_column_the_script_builds_is_not_reported(tmp_path) -> None:
    from doctor import api
    script, data, _ = _project(tmp_path, "text", build_it=True)
    report = api.scan(scripts=[str(script)], data=[str(data)], env=False)
    assert "SCRIPT-TEXT-FIELD-NOT-A-COLUMN" not in {f.id for f in report.findings}
    script2, data2, _ = _project(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path, "instruction")
    assert "SCRIPT-TEXT-FIELD-NOT-A-COLUMN" not in {f.id for f in api.scan(scripts=[str(script2)], data=[str(data2)], env=False).findings}


# --- scripts of our own: following the official notebooks, and following the seed's advice --

SCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "scripts"


@pytest.mark.parametrize("name", ["notebook_sft.py", "notebook_grpo.py"])
def test_scripts_that_follow_the_official_notebooks_get_no_finding(name: str) -> None:
    assert problems(scan_script(str(SCRIPTS / name)).observations) == []


def test_a_script_that_follows_the_seeds_advice_gets_its_findings() -> None:
    found = sorted((o.entry_id, o.location.line, o.values.get("keyword", "")) for o in
                   problems(scan_script(str(SCRIPTS / "seed_sft.py")).observations))
    # the seed passes config fields to the trainer without args=: Unsloth moves them into args only
    # when args= is given (unsloth/trainer.py:1732), so each raises TypeError (checked on a GPU)
    assert found == [
        ("SCRIPT-LORA-ALPHA-RATIO", 12, ""),
        ("SCRIPT-LORA-NO-MLP", 13, ""),
        ("SCRIPT-LR-TOO-HIGH", 32, ""),
        ("SCRIPT-RAW-LORA-CONFIG", 10, ""),
        ("SCRIPT-TRL-KWARG-REJECTED", 27, "dataset_text_field"),
        ("SCRIPT-TRL-KWARG-REJECTED", 28, "max_seq_length"),
        ("SCRIPT-TRL-KWARG-REJECTED", 29, "packing"),
        ("SCRIPT-TRL-KWARG-REJECTED", 30, "fp16"),
        ("SCRIPT-TRL-KWARG-REJECTED", 31, "gradient_checkpointing"),
        ("SCRIPT-TRL-KWARG-REJECTED", 32, "learning_rate"),
    ]


def test_scan_python_judges_by_that_interpreters_packages(tmp_path) -> None:
    """`scan --python X`: the ranges and trl signatures are X's, not the doctor's own."""
    from doctor.probes.base import ProbeContext, ProbeOptions, Target
    from doctor.probes.script import PROBE
    req = tmp_path / "requirements.txt"
    req.write_text("unsloth\ntrl==0.15.2\n")
    ours = PROBE.run(Target("script", str(req)), ProbeContext(None, ProbeOptions()))
    import sys
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S -c \"$2\"\n")   # no site-packages at all
    python.chmod(0o755)
    theirs = PROBE.run(Target("script", str(req)), ProbeContext(None, ProbeOptions(python=str(python))))
    assert [o.entry_id for o in problems(ours.observations)] == ["SCRIPT-PIN-OUTSIDE-RANGE"]
    assert problems(theirs.observations) == []


def test_an_install_line_that_never_runs_is_not_judged() -> None:
    assert _ids(_notebook("if False:\n    !pip install trl==0.15.2"), "t.ipynb") == []
    assert _ids(_notebook("if True:\n    !pip install trl==0.15.2"), "t.ipynb") == ["SCRIPT-PIN-OUTSIDE-RANGE"]


def test_requirement_lines_keep_only_the_requirement() -> None:
    text = "# pins\n-r base.txt\ntrl==0.15.2 --hash=sha256:abc  # old\n\ntransformers>=4.52.4 ; python_version >= '3.9'\n"
    assert [(line, p.text) for line, p in installs.requirement_file_pins(text)] == \
        [(3, "trl==0.15.2"), (5, "transformers>=4.52.4 ; python_version >= '3.9'")]


def test_transformers_own_classes_are_judged_by_the_installed_transformers() -> None:
    code = ("from unsloth import FastLanguageModel\nfrom transformers import Trainer, TrainingArguments\n"
            "Trainer(model=m, tokenizer=t, args=TrainingArguments(output_dir='o', warmup_ratio=0.1))\n")
    found = {o.values["keyword"]: o.values["hint"] for o in scan_source(read_source("t.py", code))}
    assert found == {"tokenizer": "its name is now `processing_class`", "warmup_ratio": "its name is now `warmup_steps`"}
    pinned = _notebook("!pip install transformers==4.56.2", code)
    assert _ids(pinned, "t.ipynb") == []


def test_imports_of_names_trl_moved_or_removed() -> None:
    found = [(o.entry_id, o.values["name"]) for o in scan_source(read_source(
        "t.py", "from trl import SFTTrainer, DataCollatorForCompletionOnlyLM, round_lora_rank\n"))]
    assert found == [("SCRIPT-TRL-IMPORT-MISSING", "DataCollatorForCompletionOnlyLM"),
                     ("SCRIPT-TRL-IMPORT-MOVED", "round_lora_rank")]


def test_a_script_exported_from_a_notebook_is_judged_by_the_versions_it_installs() -> None:
    code = ("# get_ipython().system('uv pip install --system -qqq --no-deps peft \"trl==0.22.2\"')\n"
            "# !pip install transformers==4.56.2\n"
            "from unsloth import FastModel\nfrom trl import ORPOTrainer\nfrom transformers import Trainer\n"
            "Trainer(model=m, tokenizer=t)\n")
    assert _ids(code) == []
    assert sorted(_ids(code.replace("==0.22.2", "").replace("==4.56.2", ""))) == \
        ["SCRIPT-TRANSFORMERS-KWARG-REJECTED", "SCRIPT-TRL-IMPORT-MOVED"]
    assert installs.exported_installs("# get_ipython().run_line_magic('pip', 'install trl==0.9')\n# pip is nice\n") == \
        ["%pip install trl==0.9"]
    cell = "get_ipython().run_cell_magic('capture', '', 'import os\\nif x:\\n    !pip install trl==0.9 \\\\\\n  peft\\n')\n"
    assert installs.exported_installs(cell) == ["!pip install trl==0.9 \\\n  peft"]


def test_a_requirements_file_beside_the_script_says_which_trl_it_runs_with(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text("from trl import SFTTrainer\nSFTTrainer(model=m, tokenizer=t)\n")
    assert [o.entry_id for o in problems(scan_script(str(script)).observations)] == ["SCRIPT-TRL-KWARG-REJECTED"]
    (tmp_path / "requirements.txt").write_text("trl==0.11.4\n")
    assert problems(scan_script(str(script)).observations) == []


def test_a_notebooks_text_field_finding_names_its_cell_and_the_files_line(tmp_path) -> None:
    from doctor import api
    _, data, _ = _project(tmp_path, "text")
    nb = tmp_path / "train.ipynb"
    text = _notebook("from unsloth import FastLanguageModel", "from trl import SFTConfig\nargs = SFTConfig(\n    dataset_text_field = 'body',\n)")
    nb.write_text(text.replace('"cells": [', '"cells": [\n').replace('"source": [', '"source": [\n'))
    (finding,) = [f for f in api.scan(scripts=[str(nb)], data=[str(data)], env=False).findings
                  if f.id == "SCRIPT-TEXT-FIELD-NOT-A-COLUMN"]
    loc = finding.location
    assert (loc.cell, loc.cell_line) == (2, 3)
    raw_line = nb.read_text().split("\n")[loc.line - 1]
    assert raw_line[loc.column - 1:].startswith("dataset_text_field = 'body'")


def test_the_example_stack_is_what_the_installed_packages_say() -> None:
    """fixtures/stack/site (kb test's trl, transformers and unsloth) against the installed ones,
    when they are the versions it was built from: rebuild it with its build.py when not."""
    from doctor.probes.script_settings import example_stack
    from doctor.probes.settings.trl_api import installed_transformers
    from doctor.probes.settings.unsloth_api import installed_unsloth
    stack = example_stack()
    ours, real = installed_trl(stack), installed_trl()
    assert ours is not None and ours.version == "1.15.0"
    if real is None or real.version != ours.version:
        pytest.skip(f"trl {real and real.version} installed; the stack is {ours.version}")
    assert ours.exports == real.exports
    for name in sorted(real.exports):
        theirs = real.signature(name)
        mine = ours.signature(name)
        assert (mine.params if mine else None) == (theirs.params if theirs else None), name
    assert ours.moved_to("ORPOTrainer") == real.moved_to("ORPOTrainer")
    assert installed_transformers(stack).signature("Trainer").params == installed_transformers().signature("Trainer").params
    assert installed_unsloth(stack).renames == installed_unsloth().renames
    assert installs.declared_ranges(stack) == installs.declared_ranges()


def test_trl_configs_are_not_judged_for_a_script_on_another_major_transformers() -> None:
    """SFTConfig inherits TrainingArguments: with transformers 4 pinned, warmup_ratio is a field."""
    code = "!pip install transformers==4.56.2\nfrom trl import SFTConfig\nSFTConfig(warmup_ratio=0.1, max_seq_length=1)\n"
    assert _ids(_notebook(*code.split("\n", 1)), "t.ipynb") == []
    same_major = _notebook("!pip install transformers==5.5.0", "from trl import SFTConfig\nSFTConfig(max_seq_length=1)")
    assert _ids(same_major, "t.ipynb") == ["SCRIPT-TRL-KWARG-REJECTED"]
