"""Diagnose a parsed log: rank knowledge entries whose symptoms appear, weigh them by where
they appear and by what this machine's facts say, and say honestly when nothing matches.

Ranking, on top of the engine's pattern score s (0..1):
- a match on a line of the final error (or the OOM message, or a build tool's error line)
  moves s 40% of the way to 1; on another exception of the same chain, 15%;
- when the log has an exception and the match touches none of its lines, s * 0.85
  (a warning earlier in the log is a weaker lead than the error itself), and s * 0.6 when
  every line it touches is a launcher's echo (torchrun's ChildFailedError traceback and
  summary) of a failure whose own traceback is in the log;
- an entry of severity info (a line printed when things work) not on the final error: s * 0.5,
  with or without an exception in the log;
- a `when:` condition that holds on the live facts moves s 30% of the way to 1; one that is
  false multiplies s by 0.4; unknown (facts missing) leaves s as it is;
- an entry that `explains:` another one that also matched (a cause printed before the error
  it leads to) gets that one's score, plus 10% of the way to 1.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import IO, Any, Mapping

from doctor.explainer import banner, oom, wording
from doctor.explainer.calibrate import SPECIFIC, calibrated, coverage, narrow_factor
from doctor.explainer.fallback import classify_unmatched
from doctor.explainer.parse import issue_title, parse_stream, parse_text
from doctor.explainer.structural import diagnose_structure
from doctor.findings import Evidence, Fix
from doctor.results.explain import Diagnosis, ExplainResult, Frame, ParsedLog, RaiseSite

FINAL_PULL, CHAIN_PULL, ELSEWHERE, CONFIRMED_PULL, RULED_OUT = 0.40, 0.15, 0.85, 0.30, 0.40
CAUSE_STEP = 0.1   # a cause that `explains:` a matched effect ranks this far above it
INFO_BESIDE_ERROR = 0.5   # an info entry (printed when things work) beside an error it does not touch
ECHO = 0.6   # a match only on a launcher's echo of the failure (torchrun's ChildFailedError)
STRONG, FAINT = 0.5, 0.2   # next to a strong diagnosis, faint ones are noise
SHORT_PASTE = 5   # an untyped paste up to this many lines may be one message (a warning)
WEAK = 0.35                # below this no diagnosis is claimed; the best are shown as leads
LEAD_FLOOR = 0.3           # an entry this weak still outranks a cut traceback's frame lead


def diagnose(text: str, kb: Any, facts: Mapping[str, Any] | None = None, top: int = 3) -> ExplainResult:
    return diagnose_log(parse_text(text), kb, facts, top)


def diagnose_stream(stream: IO[bytes], kb: Any, facts: Mapping[str, Any] | None = None,
                    top: int = 3) -> ExplainResult:
    """For files and pipes: big logs are filtered while they stream, never held whole."""
    return diagnose_log(parse_stream(stream), kb, facts, top)


def diagnose_log(log: ParsedLog, kb: Any, facts: Mapping[str, Any] | None = None,
                 top: int = 3) -> ExplainResult:
    from doctor.engine import match_text

    if not facts:
        facts = None   # --no-env gives no facts: correlate nothing rather than "not present"
    matches = match_text(kb, matchable_lines(log)) if log.lines else []
    hot, warm = _important_lines(log)
    echo = _echo_lines(log)
    weighed = _promote_causes([_weigh(m, log, hot, warm, echo, facts) for m in matches], kb)
    weighed += diagnose_structure(log) if log.lines else []
    weighed += _release_bug(log, kb)
    if not weighed and log.lines:
        weighed = _unsloth_prior(log, kb)
    # At equal confidence (both at 100%), a cause goes before the error it explains.
    ranked = sorted(weighed, key=lambda d: (-d.confidence, not d.explains))
    diagnoses = _distinct(ranked)
    if diagnoses and diagnoses[0].confidence >= STRONG:
        diagnoses = [d for d in diagnoses if d.confidence >= FAINT]
    diagnoses = diagnoses[:max(0, top)]
    notes = []
    strong = bool(diagnoses) and diagnoses[0].confidence >= STRONG
    # Under a strong entry the source is still named for a short paste (one message: where is
    # it raised?); a whole log with a strong entry does not pay for loading the index.
    # A traceback that names its raising file is read against the index too when the entry
    # rests on a generic symptom (below SPECIFIC): the file's own template may say more.
    named = named_raiser(log) if log.final is not None and log.final.frames else None
    specific = bool(diagnoses) and diagnoses[0].confidence >= SPECIFIC
    sites = _raise_sites(log, notes) if not strong or log.total_lines <= SHORT_PASTE or (
        named and not specific and _indexed(named)) else []
    cut = log.final is not None and not log.final.message
    unmatched = None if diagnoses and diagnoses[0].confidence >= WEAK else classify_unmatched(log)
    # rivals are judged on the sites' own confidence, before the cap below ranks them under
    # an entry; a close rival makes every answer less sure (doctor/explainer/calibrate.py)
    capped = bool(diagnoses) and ((cut and diagnoses[0].confidence >= LEAD_FLOOR) or strong)
    shape = next((d.id for d in diagnoses if d.id.startswith("ST-") and d.on_final_error), None)
    diagnoses, sites, scaled = calibrated(diagnoses, sites, log.final is not None and bool(log.final.message),
                                          named)
    if scaled < 1.0:
        notes.append("Another answer fits this log almost as well as the first one; the confidences are "
                     "lowered to say so.")
    # the innermost frame's own line is the `raise` of a template in its file: the library
    # raised this message on purpose there, not Python in some expression of that shape
    kept = _raised_on_purpose(log, sites, named) if shape is not None else None
    if capped and not (kept and diagnoses[0].id == shape):
        # an entry that answers strongly says more than where the message is raised, and a
        # cut traceback's frame is a weaker lead than any entry that matched the log
        cap = max(0.0, diagnoses[0].confidence - 0.01)
        sites = [s._replace(confidence=min(s.confidence, cap)) for s in sites]
    if shape is not None and sites:
        # the final error is one of Python's own message shapes (no attribute, unexpected
        # keyword, cannot import): a library template of that shape is where any such error
        # may pass, weaker than the structural reading of which package lacks what
        cap = max(0.0, next(d.confidence for d in diagnoses if d.id == shape) - 0.01)
        sites = [s if s is kept else s._replace(confidence=min(s.confidence, cap)) for s in sites]
    diagnoses += _wording_leads(log, kb, diagnoses, sites, top)
    if log.dropped_lines:
        notes.append(f"Read {log.total_lines} lines; kept {len(log.lines)} that look like errors, "
                     "tracebacks or build output, plus the head and the tail.")
    return ExplainResult(
        log=log,
        diagnoses=diagnoses,
        key_frames=key_frames(log),
        unmatched=unmatched,
        env_checked=facts is not None,
        notes=notes,
        run_summary=banner.describe(log.run) if log.run is not None else None,
        oom_summary=oom.summary(log.oom) if log.oom is not None else None,
        oom_advice=list(oom.advice(log.oom, log.run)) if log.oom is not None else [],
        raise_sites=sites,
    )


def _entry_answer(entry: Any, confidence: float, lines: list[tuple[int, str]], *why: Evidence,
                  on_final_error: bool = False) -> Diagnosis:
    """An entry's answer that no symptom match weighed (the update-first lead, a reading of
    where the error happened, a lead by wording): its lines as evidence, then what says why."""
    from doctor.engine import TextMatch, finding_from_match

    finding = finding_from_match(TextMatch(entry, confidence, lines))
    if why:
        finding = replace(finding, evidence=(*finding.evidence, *why))
    return Diagnosis(finding, on_final_error=on_final_error)


UNSLOTH_PRIOR = 0.2   # as weak as the entry's own path and version symptoms
_NAMES_UNSLOTH = re.compile(r"(?i)\bunsloth\b")
_UNSLOTH_CODE = ("unsloth", "unsloth_zoo")   # the packages whose frames are Unsloth's own code
# a line a run prints (banners, log records, paths, `Steps = 1 State = failed`, IPython's
# `env: NAME=1`), not a title
_PRINTED_BY_A_RUN = re.compile(r"^\s*(?:Unsloth|==\(\(|\\\\|O\^O|\\|\"-|INFO|WARNING|DEBUG|ERROR|\[|\(|\d|[\w.]+:\d+:|/|[A-Za-z]:\\|env: \w+="
                               r"|.*\w = \S)")
# a bracketed logger name opening a log record (`[transformers] ...`, `[bitsandbytes.cextension|ERROR]`),
# which a run prints; an issue tracker's tags are words a person chose (`[Bug]`, `[import unsloth]`)
_LOGGER_TAG = re.compile(r"^\s*\[[a-z_][\w.]*(?:\|[A-Z]+)?\]")
# a model's reply in a saved generation, not a person's title: a refusal, or a line that ends in
# the chat template's end-of-turn token
_GENERATION = re.compile(r"(?i)^\s*(?:I'?m sorry|I am sorry|I apologi[sz]e|sorry, but)\b"
                         r"|(?:<\|?[\w.]*\|>|</s>|<eos>|<end_of_turn>)\s*$")
# a record a run prints as fields: `Moves: 1, State: failed`
_FIELDS = re.compile(r"^\s*[A-Z][\w ]{0,20}: [^,]{1,30}, [A-Z][\w ]{0,20}: ")
_SAYS_PROBLEM = re.compile(r"(?i)\b(bugs?|crash\w*|broken|breaks?(?! down)|wrong|garbage|gibberish|hangs?|stuck|froze|freezes?|"
                           r"fails?|failing|issues?|problems?|has no attribute|not found|"
                           r"(does ?n.?t|do ?n.?t|not|won.?t|can.?t|cannot) (work|load|save|merge|run|train|start|finish))\b|"
                           r"报错|失败|错误|出错|问题|不能|无法")


def _unsloth_prior(log: ParsedLog, kb: Any) -> list[Diagnosis]:
    """A report about Unsloth that nothing in it explains: the answer its maintainers give
    most often is that a later release fixed it (RT-STALE-RELEASE), as a faint lead."""
    entry = kb.get("RT-STALE-RELEASE")
    line = next((line for line in log.lines if _NAMES_UNSLOTH.search(line.text)), None)
    if entry is None or line is None:
        return []
    # only a report of something going wrong: an exception, or a first line (a title) that
    # says so; a healthy run's output is no report, whatever its notices or generations say
    final = log.final
    if final is not None and final.frames:   # a traceback: it must pass through Unsloth
        if not (any(f.package in _UNSLOTH_CODE for f in final.frames)
                or _NAMES_UNSLOTH.search(final.message)):
            return []
    elif final is None or not _NAMES_UNSLOTH.search(final.message):   # prose, or a bare error line
        first = first_line(log)
        said = _title_words(first)
        if said is None or not failure_words(said):
            return []
    return [_entry_answer(entry, UNSLOTH_PRIOR, [(line.no, line.text)])]


RELEASE_BUG = 0.6   # a name Unsloth's own code lacks: its maintainers' answer is the next release
_UNDEFINED_NAME = frozenset({"NameError", "UnboundLocalError"})
# a place in Unsloth's code named on a line of a report without frames (`unsloth/models/_utils.py:460`)
_UNSLOTH_FILE = re.compile(r"\bunsloth(?:_zoo)?[/\\]+[\w/\\]+\.py|unsloth_compiled_cache")


def _release_bug(log: ParsedLog, kb: Any) -> list[Diagnosis]:
    """Python's own NameError or UnboundLocalError raised inside unsloth or unsloth_zoo (or
    the trainers it compiles): the release's code uses a name it never defined, a bug of that
    release that its maintainers fix in the next one (RT-STALE-RELEASE). Python raises these,
    so no template of the raise-site index and no version check can tell it; where it happened can."""
    final, entry = log.final, kb.get("RT-STALE-RELEASE")
    if entry is None or final is None or final.short_type not in _UNDEFINED_NAME:
        return []
    if final.frames:
        inner = final.frames[-1]
        packaged = [f for f in final.frames if f.package]
        if not inner.in_library or not packaged or packaged[-1].package not in _UNSLOTH_CODE:
            return []   # the user's own code, or another library's
        where = [(inner.log_line, inner.where())] if inner.log_line is not None else []
        place = f"{packaged[-1].package}, in {inner.function}"
    else:   # a bare error line: the report must say it came from Unsloth's code
        said = next((line for line in log.lines if _UNSLOTH_FILE.search(line.text)), None)
        if said is None:
            return []
        where, place = [(said.no, said.text)], "Unsloth's code, by the report"
    error = [(final.log_line, f"{final.type}: {final.message}")] if final.log_line is not None else []
    read = Evidence("reading", "release-bug", f"Python raised {final.short_type} inside {place}: the "
                    "release's own code uses a name it never defined, a bug of that release; later "
                    "releases fix such bugs")
    return [_entry_answer(entry, RELEASE_BUG, error + where, read, on_final_error=True)]


def _wording_leads(log: ParsedLog, kb: Any, diagnoses: list[Diagnosis], sites: list[RaiseSite],
                   top: int) -> list[Diagnosis]:
    """When nothing answers at WEAK or above, the runtime entries closest to the report's
    telling lines by wording fill the free places, under every answer found otherwise."""
    best = max([d.confidence for d in diagnoses] + [s.confidence for s in sites], default=0.0)
    free = top - len(diagnoses) - len({s.file for s in sites})
    if best >= WEAK or free <= 0 or not log.lines or not reports_a_problem(log):
        return []
    telling = [first_line(log), *error_sentences(log)]
    if log.final is not None and log.final.message:
        telling.append(f"{log.final.type}: {log.final.message}")
    return [_entry_answer(kb.get(lead.entry_id), lead.confidence, [],
                          Evidence("words", "wording", ", ".join(lead.words)))
            for lead in wording.leads("\n".join(telling), kb, {d.id for d in diagnoses}, free)]


TITLE_LENGTH = 200
_TOO_COMMON_IN_PROSE = frozenset({"problem", "problems", "issue", "issues"})


def failure_words(line: str) -> list[str]:
    """The words of a line that say something went wrong ("fails", "doesn't load", "error"),
    lower-cased, in order; empty when it says nothing of the kind."""
    found = [(m.start(), m.group(0).lower()) for rx in (_SAYS_PROBLEM, _SAYS_ERROR) for m in rx.finditer(line)]
    return [word for _, word in sorted(found)]


def _tracker_title(first: str) -> str | None:
    """The title of a first line that opens with an issue tracker's tags (`[Bug] ...`), not a
    logger's bracketed name; None for any other line."""
    return None if _LOGGER_TAG.match(first) else issue_title(first)


