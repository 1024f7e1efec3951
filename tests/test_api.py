"""The public Python API: the same core the CLI calls, typed results, clear argument errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import doctor
from tests.helpers.cli import run_cli

TSV = "instruction\toutput\nSay hi\tHi!\nCount to two\t1, 2\n"
JSON_ROWS = '[{"instruction": "Say hi", "output": "Hi!"}, {"instruction": "Add", "output": "2"},]\n'


def test_scan_finds_tsv_and_json_datasets_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data.tsv").write_text(TSV)
    (tmp_path / "data.json").write_text(JSON_ROWS)
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')   # not a dataset
    report = doctor.scan([tmp_path], env=False)
    assert isinstance(report, doctor.Report)
    scanned = {Path(t).name for t in report.targets}
    assert {"data.tsv", "data.json"} <= scanned and "config.json" not in scanned
    labels = [a.label for a in report.areas]
    assert any("data.tsv" in label for label in labels) and any("data.json" in label for label in labels)


def test_a_tsv_file_is_routed_like_data(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text(TSV)
    report = doctor.scan([tmp_path / "x.tsv"], env=False)
    assert report.facts.get("dataset.format") == "tsv" or any("x.tsv" in a.label for a in report.areas)
    assert run_cli("scan", str(tmp_path / "x.tsv"), "--no-env").returncode in (0, 1)


def test_an_unknown_file_kind_is_a_usage_error_naming_what_is_read(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(doctor.UsageError, match=r"\.jsonl.*\.tsv"):
        doctor.scan([tmp_path / "notes.txt"], env=False)
    r = run_cli("scan", str(tmp_path / "notes.txt"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.parametrize("kwargs,message", [
    ({"jobs": 0}, "--jobs must be a whole number of at least 1"),
    ({"jobs": -3}, "--jobs must be a whole number of at least 1"),
    ({"jobs": 1000}, "give at most 256"),
    ({"timeout": 0}, "--timeout must be a positive number"),
    ({"max_seq_length": 512}, "give --tokenizer DIR too"),
    ({"fix": False, "unsafe_fixes": True}, "--unsafe-fixes goes with --fix"),
])
def test_bad_arguments_raise_usage_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(doctor.UsageError, match=message):
        doctor.scan([tmp_path], **kwargs)


def test_bad_cli_values_are_one_line_usage_errors(tmp_path: Path) -> None:
    for args in (["scan", str(tmp_path), "--jobs", "0"], ["scan", str(tmp_path), "--max-seq-length", "-5"],
                 ["explain", "--top", "0", "-"], ["kb", "list", "--area", "nosuch"]):
        r = run_cli(*args, stdin="")
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)


def test_explain_returns_typed_diagnoses(knowledge_base) -> None:
    log = ("Traceback (most recent call last):\n  File \"train.py\", line 3, in <module>\n"
           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
           "capacity of 14.74 GiB of which 1.00 GiB is free.\n")
    result = doctor.explain(log, env=False, kb=knowledge_base)
    assert isinstance(result, doctor.ExplainResult) and result.matched
    top = result.diagnoses[0]
    assert isinstance(top, doctor.Diagnosis) and top.finding.category == "cuda-oom" and top.on_final_error
    assert doctor.explain(log.encode(), env=False, kb=knowledge_base).diagnoses[0].id == top.id


def test_load_knowledge_takes_extra_folders_validated_by_the_same_schema(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "- id: MY-CUSTOM-RULE\n  title: Our cluster's scratch disk is full\n  severity: warning\n"
        "  category: other\n  area: runtime\n  explain: The scratch disk of our cluster filled up.\n"
        "  symptoms: [{pattern: 'scratch quota exceeded'}]\n  refs: [https://example.org/runbook]\n"
        "  examples: {match: ['OSError: scratch quota exceeded']}\n")
    kb = doctor.load_knowledge(extra_dirs=[tmp_path])
    assert "MY-CUSTOM-RULE" in kb and len(kb) > 1
    (tmp_path / "mine.yaml").write_text((tmp_path / "mine.yaml").read_text().replace("area: runtime", "area: nosuch"))
    with pytest.raises(doctor.KnowledgeBroken, match="area 'nosuch'"):
        doctor.load_knowledge(extra_dirs=[tmp_path])


def test_importing_the_api_stays_light() -> None:
    code = ("import sys, doctor; doctor.scan; doctor.explain; "
            "heavy = {'torch', 'transformers', 'unsloth', 'rich', 'pyarrow'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_json_configs_in_a_folder_are_not_taken_for_datasets(tmp_path: Path) -> None:
    """DeepSpeed configs and LLaMA-Factory's dataset_info.json are objects of settings."""
    (tmp_path / "ds_z3_config.json").write_text('{"zero_optimization": {"stage": 3}, "bf16": {"enabled": "auto"}}')
    (tmp_path / "dataset_info.json").write_text('{"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}')
    (tmp_path / "records.json").write_text('{"data": [{"instruction": "a", "output": "b"}]}')
    report = doctor.scan([tmp_path], env=False)
    scanned = {Path(t).name for t in report.targets}
    assert "records.json" in scanned and not {"ds_z3_config.json", "dataset_info.json"} & scanned
    assert report.skipped == {"a JSON file without records (a config, not a dataset)": 1,
                              "DeepSpeed config: not a training config": 1}


def test_ranking_rows_keep_their_answers_in_chosen_and_rejected(tmp_path: Path) -> None:
    """LLaMA-Factory's DPO demo rows: the prompt in `conversations`, the answers apart."""
    row = {"conversations": [{"from": "human", "value": "Which is better?"}],
           "chosen": {"from": "gpt", "value": "This one."}, "rejected": {"from": "gpt", "value": "That one."}}
    path = tmp_path / "dpo.json"
    path.write_text(json.dumps([row, dict(row, conversations=[{"from": "human", "value": "And now?"}])]))
    report = doctor.scan([path], env=False)
    assert "DATA-CHAT-NO-ASSISTANT" not in [f.id for f in report.findings]
