"""Confidence that says how sure the answer is, not only how well its pattern fits.

A pattern's score says how strongly the log shows one cause. It does not say whether
another, unrelated cause fits the log about as well; when one does, the top answer is a
choice between near equals and is wrong far more often (on the development split of the
corpus: with a rival at 75% or more of the top answer's confidence, 5 of 24 top-1 answers
were wrong; without, 1 of 139). So every confidence of the result is scaled down by how
close the best rival comes to the top answer:

    factor = 1 - AMBIGUITY * clip((rival / top - FLOOR) / (1 - FLOOR), 0, 1)

A rival is another answer that does not agree with the top one: not an entry it explains or
is caused by, not an alternative the log cannot tell apart from it, not the structural
reading of the same final error (ST-IMPORT-NAME beside an entry on that import), not a line
elsewhere in the log when the top answer is on the final error, and not a raise site of
the very message a top entry matched on the final error (the entry says more about that
message; the site says where it is raised). Scaling every answer keeps their order.
Constants fitted on the development split only (AUROC of top-1 confidence, right against
wrong: 0.81 unscaled, 0.91 scaled; AMBIGUITY 0.4 is the middle of the settings that reached
about 0.9, FLOOR 0.5 the best of 0.5-0.8). Cross-validated on the development split
(bench/bench_explain_calibration_cv.py: the constants chosen without the held-out cases), the
AUROC stays about the same (0.89 leave-one-out against 0.90 in-sample), so the gap to unseen reports is not the two
constants overfitting: it is answers that no rival questions.

Two rules speak to those, both read from the paste and the pattern, with round constants:
- an entry rests on a generic symptom when its pattern spans a small share of the line it
  matched (`coverage`): under WIDE of the line, its score loses up to NARROW;
- an entry on the final error below SPECIFIC (no symptom of weight >= 0.75 reached it) is
  rivalled by a template of the file the traceback's innermost frame names.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from doctor.results.explain import Diagnosis, RaiseSite

AMBIGUITY, FLOOR = 0.4, 0.5
NARROW, WIDE = 0.2, 0.4   # a match covering under WIDE of its line loses up to NARROW of its score
SPECIFIC = 0.85   # an entry on the final error reaches this only through a symptom of weight >= 0.75


def _linked(a: Diagnosis, b: Diagnosis) -> bool:
    """b agrees with a: linked by the knowledge, or one is the structural (general) reading of
    the final error that the other, a knowledge entry, reads specifically."""
    general = (a.id.startswith(STRUCTURAL) or b.id.startswith(STRUCTURAL)) and a.on_final_error and b.on_final_error
    return general or b.id in a.explains or b.id in a.caused_by or b.id in a.alternatives \
        or a.id in b.explains or a.id in b.caused_by or a.id in b.alternatives


STRUCTURAL = "ST-"


def raised_here(site: RaiseSite, named_file: str | None) -> bool:
    """The paste's innermost frame is in this site's file (the error was raised there)."""
    from doctor.explainer.raiseindex import EXACT, file_agreement

    return bool(named_file) and site.kind != "frame" and file_agreement(named_file, site.file) == EXACT


def _site_agrees(head: Diagnosis, site: RaiseSite, same_message: bool, named_file: str | None) -> bool:
    """A raise site says the same as the top entry: a template of the message the entry read
    on the final error (`same_message`)..."""
    if head.by_reading and site.kind == "frame":
        return True   # a reading of where the error happened names that frame itself
    if head.confidence < SPECIFIC and raised_here(site, named_file):
        # ...unless the entry rests on a generic symptom and the traceback says the site's
        # file raised it: then the site is a second answer, not the same one
        return False
    return same_message and site.kind != "frame"


def rival_share(diagnoses: Sequence[Diagnosis], sites: Sequence[RaiseSite], message_known: bool,
                named_file: str | None = None) -> float:
    """How close the best rival of the top answer comes to it: rival / top, 0 when none."""
    best_d = diagnoses[0].confidence if diagnoses else 0.0
    best_s = sites[0].confidence if sites else 0.0
    top = max(best_d, best_s)
    if top <= 0:
        return 0.0
    if diagnoses and best_d >= best_s:
        head = diagnoses[0]
        # an entry on the final error is rivalled by another reading of that error, not by
        # a line elsewhere in the log (a warning printed earlier)
        rivals = [d.confidence for d in diagnoses[1:] if not _linked(head, d)
                  and (d.on_final_error or not head.on_final_error)]
        agree = head.on_final_error and message_known   # a site of the same final message
        rivals += [s.confidence for s in sites if not _site_agrees(head, s, agree, named_file)]
    else:
        rivals = [s.confidence for s in sites[1:] if s.file != sites[0].file]
        rivals += [d.confidence for d in diagnoses]
    return max(rivals, default=0.0) / top


def factor(share: float) -> float:
    closeness = min(1.0, max(0.0, (share - FLOOR) / (1 - FLOOR)))
    return 1 - AMBIGUITY * closeness


def calibrated(diagnoses: list[Diagnosis], sites: list[RaiseSite], message_known: bool,
               named_file: str | None = None) -> tuple[list[Diagnosis], list[RaiseSite], float]:
    """The answers with every confidence scaled by `factor`, and the factor."""
    f = factor(rival_share(diagnoses, sites, message_known, named_file))
    if f >= 1.0:
        return diagnoses, sites, 1.0
    out_d = [replace(d, finding=replace(d.finding, confidence=round(d.confidence * f, 2))) for d in diagnoses]
    out_s = [s._replace(confidence=round(s.confidence * f, 2)) for s in sites]
    return out_d, out_s, f


def coverage(symptoms: Sequence[Any], lines: Sequence[tuple[int, str]]) -> float:
    """The largest share of a matched line that one of the entry's symptoms covers: a pattern
    that matches a few words of a long message ("pixel_values", "CUDA error") fits many
    messages and is weaker evidence than one that spans the message."""
    from doctor.textmatch import compile_pattern

    best = 0.0
    for _, line in lines:
        text = line.strip()
        for symptom in symptoms:
            found = compile_pattern(symptom.pattern).search(text)
            if found:
                best = max(best, (found.end() - found.start()) / max(1, len(text)))
    return min(1.0, best)


def narrow_factor(cover: float) -> float:
    """1 for a match spanning WIDE of its line or more, down to 1 - NARROW for a tiny one."""
    return 1 - NARROW * min(1.0, max(0.0, (WIDE - cover) / WIDE))