def _title_words(first: str) -> str | None:
    """What a person wrote on a report's first line: the title without its tracker tags
    (`[Bug] ...`), or the line itself; None for a line a run or a model printed (a log
    record, a banner, fields, a generation)."""
    tracked = _tracker_title(first)
    if tracked is not None:
        return tracked
    text = issue_title(first) or first   # a logger's record reads as what it says
    if _PRINTED_BY_A_RUN.match(text) or _FIELDS.match(text) or _GENERATION.search(text):
        return None
    return text


def report_reason(log: ParsedLog) -> str | None:
    """Why a paste is a report of a problem: a typed exception or error line, an issue's title
    (`[Bug] ...`), or a short first line of prose saying something failed or broke; None for
    a healthy run's output. Model generations say "You are given a problem", so a bare
    "problem" or "issue" is not enough, though "problem: training fails" is."""
    if log.final is not None and (log.final.type or log.final.frames):
        return "a typed error line"
    first = first_line(log).strip()
    if _tracker_title(first):
        return "an issue title"
    text = _title_words(first)
    if (text is not None and len(first) <= TITLE_LENGTH
            and any(word not in _TOO_COMMON_IN_PROSE for word in failure_words(text))):
        return "a first line saying something failed"
    return None


def reports_a_problem(log: ParsedLog) -> bool:
    return report_reason(log) is not None


