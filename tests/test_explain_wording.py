"""Leads by wording: the runtime entries whose own text is closest to a report nothing else explains."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.explainer import wording
from doctor.explainer.diagnosis import WEAK, diagnose, report_reason, reports_a_problem
from doctor.explainer.parse import parse_text
from doctor.kb import KnowledgeBase, load_knowledge
from doctor.kb.model import entry_from_dict
from doctor.report.explain import render_markdown, render_text

ROOT = Path(__file__).resolve().parent.parent


def entry(id: str, title: str, explain: str, pattern: str, **more) -> dict:
    return {"id": id, "title": title, "severity": "error", "category": "other", "area": "runtime",
            "symptoms": [{"pattern": pattern, "weight": 0.9}], "explain": explain,
            "refs": ["https://example.invalid/ref"], "examples": {"match": ["x"]}, **more}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase(entry_from_dict(d) for d in [
        entry("T-BF16", "bf16 requested on a GPU without bfloat16",
              "bfloat16 needs compute capability 8.0; a V100 or T4 has no bf16 support.",
              "Bfloat16 is only supported"),
        entry("T-MERGE", "Merged model saved without its LoRA weights",
              "save_pretrained_merged wrote the base weights: the adapter was not merged.",
              "merged_16bit produced nothing"),
        entry("T-DATA", "Dataset has no text column",
              "SFTTrainer looks for dataset_text_field; map the rows into a text column.",
              "KeyError: 'text'"),
        entry("T-SCAN", "A scan-time check about bf16 on V100", "Not a runtime entry: bf16 V100.",
              "never", area="config"),
    ])


def test_words_split_names_and_chinese_and_drop_common_words():
    assert wording.words("The dataset_text_field is missing") == [
        "dataset_text_field", "dataset", "text", "field", "missing"]
    assert wording.words("合并模型") == ["合并", "并模", "模型"]
    assert wording.words("error: it fails to work") == []


def test_rank_puts_the_entry_sharing_the_rarest_words_first(kb):
    index = wording.index_for(kb)
    ranked = index.rank("full finetune on a V100 with bf16 crashes")
    assert ranked[0][1] == "T-BF16" and {"v100", "bf16"} <= set(ranked[0][2])
    assert "T-SCAN" not in [eid for _, eid, _ in ranked]   # only runtime entries are explain's answers
    assert index.rank("a sentence about cats and dogs") == []


def test_a_title_nothing_matches_gets_leads_by_wording_under_weak(kb):
    result = diagnose("[Bug] merged model from save_pretrained_merged has no LoRA weights\n", kb)
    assert result.unmatched is not None   # a lead, not a diagnosis
    top = result.diagnoses[0]
    assert top.id == "T-MERGE" and top.confidence == wording.LEAD_CONFIDENCE < WEAK
    assert [ev.kind for ev in top.finding.evidence] == ["words"] and top.by_wording
    assert "merged" in top.finding.evidence[0].value
    text = render_text(result, width=None)
    assert "Weak leads" in text and "closest by wording: no symptom of this entry matched" in text
    assert "closest by wording" in render_markdown(result)


def test_a_traceback_nothing_matches_gets_leads_from_its_error_line(kb):
    log = ('Traceback (most recent call last):\n  File "/x/train.py", line 3, in <module>\n'
           "    trainer.train()\nValueError: the dataset has no column named text for SFTTrainer\n")
    assert diagnose(log, kb).diagnoses[0].id == "T-DATA"


def test_no_leads_beside_an_answer_or_on_a_healthy_run(kb):
    matched = diagnose("RuntimeError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0\n", kb)
    assert [d.id for d in matched.diagnoses] == ["T-BF16"]   # a claim: the free places stay free
    generation = "You are given a problem about a V100 and bf16.\nThink about the problem.\n"
    assert not reports_a_problem(parse_text(generation)) and diagnose(generation, kb).diagnoses == []
    banner = "==((====))==  Unsloth 2026.10.9: Fast Llama patching. bf16 = FALSE. V100\n"
    assert diagnose(banner, kb).diagnoses == []


@pytest.mark.parametrize("first,reason", [
    ("[Bug] merging fails", "an issue title"),
    ("save_pretrained_merged does not save the LoRA weights", "a first line saying something failed"),
    ("Training crashes on V100 with bf16", "a first line saying something failed"),
    ("KeyError: 'text'", "a typed error line"),
    ("I have an issue with my dataset", None),            # too common in prose to tell
    ("INFO 05-26 00:49:05 cannot use FlashAttention-2 backend", None),   # printed by a run
    ("Steps = 1 State = failed", None),
    ("Moves: 1, State: failed", None),                    # fields a run prints
    ("problem: training fails on a T4", "a first line saying something failed"),   # any failure word
    ("[transformers] warmup_ratio is deprecated and will be removed in v5.2.", None),   # a logger's record
    ("[bitsandbytes.cextension|ERROR]bitsandbytes library load error: no CUDA binary",
     "a first line saying something failed"),             # a logger's record that says it failed
    ("I'm sorry, but I cannot transcribe the audio as there is no audio provided.", None),   # a generation
    ("The image cannot be described without more context.<end_of_turn>", None),
    ("Okay, let's break down why the sky is blue!", None),
    ("env: UNSLOTH_RETURN_LOGITS=1 # Run this to disable CCE since it is not supported for CPT", None),
])
def test_what_counts_as_a_report(first, reason):
    log = parse_text(first + "\n")
    assert report_reason(log) == reason and reports_a_problem(log) is (reason is not None)


def test_the_real_knowledge_base_answers_a_prose_title():
    """The shipped knowledge, as a whole process: a title in a person's words."""
    out = subprocess.run([sys.executable, "-m", "doctor", "explain", "-", "--no-env", "--format", "json"],
                         cwd=ROOT, input=b"V100 full finetune with a bf16 model crashes\n",
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr   # weak leads only: nothing claimed
    diagnoses = json.loads(out.stdout)["explain"]["diagnoses"]
    assert diagnoses and all(d["confidence"] <= wording.LEAD_CONFIDENCE for d in diagnoses)
    assert any(d["id"] == "RT-BF16-UNSUPPORTED" for d in diagnoses)
    assert all(d["evidence"][0]["kind"] == "words" for d in diagnoses)


def test_the_index_is_built_once_per_knowledge_base():
    kb = load_knowledge([ROOT / "knowledge" / "runtime"])
    assert wording.index_for(kb) is wording.index_for(kb)


def test_a_failing_smoke_stage_names_no_lead_by_wording_as_its_diagnosis(kb):
    from doctor.results.smoke import SmokeReport
    from doctor.smoketest.runner import diagnose_failure

    report = SmokeReport()
    text = "ValueError: the merged model from save_pretrained_merged has no LoRA weights\n"
    assert diagnose(text, kb).diagnoses[0].by_wording   # explain has a lead for it
    diagnose_failure(report, text, kb)
    assert report.diagnoses == []
    diagnose_failure(report, "RuntimeError: Bfloat16 is only supported on GPUs with compute capability 8.0\n", kb)
    assert [f.id for f in report.diagnoses] == ["T-BF16"]
