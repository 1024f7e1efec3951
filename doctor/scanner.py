"""`scan`: run the registered probes on each target, then the rule engine, then fixes.

Each probe runs behind a guard (`doctor.probes.guard`): a probe that cannot examine its
target becomes a finding that says why, and the rest of the scan goes on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doctor import progress
from doctor.engine import evaluate, findings_from_observations
from doctor.errors import PartialReport
from doctor.facts import Facts
from doctor.kb import KnowledgeBase
from doctor.probes import registry, runmemory
from doctor.probes.base import Probe, ProbeContext, ProbeOptions, ProbeResult, Target
from doctor.findings import Finding, Location, Observation
from doctor.probes.guard import guarded
from doctor.probes.settings.cross import cross_target_observations
from doctor.results.words import counted
from doctor.results.report import FixOutcome, Report
from doctor.suppress import LineReader, Policy, apply_policy, drop_commented
from doctor.targets import Targets, project_anchor

if TYPE_CHECKING:
    from doctor.fixes.journal import Transaction


NOTHING_FOUND = "DOCTOR-NOTHING-FOUND"
COPY_UNLOADABLE = "DATA-REPAIRED-COPY-UNLOADABLE"


@dataclass
class ScanOptions(ProbeOptions):
    smoke: bool = False
    fix: bool = False
    unsafe_fixes: bool = False
    in_place: bool = False
    distributed: ProbeResult | None = None   # scan --distributed: what every rank gathered
    policy: Policy | None = None             # the project's select/ignore/severity
    baseline: str | None = None              # a baseline file: its findings are not reported
    extra: list[Observation] = dataclasses.field(default_factory=list)   # the configuration's own


def options_for(cls: type, opts: Any) -> Any:
    """Build an options dataclass from the fields of `opts` it shares names with."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.name in names}
    return cls(**values)


def run_probe(probe: Probe, target: Target, context: ProbeContext) -> ProbeResult:
    label = probe.label if target.path is None else f"{probe.label} {target.path}"
    return guarded(label, probe.area, lambda: probe.run(target, context), target.path)