def _raised_on_purpose(log: ParsedLog, sites: list[RaiseSite], named: str | None) -> RaiseSite | None:
    """The first site in the file the innermost frame names, when that frame's source line is
    a `raise` (CPython's own errors show the failing expression there, not a raise)."""
    from doctor.explainer.calibrate import raised_here

    code = (log.final.frames[-1].code or "").lstrip() if log.final is not None and log.final.frames else ""
    if not code.startswith("raise "):
        return None
    return next((s for s in sites if raised_here(s, named)), None)


def _indexed(named: str) -> bool:
    from doctor.explainer.raiseindex import indexed   # the index module only when needed

    return indexed(named)


def _raise_sites(log: ParsedLog, notes: list[str]) -> list[RaiseSite]:
    """Where the library's own source raises or prints the message (no entry knows it)."""
    from doctor.explainer.raiseindex import find_sites

    final = log.final
    tail = [line.text for line in log.lines[-20:] if line.text.strip() and not line.text.startswith("```")]
    if final is not None:
        if not final.message:   # cut before its error line: the innermost frame is the lead
            from doctor.explainer.cutframes import cut_traceback_sites

            sites, note = cut_traceback_sites(final)
            notes.extend([note] if note else [])
            return sites
        messages = [(final.type, final.message)]
        if "\n" in final.message.strip():   # a bare error's following lines may not be its message
            messages.append((final.type, final.message.split("\n", 1)[0]))
    elif len(tail) <= SHORT_PASTE:
        # a pasted warning or message without a type (or an issue title with one inside):
        # each line, then the lines as one
        messages = [m for text in reversed(tail) for m in _typed_inside(text)]
        messages += [("", text) for text in reversed(tail)] + [("", " ".join(tail))]
    else:   # a long log with no error: its info lines are not what went wrong, but an
        # issue title on its first line (`[Bug] Unsloth detected ...`) is the report's error,
        # and so are lines that say they are one (`GGUF export failed: Unsloth: ...`)
        bare = issue_title(first_line(log))
        said = error_sentences(log)
        if bare is None and not said:
            return []
        messages = [*_typed_inside(bare), ("", bare)] if bare is not None else []
        messages += [m for text in said for m in (*_typed_inside(text), ("", text))]
    reported = log.run.unsloth_version if log.run is not None else None
    try:
        sites, total = find_sites(messages, reported, named_file=named_raiser(log))
        if not sites and final is not None:
            from doctor.explainer.framesite import innermost_frame_site

            sites = [s for s in [innermost_frame_site(final)] if s is not None]
        if total > len(sites):
            notes.append(f"The same message is raised in {total} places of the source; "
                         f"the {len(sites)} closest are shown.")
        return sites
    except (OSError, ValueError, EOFError) as exc:   # a damaged index must not hide the rest
        notes.append(f"Could not read the raise-site index ({type(exc).__name__}: {exc}).")
        return []


