"""A name Unsloth's own code uses but never defined: Python's NameError or UnboundLocalError
raised inside unsloth or unsloth_zoo is a bug of the release in use (RT-STALE-RELEASE)."""
from __future__ import annotations

import pytest

from doctor.explainer.diagnosis import RELEASE_BUG, WEAK, diagnose
from doctor.report.explain import render_markdown, render_text

ZOO_FRAME = ('  File "/usr/local/lib/python3.11/dist-packages/unsloth_zoo/temporary_patches.py", line 468, '
             "in patch_causal_mask\n    new_keys = inspect.signature(forward).parameters\n")
USER_FRAME = '  File "/home/me/train.py", line 12, in <module>\n    print(undefined_thing)\n'
HF_FRAME = ('  File "/usr/lib/python3/site-packages/transformers/trainer.py", line 10, in train\n'
            "    x = y\n")


def _traceback(*frames: str, error: str) -> str:
    return "Traceback (most recent call last):\n" + "".join(frames) + error + "\n"


@pytest.fixture(scope="module")
def kb(knowledge_base):
    return knowledge_base


def test_a_name_error_inside_unsloth_zoo_is_a_bug_of_the_release(kb):
    result = diagnose(_traceback(USER_FRAME.replace("print(undefined_thing)", "model = load()"), ZOO_FRAME,
                                 error="NameError: name 'forward' is not defined"), kb)
    top = result.diagnoses[0]
    assert top.id == "RT-STALE-RELEASE" and top.confidence == RELEASE_BUG
    # the innermost frame's own lead is the same place, no rival that would lower the confidence
    assert not any("almost as well" in note for note in result.notes)
    shown = [ev.value for ev in top.finding.evidence]
    assert "NameError: name 'forward' is not defined" in shown
    assert any("unsloth_zoo/temporary_patches.py:468" in v for v in shown)   # where it happened
    assert top.by_reading and not top.by_wording
    said = "Python raised NameError inside unsloth_zoo, in patch_causal_mask"
    assert said in render_text(result, width=None).replace("\n    ", " ") and said in render_markdown(result)


def test_an_unbound_local_in_unsloth_is_one_too(kb):
    frame = ZOO_FRAME.replace("unsloth_zoo/temporary_patches.py", "unsloth/models/loader.py")
    result = diagnose(_traceback(frame, error="UnboundLocalError: local variable 'e' referenced before assignment"), kb)
    assert result.diagnoses[0].id == "RT-STALE-RELEASE" and result.diagnoses[0].confidence >= WEAK


@pytest.mark.parametrize("frames", [
    (ZOO_FRAME, USER_FRAME),   # raised in the user's own code, which Unsloth called back
    (HF_FRAME,),               # another library's bug, not Unsloth's
])
def test_a_name_error_elsewhere_claims_no_release_bug(kb, frames):
    result = diagnose(_traceback(*frames, error="NameError: name 'undefined_thing' is not defined"), kb)
    assert not any(d.id == "RT-STALE-RELEASE" and d.confidence >= WEAK for d in result.diagnoses)


def test_a_bare_error_line_needs_the_report_to_place_it_in_unsloth(kb):
    placed = ("NameError: name 'PreTrainedConfig' is not defined\n"
              "Error occurs in `unsloth/models/_utils.py:460` during import\n")
    assert diagnose(placed, kb).diagnoses[0].id == "RT-STALE-RELEASE"
    unplaced = "NameError: name 'PreTrainedConfig' is not defined\n"
    assert not any(d.id == "RT-STALE-RELEASE" and d.confidence >= WEAK for d in diagnose(unplaced, kb).diagnoses)


def test_a_type_error_inside_unsloth_is_not_read_so(kb):
    # only a name the code never defined says "bug of this release"; a TypeError may be the caller's
    result = diagnose(_traceback(ZOO_FRAME, error="TypeError: 'NoneType' object is not iterable"), kb)
    assert not any(d.id == "RT-STALE-RELEASE" and d.confidence >= WEAK for d in result.diagnoses)