def probe_all(kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> ProbeResult:
    context = ProbeContext(kb, options_for(ProbeOptions, opts))
    result = opts.distributed or ProbeResult()   # scan --distributed: gathered from every rank
    for probe in registry.probes():
        if probe.suffixes or probe.folder:
            chosen = [t for t in targets.items if t.probe == probe.name]
        else:
            chosen = [Target(probe.name)] if targets.env else []
        for target in chosen:
            with progress.stage(f"checking {_noun(probe.label)}" + (f" {target.path}" if target.path else "")):
                result = result.merge(run_probe(probe, target, context))
    return result


def _noun(label: str) -> str:
    """'Dataset' -> 'dataset' inside a sentence; an acronym ('GGUF') stays."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def run_scan(kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> Report:
    # on a terminal, a sign of life for every step that may take a while; nothing in a pipe
    with progress.session(opts.progress):
        return _run_scan(kb, targets, opts)


def _run_scan(kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> Report:
    result = probe_all(kb, targets, opts).merge(nothing_found(targets))
    facts = result.facts
    # checks that need two targets of the scan (a run's settings and the GPU; a script's settings
    # and the data or model scanned with it) read the merged facts
    across = [*runmemory.memory_observations(facts), *cross_target_observations(facts)]
    findings = evaluate(kb, facts) + findings_from_observations(kb, [*opts.extra, *result.observations, *across],
                                                                facts)
    findings = fit_commands(findings, facts)
    report = Report(command="scan", findings=findings, areas=result.areas, facts=dict(facts),
                    targets=targets.names(), anchor_file=project_anchor(targets),
                    headings=registry.headings(), skipped=dict(targets.skipped))
    try:
        if opts.fix:
            apply_fixes(report, kb, targets, opts)
        if opts.smoke:
            add_smoke(report, kb, facts, opts)
    except Exception as exc:  # a bug of ours: keep what was found for the crash report
        raise PartialReport(report) from exc
    select_findings(report, opts)
    report.lead += lead_lines(report.findings)
    return report


# Findings that change how the rest of the report reads: said on its first line.
LEAD_IDS = ("ENV-DOCTOR-OWN-PYTHON",)


def lead_lines(findings: list[Finding]) -> list[str]:
    lines = []
    for finding in findings:
        if finding.id in LEAD_IDS:
            command = next((fix.command for fix in finding.fixes if fix.command), None)
            lines.append(f"{finding.title}; check that one: {command}" if command else finding.title)
    return lines


def fit_commands(findings: list[Finding], facts: Any) -> list[Finding]:
    """Install commands as they must be typed on the scanned machine (see doctor.fixes.commands)."""
    import sys

    from doctor.fixes.commands import Machine, doctor_source, fit_findings

    return fit_findings(findings, Machine.from_facts(facts, sys.executable, doctor_source()))


def select_findings(report: Report, opts: ScanOptions) -> None:
    """Apply the project's wishes once the findings exist (they have locations): comments on
    their lines, select/ignore/severity, then the baseline."""
    reader = LineReader()
    report.findings, commented = drop_commented(report.findings, reader)
    if opts.policy is not None:
        report.findings = apply_policy(report.findings, opts.policy)
    if commented:
        report.notes.append(f"{counted(commented, 'finding')} silenced by '# unsloth-doctor: ignore' comments.")
    if opts.baseline:
        from doctor.baseline import drop_baselined

        report.findings, known = drop_baselined(report.findings, Path(opts.baseline))
        report.notes.append(f"{counted(known, 'finding')} already in the baseline {opts.baseline} not reported.")


def nothing_found(targets: Targets) -> ProbeResult:
    """A folder that holds nothing a probe reads was not checked: say so, never "no issues"."""
    if not targets.projects or targets.items:
        return ProbeResult()
    skipped = sum(targets.skipped.values())
    kinds = ", ".join(registry.file_suffixes())
    return ProbeResult(observations=[
        Observation(NOTHING_FOUND, Location(folder), {"folder": folder, "skipped": skipped, "kinds": kinds})
        for folder in targets.projects])


def apply_fixes(report: Report, kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> None:
    """Every safe fix of the run, in one journal transaction: one `undo` reverts them all.
    What is left is re-checked on the files as they are now (the edited scripts, the repaired
    dataset copies), and each repaired copy is loaded as training will read it."""
    from doctor.fixes.journal import Journal

    scripts, data, configs = targets.of("script"), targets.of("dataset"), targets.of("config")
    with Journal().transaction(f"scan --fix {' '.join(targets.projects or targets.names())}") as tx:
        outcomes = apply_script_fixes(scripts, opts, tx) + apply_config_fixes(configs, opts, tx)
        dataset_outcomes = apply_dataset_fixes(data, opts, tx)
        model_outcomes = apply_model_fixes(targets.of("model"), opts, tx)
    # scripts and configs edited in place are re-checked as they are; datasets as their repaired copy
    rechecked = {p: (probe, p) for probe, paths in (("script", scripts), ("config", configs)) for p in paths} \
        if outcomes else {}
    rechecked.update({o.path: ("dataset", o.outputs[0]) for o in dataset_outcomes if o.applied and o.outputs})
    if any(o.applied for o in model_outcomes):   # repaired model folders, as they are now
        rechecked.update({p: ("model", p) for p in targets.of("model")})
    fixed = 0
    if rechecked:
        fixed = recheck(report, kb, rechecked, opts)
        report.notes.append("'unsloth-doctor undo' restores the files as they were.")
    loaded = [_loaded(o) for o in dataset_outcomes]
    unloadable = [obs for _, found in loaded for obs in found]
    report.findings += findings_from_observations(kb, unloadable, report.facts)
    report.fixes += outcomes + [outcome for outcome, _ in loaded] + model_outcomes
    if rechecked:
        report.fixed = fixed
        report.notes.insert(0, f"--fix: {fixed} fixed, {len(report.findings)} remaining "
                               "(re-checked on the files as they are now).")


def recheck(report: Report, kb: KnowledgeBase, files: dict[str, tuple[str, str]], opts: ScanOptions) -> int:
    """Replace what was found in each input by what its fixed file holds now (`files`: input
    -> the probe that read it and the file to train on: the edited script, the repaired copy).
    Returns how many fewer findings those files hold now: the number fixed."""
    context = ProbeContext(kb, options_for(ProbeOptions, opts))
    after = ProbeResult()
    for probe_name, now in files.values():
        with progress.stage(f"re-checking {now}"):
            after = after.merge(run_probe(registry.get(probe_name), Target(probe_name, now), context))
    inputs = [status for status in report.areas if status.path in files]
    gone = [f for f in report.findings if any(status.holds_file(f) for status in inputs)]
    now = fit_commands(findings_from_observations(kb, after.observations, report.facts), report.facts)
    report.findings = [f for f in report.findings if f not in gone] + now
    report.areas = [a for a in report.areas if a.path not in files] + after.areas
    return max(0, len(gone) - len(now))


def _loaded(outcome: FixOutcome) -> tuple[FixOutcome, list[Observation]]:
    """A repaired copy, loaded with the reader training uses: the verdict joins the outcome,
    and a copy that still fails to load is a finding."""
    if not (outcome.applied and outcome.outputs):
        return outcome, []
    copy = outcome.outputs[0]
    check, observations = load_copy(copy)
    return dataclasses.replace(outcome, details=(*outcome.details, check.line(copy))), observations


def load_copy(copy: str) -> tuple[Any, list[Observation]]:
    from doctor.fixes.loadcheck import load_like_training
    from doctor.probes.dataset.reader import kind_of

    with progress.stage(f"loading {copy} as training reads it"):
        check = load_like_training(copy, kind_of(copy))
    if check.ok is not False:
        return check, []
    import re

    line = re.search(r"on line (\d+)", check.detail)
    where = Location(copy, int(line.group(1))) if line else Location(copy)
    return check, [Observation(COPY_UNLOADABLE, where, {"path": copy, "detail": check.detail})]


def apply_model_fixes(paths: list[str], opts: ScanOptions, tx: Transaction) -> list[FixOutcome]:
    from doctor.fixes.model import repair_model
    from doctor.probes.model import scan_model

    outcomes: list[FixOutcome] = []
    for path in paths:
        try:
            outcomes += repair_model(path, lambda p=path: scan_model(p, opts.base).observations, opts.unsafe_fixes,
                                     tx, python=opts.python, timeout=max(opts.timeout, 600))
        except OSError as exc:
            outcomes.append(_not_written(path, exc))
    return outcomes


def apply_script_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[FixOutcome]:
    if not paths:
        return []
    from doctor.probes.script import read_source, scan_source

    return _apply_edits(paths, lambda p: scan_source(read_source(p)), opts, tx)


def apply_config_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[FixOutcome]:
    if not paths:
        return []
    from doctor.probes.config import config_observations

    return _apply_edits(paths, config_observations, opts, tx)


def _apply_edits(paths: list[str], rescan: Any, opts: ScanOptions, tx: Transaction | None) -> list[FixOutcome]:
    from doctor.fixes.apply import apply_fixes as apply_edits

    outcomes: list[FixOutcome] = []
    for path in paths:   # one file that cannot be written does not stop the others
        try:
            outcomes += apply_edits([path], rescan, opts.unsafe_fixes, f"scan --fix {path}", tx=tx)
        except OSError as exc:
            outcomes.append(_not_written(path, exc))
    return outcomes


def _not_written(path: str, exc: OSError) -> FixOutcome:
    where = exc.filename or path
    return FixOutcome(path, f"{path}: not fixed: cannot write {where}: {exc.strerror or exc}", applied=False)


def apply_dataset_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[FixOutcome]:
    from doctor.fixes.dataset import RepairError, RepairOptions, repair_dataset

    outcomes = []
    for path in paths:
        try:
            with progress.stage(f"repairing {path}"):
                summary = repair_dataset(path, options_for(RepairOptions, opts), tx=tx, run_inputs=paths)
        except RepairError as exc:
            outcomes.append(FixOutcome(path, f"{path}: not repaired: {exc}", applied=False))
            continue
        except OSError as exc:   # an unwritable folder: the input is untouched, the run goes on
            outcomes.append(_not_written(path, exc))
            continue
        outcomes.append(summary.outcome())
    return outcomes


def add_smoke(report: Report, kb: KnowledgeBase, facts: Facts | dict[str, Any], opts: ScanOptions) -> None:
    from doctor.smoketest.runner import SmokeOptions, run_smoke

    smoke = run_smoke(options_for(SmokeOptions, opts), kb)
    report.smoke = smoke
    report.findings += findings_from_observations(kb, smoke.observations, facts)


def _folder_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: a folder holding the files named in the example (one per line)."""
    import tempfile
    from pathlib import Path

    from doctor.targets import discover_project

    with tempfile.TemporaryDirectory() as tmp:
        for name in filter(None, text.splitlines()):
            (Path(tmp) / name).write_text("{}\n")
        return nothing_found(discover_project(Path(tmp))).observations


def _load_copy_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: a repaired JSON Lines copy holding these lines, loaded as training would."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "train.fixed.jsonl"
        copy.write_text(text)
        return load_copy(str(copy))[1]


EXAMPLES = {"doctor.folder": _folder_example, "fixes.load_copy": _load_copy_example}