# a line of a log or of prose that says something failed, in the words libraries use
_SAYS_ERROR = re.compile(r"(?i)(?:\berror\b|\bfailed\b|\bfailure\b|\bexception\b|\bcannot\b|\bcan't\b|"
                         r"\bcould not\b|\bnot supported\b|\bunsupported\b|\binvalid\b|\bno such\b)")
_CODE_LINE = re.compile(r"^\s*(?:#|//|import |from \S+ import |def |class |if |for |with |return |print\(|\w[\w.\[\]'\"]*\s*=[^=])")
SAID_ERRORS = 4   # the last lines of a long paste that say they are an error


def first_line(log: ParsedLog) -> str:
    """The paste's first non-empty line: a report's title, or a log's first record."""
    return next((line.text for line in log.lines if line.text.strip()), "")


def error_sentences(log: ParsedLog) -> list[str]:
    """The last few lines of a paste without a Python exception that say an error happened
    (`Unsloth: GGUF conversion failed: ...`), latest first; code lines are not messages."""
    out: list[str] = []
    for line in reversed(log.lines):
        text = line.text.strip().strip("`*> ")
        if 12 <= len(text) <= 400 and _SAYS_ERROR.search(text) and not _CODE_LINE.match(text):
            out.append(text)
            if len(out) == SAID_ERRORS:
                break
    return out


