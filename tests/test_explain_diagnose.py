"""diagnose(): ranking by where a symptom appears, live-fact correlation, honest no-match,
and the renderings. A small knowledge base written here pins the ranking rules; the real
one (knowledge/runtime) is used for the fixture logs and the real-issue corpus."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from doctor.engine import match_text
from doctor.explainer.diagnosis import diagnose, matchable_lines
from doctor.explainer.parse import parse_text
from doctor.report.explain import render_markdown, render_text
from doctor.report.jsonout import explain_to_dict
from doctor.report.jsonout import render_explain_json as render_json
from doctor.facts import Facts
from doctor.kb import KnowledgeBase, load_knowledge
from doctor.kb.model import entry_from_dict

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "fixtures" / "logs"
CORPUS = ROOT / "fixtures" / "tracebacks"


def entry(id: str, category: str, symptoms: list, **more) -> dict:
    return {"id": id, "title": f"{id} title here", "severity": "error", "category": category,
            "area": "runtime", "symptoms": symptoms, "explain": f"Explanation of {id}. Second sentence.",
            "refs": ["https://example.invalid/ref"], "examples": {"match": ["x"]}, **more}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase(entry_from_dict(d) for d in [
        entry("T-OOM", "cuda-oom", [{"pattern": "CUDA out of memory", "weight": 0.85}],
              fixes=[{"text": "Lower the batch size (per_device_train_batch_size)."},
                     {"text": "Set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.",
                      "command": "export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"}]),
        entry("T-OOM-GEN", "cuda-oom", [{"pattern": "CUDA out of memory", "weight": 0.85},
                                        {"pattern": r"\bin (generate|_sample)$", "weight": 0.3}]),
        entry("T-BF16", "bf16-dtype", [{"pattern": "Bfloat16 is only supported", "weight": 0.9}],
              when={"fact": "gpu.max_capability", "lt": 8.0}),
        entry("T-WARN", "other", [{"pattern": r"UserWarning: .*deprecated", "weight": 0.8}]),
        entry("T-KEY", "dataset-format", [{"pattern": r"KeyError: .text.", "weight": 0.8}],
              myth="Alpaca JSONL is the only format Unsloth accepts"),
    ])


def tb(final: str, *, file: str = "/home/alice/train.py") -> str:
    return ("Traceback (most recent call last):\n"
            f'  File "{file}", line 3, in <module>\n'
            "    trainer.train()\n"
            '  File "/venv/lib/python3.11/site-packages/datasets/arrow_dataset.py", line 9, in __getitem__\n'
            "    return self._getitem(key)\n"
            f"{final}\n")


def test_match_on_the_final_error_beats_an_equal_match_elsewhere(kb):
    text = "UserWarning: `foo` is deprecated\n" + tb("KeyError: 'text'")
    result = diagnose(text, kb)
    entries = [f for f in result.findings if not f.id.startswith("ST-")]   # not the structural reading
    assert [f.id for f in entries] == ["T-KEY", "T-WARN"]
    key, warn = entries
    assert key.confidence > 0.8 > warn.confidence      # pulled up / pushed down from 0.8
    assert result.diagnoses[0].on_final_error and not result.diagnoses[-1].on_final_error
    assert [(e.line, e.value) for e in key.evidence] == [(7, "KeyError: 'text'")]


def test_live_facts_confirm_rule_out_or_leave_unchanged(kb):
    text = tb("ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0")
    plain = diagnose(text, kb).diagnoses[0]
    confirmed = diagnose(text, kb, Facts({"gpu.max_capability": 7.5})).diagnoses[0]
    ruled_out = diagnose(text, kb, Facts({"gpu.max_capability": 9.0})).diagnoses[0]
    unknown = diagnose(text, kb, Facts({"torch.version": "2.6.0"})).diagnoses[0]
    assert confirmed.confidence > plain.confidence > ruled_out.confidence
    assert unknown.confidence == plain.confidence and unknown.env == "unknown"
    assert confirmed.env_note == "confirmed on this machine: gpu.max_capability = 7.5"
    assert ruled_out.env_note == "ruled out on this machine: gpu.max_capability = 9.0"
    assert ("gpu.max_capability", 7.5) in [(e.name, e.value) for e in confirmed.finding.evidence if e.kind == "fact"]
    assert plain.env is None


def test_notebook_frames_reach_frame_patterns(kb):
    result = diagnose((LOGS / "jupyter_generate_oom.log").read_text(), kb)
    assert [f.id for f in result.findings][:2] == ["T-OOM-GEN", "T-OOM"]
    # the evidence shows the pasted IPython line, not the rewritten CPython-style frame
    frame_lines = [e.value for e in result.findings[0].evidence if "generate" in str(e.value)]
    assert frame_lines and all(v.startswith("File /usr/local/lib/") for v in frame_lines)
    rewritten = dict(matchable_lines(parse_text((LOGS / "jupyter_generate_oom.log").read_text())))
    assert any(t.endswith(", in generate") for t in rewritten.values())


def test_entries_nothing_tells_apart_are_folded(kb):
    result = diagnose((LOGS / "plain_oom.log").read_text(), kb)
    assert [f.id for f in result.findings] == ["T-OOM"]
    assert result.diagnoses[0].alternatives == ("T-OOM-GEN",)


def test_oom_fixes_carry_the_numbers_and_replace_the_generic_one(kb):
    diagnosis = diagnose((LOGS / "plain_oom.log").read_text(), kb).diagnoses[0]
    finding = diagnosis.finding
    texts = [f.text for f in finding.fixes]
    assert texts[0].startswith("2.90 GiB is reserved by PyTorch but unallocated")
    assert not any(f.command and "expandable" in f.command for f in finding.fixes)
    assert any("per_device_train_batch_size" in t for t in texts)
    assert sum("per_device_train_batch_size" in t for t in texts) == 1   # not said twice
    assert "2.00 GiB" in (diagnosis.oom_summary or "")


@pytest.mark.parametrize("text,category,phrase", [
    (tb("ValueError: the column 'messages' is missing"), "dataset-format", "wording"),
    (tb("ModuleNotFoundError: No module named 'unsloth_zoo'"), "env", "an import failed"),
    (tb("RuntimeError: cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"), "kernel-launch", "wording"),
    (tb("OSError: You are trying to access a gated repo."), "other", "matches no general category"),
])
def test_no_match_says_so_with_the_closest_category(text, category, phrase):
    result = diagnose(text, KnowledgeBase([]))
    assert result.findings == [] and result.unmatched is not None
    assert result.unmatched.category == category
    assert phrase in result.unmatched.reason
    assert any("unsloth-doctor scan" in c for c in result.unmatched.collect)


def test_no_traceback_and_truncated_paste_ask_for_more():
    nothing = diagnose("it just hangs at step 0, any idea?\n", KnowledgeBase([]))
    assert nothing.log.final is None
    assert "no Python traceback" in nothing.unmatched.collect[0]
    cut = diagnose((LOGS / "truncated.log").read_text(), KnowledgeBase([]))
    assert "stops before the error line" in cut.unmatched.collect[0]
    assert cut.unmatched.category == "merge-gguf-export"
    assert "No known cause matches" in render_text(cut)


def test_a_weak_lead_is_not_claimed_as_a_diagnosis():
    weak = KnowledgeBase([entry_from_dict(entry(
        "T-SAVE", "cuda-oom", [{"pattern": r"\bin save_to_gguf$", "weight": 0.3}]))])
    result = diagnose((LOGS / "truncated.log").read_text(), weak)
    assert [f.id for f in result.findings] == ["T-SAVE"] and not result.matched
    assert result.unmatched.category == "merge-gguf-export"
    shown = render_text(result)
    assert shown.index("No known cause matches") < shown.index("Weak leads") < shown.index("T-SAVE")


def test_key_frames_are_user_code_its_library_call_and_the_raise_site(kb):
    result = diagnose((LOGS / "colab_ipy7_keyerror.log").read_text(), kb)
    frames = [(f.function, f.in_library) for f in result.key_frames]
    assert frames == [("<module>", False), ("__init__", True), ("_check_valid_column_key", True)]


def test_renderings(kb):
    result = diagnose("UserWarning: `foo` is deprecated\n" + tb("KeyError: 'text'"), kb)
    plain = render_text(result)
    assert "\x1b[" not in plain
    assert "line 7: KeyError: 'text'" in plain
    assert 'Common advice says "Alpaca JSONL is the only format Unsloth accepts": that is wrong ' \
           "because explanation of T-KEY." in " ".join(plain.split())   # unwrapped
    assert "\x1b[" in render_text(result, color=True)
    data = json.loads(render_json(result))
    assert data["schema"] == "unsloth-doctor.explain/1"
    assert data["final_error"] == {"type": "KeyError", "message": "'text'", "line": 7, "rank": None,
                                   "truncated": False}
    assert data["diagnoses"][0]["id"] == "T-KEY" and data["diagnoses"][0]["evidence"][0]["line"] == 7
    orjson.dumps(explain_to_dict(result))   # everything in it is plain data
    md = render_markdown(result)
    assert "/home/alice" not in md and "/home/<user>" in md
    assert "#### 1. T-KEY title here" in md


def test_json_path_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from doctor.kb import KnowledgeBase\n"
        "from doctor.explainer.diagnosis import diagnose\n"
        "from doctor.report.jsonout import render_explain_json\n"
        f"text = open({str(LOGS / 'plain_oom.log')!r}).read()\n"
        "render_explain_json(diagnose(text, KnowledgeBase([])))\n"
        "heavy = {'torch', 'unsloth', 'transformers', 'trl', 'peft', 'bitsandbytes', 'rich'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --- the real knowledge base ---------------------------------------------------------------

@pytest.fixture(scope="module")
def runtime_kb() -> KnowledgeBase:
    return load_knowledge([ROOT / "knowledge" / "runtime"])


@pytest.mark.parametrize("name,category", [
    ("plain_oom.log", "cuda-oom"),
    ("old_oom.log", "cuda-oom"),
    ("jupyter_generate_oom.log", "cuda-oom"),
    ("chained_import.log", "bnb-cuda-setup"),
    ("colab_ipy7_keyerror.log", "dataset-format"),
    ("github_quoted_windows.log", "windows|triton-compile"),
    ("tqdm_then_cuda_error.log", "kernel-launch"),
    ("python_h_missing.log", "triton-compile"),
    ("triton_ptxas.log", "triton-compile"),
    ("torchrun_ranks.log", "ddp-multi-gpu"),
    ("llama_cpp_build.log", "merge-gguf-export"),
    ("truncated.log", "merge-gguf-export"),
])
def test_fixture_logs_land_in_the_right_category(runtime_kb, name, category):
    result = diagnose((LOGS / name).read_text(encoding="utf-8"), runtime_kb)
    top = result.unmatched.category if result.unmatched else result.findings[0].category
    assert top in category.split("|")


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("case", _corpus(), ids=lambda p: p.stem)
def test_pipeline_never_loses_what_the_engine_finds(runtime_kb, case):
    """On every real-issue text: if the engine alone finds the expected entry anywhere in
    the raw text, diagnose() must have it in its top three. (Structural and raise-site labels
    are not the engine's: bench/bench_explain_accuracy.py measures those.)"""
    from doctor.explainer.diagnosis import UNSLOTH_PRIOR, WEAK

    data = yaml.safe_load(case.read_text(encoding="utf-8"))
    wanted = {i for i in (data["expected"], *data.get("also_acceptable", [])) if i.startswith("RT-")}
    matches = match_text(runtime_kb, data["text"])
    # a match below WEAK is a lead, not a diagnosis (a frame path's hint of an old release):
    # it may give way to a strong answer
    raw = {m.entry.id for m in matches if m.score >= WEAK}
    result = diagnose(data["text"], runtime_kb)
    # an entry nothing in the log tells apart from a better one is kept as its alternative
    # leads by wording rest on an entry's own words, shown as such, not on a symptom
    said = [d for d in result.diagnoses if not d.by_wording]
    got = [d.id for d in said] + [a for d in said for a in d.alternatives]
    # the one answer no symptom gives: the update-first lead of an unexplained Unsloth report
    got = [i for i in got if not (i == "RT-STALE-RELEASE" and said[0].confidence == UNSLOTH_PRIOR
                                  and len(said) == 1)]
    if wanted & raw:
        assert wanted & set(got), (got, raw)
    elif not wanted & {m.entry.id for m in matches}:
        # nothing invented that the knowledge doesn't say (a reading of where the error
        # happened, Python's NameError inside Unsloth, says it and shows so)
        read = {d.id for d in said if d.by_reading}
        assert not wanted & (set(got) - read)


def test_markdown_without_diagnoses_keeps_error_and_frames(kb):
    result = diagnose(tb("KeyError: 'text'"), kb)
    md = render_markdown(result, diagnoses=False)
    assert "KeyError" in md and "### Where" in md and "T-KEY" not in md


# --- through the command line, as a whole process ---------------------------------------

def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doctor", *args], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=120)


def test_cli_explain_json_and_stdin():
    out = cli("explain", str(LOGS / "colab_ipy7_keyerror.log"), "--no-env", "--format", "json")
    assert out.returncode == 1, out.stderr            # an error-level diagnosis
    data = json.loads(out.stdout)
    section = data["explain"]
    assert section["final_error"]["type"] == "KeyError" and section["final_error"]["line"] == 23
    assert section["diagnoses"][0]["category"] == "dataset-format"
    piped = cli("explain", "-", "--no-env", stdin=b"garbage \x00\xff\xfe\n")
    assert piped.returncode == 0 and b"No Python traceback found" in piped.stdout
    assert b"Traceback" not in piped.stderr


def test_a_match_only_on_the_launchers_echo_is_a_weak_lead():
    kb = KnowledgeBase([entry_from_dict(entry(
        "T-LAUNCH", "ddp-multi-gpu", [{"pattern": "ChildFailedError", "weight": 0.45}]))])
    result = diagnose((LOGS / "real_torch211_torchrun.log").read_text(), kb)
    assert result.findings[0].id == "T-LAUNCH" and result.findings[0].confidence == 0.27  # 0.45 * 0.6
    assert not result.matched
    assert result.unmatched.reason == "the final ValueError (line 8) on rank 1 matches no general category"
    assert any("first failing rank" in c for c in result.unmatched.collect)


def test_live_environment_of_this_machine():
    """collect_environment() on whatever machine runs the tests: the driver entry is confirmed
    where there is no NVIDIA driver and ruled out where there is one."""
    from doctor.probes.env import collect_environment

    facts = collect_environment().facts
    kb = KnowledgeBase([entry_from_dict(entry(
        "T-NODRIVER", "no-gpu", [{"pattern": "Found no NVIDIA driver", "weight": 0.9}],
        when={"fact": "nvml.driver_version", "present": False}))])
    diagnosis = diagnose(tb("RuntimeError: Found no NVIDIA driver on your system."), kb, facts).diagnoses[0]
    has_driver = "nvml.driver_version" in facts
    assert diagnosis.env == ("ruled_out" if has_driver else "confirmed")
    if not has_driver:
        assert diagnosis.env_note == "confirmed on this machine: nvml.driver_version = (not present)"


def test_oom_batch_step_uses_the_banner_and_replaces_the_generic_one(kb):
    result = diagnose((LOGS / "banner_batch_oom.log").read_text(), kb)
    texts = [f.text for f in result.findings[0].fixes]
    assert texts[0].startswith("The batch size per device is 8 in this run (line 9)")
    assert "Lower the batch size (per_device_train_batch_size)." not in texts
    assert "Run Unsloth 2025.9.4, Tesla T4 (14.741 GB), batch 8 per device x 4 accumulation steps" \
        in render_text(result)


@pytest.mark.parametrize("name", sorted(p.name for p in LOGS.glob("*.log")))
def test_every_fixture_result_fits_the_published_schema(runtime_kb, name):
    import jsonschema

    from doctor.report.explain_schema import EXPLAIN_SCHEMA

    result = diagnose((LOGS / name).read_text(encoding="utf-8"), runtime_kb, Facts({"gpu.count": 0}))
    data = json.loads(render_json(result))
    jsonschema.validate(data, EXPLAIN_SCHEMA)
    assert data["matched"] == (data["unmatched"] is None)


DRIVER_THEN_NO_GPU = """\
/usr/lib/python3/dist-packages/torch/cuda/__init__.py:129: UserWarning: CUDA initialization: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx Alternatively, go to: https://pytorch.org to install a PyTorch version that has been compiled with your version of the CUDA driver.
  return torch._C._cuda_getDeviceCount() > 0
Traceback (most recent call last):
  File "/content/train.py", line 1, in <module>
    from unsloth import FastLanguageModel
  File "/usr/local/lib/python3.10/dist-packages/unsloth/__init__.py", line 83, in <module>
    raise NotImplementedError("Unsloth: No NVIDIA GPU found? Unsloth currently only supports GPUs!")
NotImplementedError: Unsloth: No NVIDIA GPU found? Unsloth currently only supports GPUs!
"""


def test_a_cause_printed_before_the_error_it_leads_to_ranks_first(knowledge_base) -> None:
    kb = knowledge_base
    ids = [f.id for f in diagnose(DRIVER_THEN_NO_GPU, kb).findings]
    assert ids[:2] == ["RT-CUDA-DRIVER-TOO-OLD", "RT-NO-GPU-OLD-MESSAGE"]
    first, second = diagnose(DRIVER_THEN_NO_GPU, kb).diagnoses[:2]
    assert first.explains == ("RT-NO-GPU-OLD-MESSAGE",) and second.caused_by == ("RT-CUDA-DRIVER-TOO-OLD",)
    assert first.confidence > second.confidence
    # Without the warning, the final error alone leads.
    alone = DRIVER_THEN_NO_GPU.split("\n", 2)[2]
    assert diagnose(alone, kb).findings[0].id == "RT-NO-GPU-OLD-MESSAGE"
    # Live facts that rule the cause out (a driver new enough) keep it below the error.
    facts = {"torch.cuda_build": "12.1", "nvml.driver_cuda": "12.8"}
    assert diagnose(DRIVER_THEN_NO_GPU, kb, facts).findings[0].id == "RT-NO-GPU-OLD-MESSAGE"


def test_an_info_line_beside_an_error_is_a_weaker_lead_than_a_warning_there(kb):
    info = KnowledgeBase([*kb.entries, entry_from_dict(
        {**entry("T-INFO", "other", [{"pattern": "Will patch your computer", "weight": 0.8}]), "severity": "info"})])
    text = "Unsloth: Will patch your computer\nUserWarning: `foo` is deprecated\n" + tb("OSError: disk full")
    found = {f.id: f.confidence for f in diagnose(text, info).findings}
    assert found["T-INFO"] < found["T-WARN"]    # both 0.8, neither on the error
    alone = diagnose("Unsloth: Will patch your computer\n", info).findings[0]
    # with no error either, a line printed when things work is a lead, not a cause
    assert alone.id == "T-INFO" and alone.confidence < 0.35   # under the line explain claims a cause at


# --- a report about Unsloth that nothing in it explains: the maintainers' usual answer -------

def test_an_unexplained_unsloth_report_gets_the_update_first_lead(knowledge_base):
    result = diagnose("[Bug] save_pretrained_merged doesn't merge the model with unsloth\n"
                      "The saved folder still holds the LoRA weights only.\n", knowledge_base)
    assert result.diagnoses[0].id == "RT-STALE-RELEASE"
    assert result.diagnoses[0].confidence == 0.2                      # a faint lead, never a claim
    # below it, entries close by wording only (merging): fainter, each showing its words
    assert all(d.confidence <= 0.15 and d.finding.evidence[0].kind == "words" for d in result.diagnoses[1:])
    assert "No known cause matches" in render_text(result)


def test_no_update_lead_without_a_problem_or_through_other_code(knowledge_base):
    healthy = ("==((====))==  Unsloth - 2x faster free finetuning | Num GPUs used = 1\n"
               "Unsloth: Will smartly offload gradients to save VRAM!\n"
               "What is Unsloth? It is a library for fast fine-tuning; a wrong answer here is fine.\n")
    assert diagnose(healthy, knowledge_base).diagnoses == []
    # a game's state printed by a working RL notebook (gpt_oss 2048 game) is no report either
    state = "Steps = 1 State = failed\ndef strategy(board):\n    return 'W'\nunsloth/gpt-oss-20b loaded\n"
    assert diagnose(state, knowledge_base).diagnoses == []
    # a traceback that never enters Unsloth is not Unsloth's bug, whatever the paste mentions
    other = ("I use unsloth for training; this fails in my own code\n" + tb("ZeroDivisionError: boom"))
    assert all(d.id != "RT-STALE-RELEASE" for d in diagnose(other, knowledge_base).diagnoses)


def test_an_untyped_error_line_is_called_the_final_error(knowledge_base):
    result = diagnose("[Bug] the merged model does not load in vLLM\n", knowledge_base)
    assert result.unmatched is not None and "the final  " not in result.unmatched.reason
