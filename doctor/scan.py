"""`scan`: run the registered probes on each target, then the rule engine, then fixes.

Each probe runs behind a guard: a probe that crashes becomes a finding that says so, and
the rest of the scan goes on (flutter doctor's per-validator guard).
"""
from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from doctor.engine import evaluate, findings_from_observations
from doctor.facts import Facts
from doctor.findings import AreaStatus, Evidence, Observation
from doctor.kb import KnowledgeBase
from doctor.probes import registry
from doctor.probes.base import Probe, ProbeContext, ProbeOptions, ProbeResult, Target
from doctor.results.report import FixOutcome, Report
from doctor.targets import Targets, project_anchor

if TYPE_CHECKING:
    from doctor.fixes.journal import Transaction


@dataclass
class ScanOptions(ProbeOptions):
    smoke: bool = False
    fix: bool = False
    unsafe_fixes: bool = False
    in_place: bool = False
    distributed: ProbeResult | None = None   # scan --distributed: what every rank gathered


def guarded(label: str, area: str, fn: Callable[[], ProbeResult]) -> ProbeResult:
    try:
        return fn()
    except ImportError as exc:
        # a probe whose optional dependency is missing says so instead of failing
        return ProbeResult(areas=[AreaStatus(area, label, f"skipped: {exc}", ran=False)])
    except Exception as exc:  # noqa: BLE001 - the guard exists to contain anything
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        return ProbeResult(
            observations=[Observation("DOCTOR-PROBE-CRASHED", values={"probe": label, "error": f"{type(exc).__name__}: {exc}"},
                                      evidence=(Evidence("observation", "traceback", tail.strip()),))],
            areas=[AreaStatus(area, label, "probe failed")],
        )


def _crash_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: a probe that raises the example's text must come back as a finding."""
    def probe() -> ProbeResult:
        if text:
            raise RuntimeError(text)
        return ProbeResult()
    return guarded("example", "env", probe).observations


EXAMPLES = {"doctor.crash": _crash_example}


def options_for(cls: type, opts: Any) -> Any:
    """Build an options dataclass from the fields of `opts` it shares names with."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.name in names}
    return cls(**values)


def run_probe(probe: Probe, target: Target, context: ProbeContext) -> ProbeResult:
    label = probe.label if target.path is None else f"{probe.label} {target.path}"
    return guarded(label, probe.area, lambda: probe.run(target, context))


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
    result = probe_all(kb, targets, opts)
    facts = result.facts
    findings = evaluate(kb, facts) + findings_from_observations(kb, result.observations, facts)
    report = Report(command="scan", findings=findings, areas=result.areas, facts=dict(facts),
                    targets=targets.names(), anchor_file=project_anchor(targets))
    if opts.fix:
        apply_fixes(report, kb, targets, opts)
    if opts.smoke:
        add_smoke(report, kb, facts, opts)
    return report


def apply_fixes(report: Report, kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> None:
    """Every safe fix of the run, in one journal transaction: one `undo` reverts them all."""
    from doctor.fixes.journal import Journal

    scripts, data = targets.of("script"), targets.of("dataset")
    with Journal().transaction(f"scan --fix {' '.join(targets.projects or targets.names())}") as tx:
        outcomes = apply_script_fixes(scripts, opts, tx)
        dataset_outcomes = apply_dataset_fixes(data, opts, tx)
    if outcomes:
        # report what is left after the fixes, as a re-run would; only the scripts changed
        context = ProbeContext(kb, options_for(ProbeOptions, opts))
        after = ProbeResult()
        for path in scripts:
            after = after.merge(run_probe(registry.get("script"), Target("script", path), context))
        report.findings = [f for f in report.findings if f.area != "script"] + \
            findings_from_observations(kb, after.observations, report.facts)
        report.areas = [a for a in report.areas if a.area != "script"] + after.areas
        report.notes.append("'unsloth-doctor undo' restores the files as they were.")
    report.fixes += outcomes + dataset_outcomes


def apply_script_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[FixOutcome]:
    if not paths:
        return []
    from doctor.fixes.apply import apply_fixes as apply_edits
    from doctor.probes.script import read_source, scan_source

    return apply_edits(paths, lambda p: scan_source(read_source(p)), opts.unsafe_fixes,
                       f"scan --fix {' '.join(paths)}", tx=tx)


def apply_dataset_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[FixOutcome]:
    from doctor.fixes.dataset import RepairError, RepairOptions, repair_dataset

    outcomes = []
    for path in paths:
        try:
            summary = repair_dataset(path, options_for(RepairOptions, opts), tx=tx, run_inputs=paths)
        except RepairError as exc:
            outcomes.append(FixOutcome(path, f"{path}: not repaired: {exc}", applied=False))
            continue
        outcomes.append(summary.outcome())
    return outcomes


def add_smoke(report: Report, kb: KnowledgeBase, facts: Facts | dict[str, Any], opts: ScanOptions) -> None:
    from doctor.smoke.runner import SmokeOptions, run_smoke

    smoke = run_smoke(options_for(SmokeOptions, opts), kb)
    report.smoke = smoke
    report.findings += findings_from_observations(kb, smoke.observations, facts)