_WARNING_AT = re.compile(r"(\S+\.py):\d+: (?:[A-Za-z_]\w*\.)*[A-Z]\w*Warning: ")


def named_raiser(log: ParsedLog) -> str | None:
    """The library file the paste itself says raised the message, relative to site-packages:
    the final exception's innermost frame (where CPython raised it), or the path in front of
    a warning (`.../peft/tuners/lora.py:475: UserWarning: ...`). None when it names none."""
    from doctor.explainer.cutframes import relative_file

    final = log.final
    if final is not None and final.frames:
        return relative_file(final.frames[-1].file)
    for line in reversed(log.lines[-20:]):
        m = _WARNING_AT.search(line.text)
        if m:
            return relative_file(m.group(1))
    return None


_TYPED_INSIDE = re.compile(r"(?<![A-Za-z.])((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Warning))\s*:\s*(\S.*)")


def _typed_inside(text: str) -> list[tuple[str, str]]:
    """`[Bug] RuntimeError: Unsloth: ...` -> [("RuntimeError", "Unsloth: ...")]: a title or a
    sentence with the error inside it."""
    m = _TYPED_INSIDE.search(text)
    return [(m.group(1), m.group(2).strip())] if m and m.start() > 0 else []


def _promote_causes(diagnoses: list[Diagnosis], kb: Any) -> list[Diagnosis]:
    """A cause printed before the error it leads to ranks above that error.

    "The NVIDIA driver on your system is too old" a few lines above "No NVIDIA GPU found?"
    is the reason for it; the final error alone points away from the cause. The knowledge
    says so with `explains:`; when both matched, the cause takes the effect's score plus a
    step (CAUSE_STEP of the way to 1), unless live facts ruled the cause out."""
    by_id = {d.id: d for d in diagnoses}
    causes: dict[str, tuple[str, ...]] = {}
    effects_of: dict[str, tuple[str, ...]] = {}
    for d in diagnoses:
        entry = kb.get(d.id)
        effects = tuple(e for e in (entry.explains if entry else ()) if e in by_id)
        if effects and d.env != "ruled_out":
            effects_of[d.id] = effects
            for e in effects:
                causes[e] = causes.get(e, ()) + (d.id,)
    out = []
    for d in diagnoses:
        finding = d.finding
        if d.id in effects_of:
            top = max(by_id[e].confidence for e in effects_of[d.id])
            if d.confidence <= top:
                lifted = max(top + (1 - top) * CAUSE_STEP, top + 0.01)   # visibly above it
                finding = replace(finding, confidence=round(min(1.0, lifted), 2))
        elif d.id in causes and d.confidence >= 1.0:
            # an effect already at 1.0 leaves its cause no room above it: it steps down
            finding = replace(finding, confidence=0.99)
        out.append(replace(d, finding=finding, explains=d.explains + effects_of.get(d.id, ()),
                           caused_by=d.caused_by + causes.get(d.id, ())))
    return out


