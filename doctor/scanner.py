"""`scan`: run the registered probes on each target, then the rule engine, then fixes.

Each probe runs behind a guard (`doctor.probes.guard`): a probe that cannot examine its
target becomes a finding that says why, and the rest of the scan goes on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doctor.engine import evaluate, findings_from_observations
from doctor.errors import PartialReport
from doctor.facts import Facts
from doctor.kb import KnowledgeBase
from doctor.probes import registry
from doctor.probes.base import Probe, ProbeContext, ProbeOptions, ProbeResult, Target
from doctor.findings import Location, Observation
from doctor.probes.guard import guarded
from doctor.probes.settings.cross import cross_target_observations
from doctor.results.words import counted
from doctor.results.report import FixOutcome, Report
from doctor.suppress import LineReader, Policy, apply_policy, drop_commented
from doctor.targets import Targets, project_anchor

if TYPE_CHECKING:
    from doctor.fixes.journal import Transaction


NOTHING_FOUND = "DOCTOR-NOTHING-FOUND"


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
            result = result.merge(run_probe(probe, target, context))
    return result


def run_scan(kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> Report:
    result = probe_all(kb, targets, opts).merge(nothing_found(targets))
    facts = result.facts
    crossed = cross_target_observations(facts)   # a script's settings against the data scanned with it
    findings = evaluate(kb, facts) + findings_from_observations(kb, [*opts.extra, *result.observations, *crossed], facts)
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
    return report


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
        from pathlib import Path

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
    """Every safe fix of the run, in one journal transaction: one `undo` reverts them all."""
    from doctor.fixes.journal import Journal

    scripts, data, configs = targets.of("script"), targets.of("dataset"), targets.of("config")
    with Journal().transaction(f"scan --fix {' '.join(targets.projects or targets.names())}") as tx:
        outcomes = apply_script_fixes(scripts, opts, tx) + apply_config_fixes(configs, opts, tx)
        dataset_outcomes = apply_dataset_fixes(data, opts, tx)
    if outcomes:
        # report what is left after the fixes, as a re-run would; only scripts and configs changed
        context = ProbeContext(kb, options_for(ProbeOptions, opts))
        after = ProbeResult()
        for probe, paths in (("script", scripts), ("config", configs)):
            for path in paths:
                after = after.merge(run_probe(registry.get(probe), Target(probe, path), context))
        report.findings = [f for f in report.findings if f.area not in ("script", "config")] + \
            findings_from_observations(kb, after.observations, report.facts)
        report.areas = [a for a in report.areas if a.area not in ("script", "config")] + after.areas
        report.notes.append("'unsloth-doctor undo' restores the files as they were.")
    report.fixes += outcomes + dataset_outcomes


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


EXAMPLES = {"doctor.folder": _folder_example}
