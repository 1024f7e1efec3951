"""Confidence scaled by how close a rival answer comes: wrong answers are often the ones with
a near-equal rival, so those answers say they are less sure (doctor/explainer/calibrate.py)."""
from __future__ import annotations

from doctor.explainer.calibrate import calibrated, factor, rival_share
from doctor.explainer.diagnosis import diagnose
from doctor.findings import Finding, Severity
from doctor.results.explain import Diagnosis, RaiseSite


def diag(id: str, conf: float, on_final: bool = True, **more) -> Diagnosis:
    return Diagnosis(Finding(id=id, title=id, severity=Severity.ERROR, category="x", area="runtime",
                             message=id, confidence=conf), on_final_error=on_final, **more)


def site(file: str, conf: float, kind: str = "raise") -> RaiseSite:
    return RaiseSite("peft", "0.21.2", file, 1, "f", kind, "ValueError", "msg", "", "other", None, conf)


def test_no_rival_leaves_the_confidence_and_a_near_equal_one_lowers_every_answer_in_order():
    alone, _, f = calibrated([diag("RT-A", 0.9)], [], True)
    assert f == 1.0 and alone[0].confidence == 0.9
    d, s, f = calibrated([diag("RT-A", 0.9), diag("RT-B", 0.85)], [], True)
    assert f < 0.7 and d[0].confidence > d[1].confidence and d[0].confidence < 0.65
    assert factor(0.5) == 1.0 and factor(1.0) < factor(0.8) < 1.0


def test_answers_that_agree_are_no_rivals():
    cause = diag("RT-CAUSE", 0.9, explains=("RT-EFFECT",))
    assert rival_share([cause, diag("RT-EFFECT", 0.89, caused_by=("RT-CAUSE",))], [], True) == 0.0
    assert rival_share([diag("RT-A", 0.9), diag("ST-IMPORT-NAME", 0.7)], [], True) == 0.0
    assert rival_share([diag("RT-A", 0.9), diag("RT-WARN", 0.85, on_final=False)], [], True) == 0.0
    # a site of the message the entry matched says where it is raised; a frame lead competes
    assert rival_share([diag("RT-A", 0.9)], [site("a.py", 0.9)], True) == 0.0
    assert rival_share([diag("RT-A", 0.8, on_final=False)], [site("a.py", 0.5, "frame")], False) > 0.6


def test_sites_are_rivals_only_in_other_files():
    assert rival_share([], [site("a.py", 0.6), site("a.py", 0.55)], True) == 0.0
    assert rival_share([], [site("a.py", 0.6), site("b.py", 0.55)], True) > 0.9


def test_one_message_in_several_files_with_nothing_to_choose_says_it_is_unsure(knowledge_base):
    # peft 0.21.2 raises this exact text in its glora, lora and road models; no entry knows it
    message = "Cannot pass `adapter_names` when the model is in training mode."
    r = diagnose(f"ValueError: {message}", knowledge_base)
    assert not r.diagnoses
    assert r.raise_sites[0].confidence < 0.5 and any("almost as well" in n for n in r.notes)
    named = diagnose('Traceback (most recent call last):\n  File "/v/site-packages/peft/tuners/road/model.py", '
                     'line 127, in _enable_peft_forward_hooks\n    raise ValueError(msg)\n'
                     f"ValueError: {message}\n", knowledge_base)
    assert named.raise_sites[0].file == "peft/tuners/road/model.py" and named.raise_sites[0].confidence > 0.8


def test_a_generic_entry_is_rivalled_by_a_site_in_the_file_the_traceback_names():
    # an entry on the final error through a weak symptom (below SPECIFIC) and a template of
    # the very file the innermost frame is in: two answers, not one
    weak, strong = [diag("RT-A", 0.6)], [diag("RT-A", 0.9)]
    here = [site("trl/trainer/dpo_trainer.py", 0.55)]
    assert rival_share(weak, here, True, "trl/trainer/dpo_trainer.py") > 0.9
    assert rival_share(weak, here, True, "peft/other.py") == 0.0   # the paste names another file
    assert rival_share(strong, here, True, "trl/trainer/dpo_trainer.py") == 0.0


def test_a_pattern_spanning_a_few_words_of_a_long_line_counts_less(knowledge_base):
    from types import SimpleNamespace

    from doctor.explainer.calibrate import WIDE, coverage, narrow_factor

    pixel = [SimpleNamespace(pattern="pixel_values")]
    long_line = [(3, "ValueError: pixel_values of shape (1, 3) are expected to have 4 or 5 dimensions here")]
    assert coverage(pixel, long_line) < 0.2 and coverage(pixel, [(1, "  pixel_values  ")]) == 1.0
    assert narrow_factor(WIDE) == narrow_factor(1.0) == 1.0 > narrow_factor(0.2) > narrow_factor(0.0)
    # the real pipeline: the same entry through the same symptom is less sure on a long
    # message it spans a few words of than on a short one
    def collator(text: str) -> float:
        return next(d.confidence for d in diagnose(text, knowledge_base).diagnoses if d.id == "RT-VISION-COLLATOR")

    assert collator(f"{long_line[0][1]}\n") < collator("ValueError: no pixel_values\n")