def matchable_lines(log: ParsedLog) -> list[tuple[int, str]]:
    """The cleaned lines, plus each notebook frame rewritten the way CPython prints frames
    (`  File "x.py", line 3, in generate`), so one knowledge pattern fits every shape."""
    out = [(line.no, line.text) for line in log.lines]
    for chain in log.chains:
        for exc in chain.exceptions:
            for f in exc.frames:
                if f.log_line is None:
                    continue
                short = f.function.rsplit(".", 1)[-1]
                out.append((f.log_line, f'  File "{f.file}", line {f.line or 0}, in {short}'))
    out.sort(key=lambda item: item[0])
    return out


def _distinct(ranked: list[Diagnosis]) -> list[Diagnosis]:
    """Drop an entry that nothing in the log tells apart from a better-ranked one: same
    category, same evidence lines, same confidence. It is kept as an alternative."""
    out: list[Diagnosis] = []
    for d in ranked:
        f = d.finding
        lines = {e.line for e in f.evidence if e.kind == "line"}
        twin = next((i for i, g in enumerate(out) if g.finding.category == f.category
                     and g.confidence == d.confidence
                     and {e.line for e in g.finding.evidence if e.kind == "line"} == lines), None)
        if twin is None:
            out.append(d)
        else:
            out[twin] = replace(out[twin], alternatives=out[twin].alternatives + (d.id,))
    return out


def _important_lines(log: ParsedLog) -> tuple[set[int], set[int]]:
    """Lines of the final error (hot) and of the rest of its chain (warm)."""
    hot: set[int] = set()
    warm: set[int] = set()
    final = log.final
    if final is not None:
        hot.update(final.message_lines)
    if log.oom is not None:
        hot.add(log.oom.log_line)
    hot.update(b.log_line for b in log.build_errors)
    if log.primary is not None:
        for exc in log.primary.exceptions:
            warm.update(exc.message_lines)
    return hot, warm - hot


def _echo_lines(log: ParsedLog) -> set[int]:
    """Lines of wrapper chains (ChildFailedError...) other than the primary one."""
    from doctor.explainer.parse import WRAPPER_TYPES

    out: set[int] = set()
    for chain in log.chains:
        if chain is log.primary or chain.final.short_type not in WRAPPER_TYPES:
            continue
        numbers = [n for exc in chain.exceptions
                   for n in (*exc.message_lines, *(f.log_line for f in exc.frames))
                   if n is not None]
        if numbers:   # from its "Traceback" header through the end of its message
            out.update(range(min(numbers) - 1, max(numbers) + 1))
    return out


def _weigh(match: Any, log: ParsedLog, hot: set[int], warm: set[int], echo: set[int],
           facts: Mapping[str, Any] | None) -> Diagnosis:
    from doctor.engine import finding_from_match

    # how much of its line the entry's pattern spans: a few words of a long message are weak
    score = float(match.score) * narrow_factor(coverage(match.entry.symptoms, match.lines))
    lines = {no for no, _ in match.lines}
    on_final = bool(lines & hot)
    if on_final:
        score += (1 - score) * FINAL_PULL
    elif lines & warm:
        score += (1 - score) * CHAIN_PULL
    elif log.final is not None:
        score *= ECHO if lines and lines <= echo else ELSEWHERE
    if not on_final and _severity(match.entry) == "info":
        # a line printed on success (Unsloth's banner, "patched 28 layers") is no cause of the
        # error beside it, nor of a report with no error at all: a lead under the claim line
        score *= INFO_BESIDE_ERROR
    finding = finding_from_match(match, facts)
    env: str | None = None
    env_note: str | None = None
    oom_summary: str | None = None
    # evidence shows the line as pasted (cleaned), not a rewritten notebook frame
    evidence = [replace(e, value=log.line_text(e.line) or e.value) if e.kind == "line" and e.line else e
                for e in finding.evidence]
    entry = match.entry
    if facts is not None and entry.when:
        verdict, used = _check(entry.when, facts)
        shown = ", ".join(f"{k} = {_show(v)}" for k, v in used.items())
        if verdict is True:
            score += (1 - score) * CONFIRMED_PULL
            env, env_note = "confirmed", f"confirmed on this machine: {shown}"
        elif verdict is False:
            score *= RULED_OUT
            env, env_note = "ruled_out", f"ruled out on this machine: {shown}"
        else:
            env = "unknown"
        source = getattr(facts, "source", None)
        evidence += [Evidence("fact", k, v, source(k) if callable(source) else None) for k, v in used.items()]
    fixes = finding.fixes
    if entry.category == "cuda-oom" and log.oom is not None:
        fixes = _oom_fixes(log, fixes)
        oom_summary = oom.summary(log.oom) or None
    finding = replace(finding, confidence=round(min(1.0, score), 2), evidence=tuple(evidence), fixes=fixes)
    return Diagnosis(finding, on_final_error=on_final, env=env, env_note=env_note, oom_summary=oom_summary)


def _severity(entry: Any) -> str:
    sev = getattr(entry, "severity", "")
    return str(getattr(sev, "value", sev))


def _oom_fixes(log: ParsedLog, entry_fixes: tuple[Fix, ...]) -> tuple[Fix, ...]:
    """The numbers-aware OOM steps first; a step the entry already gives is not repeated,
    except ones carrying this log's numbers (keys starting with '='), which replace it."""
    assert log.oom is not None
    steps = oom.keyed_advice(log.oom, log.run)
    text_of = [f"{f.text} {f.command or ''}" for f in entry_fixes]
    mine = [Fix(text=t) for k, t in steps if k.startswith("=") or not any(k in x for x in text_of)]
    replaced = [k[1:] for k, _ in steps if k.startswith("=")]
    kept = tuple(f for f, x in zip(entry_fixes, text_of) if not any(r in x for r in replaced))
    return tuple(mine) + kept


def _check(cond: Mapping[str, Any], facts: Mapping[str, Any]) -> tuple[bool | None, dict[str, Any]]:
    from doctor.engine import evaluate_condition
    from doctor.kb.conditions import Trace, facts_named

    trace = Trace()
    verdict = evaluate_condition(cond, facts, trace)
    used = dict(trace.used)
    for name in facts_named(cond):   # `present: false` holds without reading a value
        if name not in used and name not in facts and "*" not in name:
            used[name] = "(not present)"
    return verdict, used


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def key_frames(log: ParsedLog) -> list[Frame]:
    """The frames that matter: the user's last frame, the library call it made, and where
    the error was raised. Frames come from the final exception, or from the first exception
    of the chain that has any when the final one has none."""
    if log.primary is None:
        return []
    exc = next((e for e in reversed(log.primary.exceptions) if e.frames), None)
    if exc is None:
        return []
    frames = list(exc.frames)
    user_at = max((i for i, f in enumerate(frames) if not f.in_library), default=None)
    picked: list[int] = []
    if user_at is not None:
        picked.append(user_at)
        if user_at + 1 < len(frames):
            picked.append(user_at + 1)
    else:
        picked.append(0)
    if len(frames) - 1 not in picked:
        picked.append(len(frames) - 1)
    return [frames[i] for i in picked]
