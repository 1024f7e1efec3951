"""`scan`: run the probes for each target, then the rule engine, then (optionally) fixes.

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
from doctor.probes.base import ProbeResult, example_runner
from doctor.report.model import Report
from doctor.targets import Targets

if TYPE_CHECKING:
    from doctor.fixes.journal import Transaction


@dataclass
class ScanOptions:
    deep: bool = False
    smoke: bool = False
    fix: bool = False
    unsafe_fixes: bool = False
    in_place: bool = False
    tokenizer: str | None = None
    max_seq_length: int | None = None
    response_part: str | None = None
    jobs: int = 1
    progress: bool = False
    timeout: float = 120.0
    python: str | None = None           # examine this interpreter's environment instead of ours
    extra: dict[str, Any] = field(default_factory=dict)


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


@example_runner("doctor.crash")
def _crash_example(text: str, options: dict[str, Any]) -> list[Observation]:
    """kb test: a probe that raises the example's text must come back as a finding."""
    def probe() -> ProbeResult:
        if text:
            raise RuntimeError(text)
        return ProbeResult()
    return guarded("example", "env", probe).observations


def _options_for(cls: type, opts: ScanOptions) -> Any:
    """Build a probe's own options dataclass from the scan options it shares names with."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dataclasses.asdict(opts).items() if k in names}
    return cls(**values)


def probe_environment(opts: ScanOptions) -> ProbeResult:
    from doctor.probes.env import collect_environment

    result = collect_environment(python=opts.python)
    if opts.deep:
        from doctor.probes.deep import run_deep_probe

        kwargs = {"python": opts.python} if opts.python else {}
        # the deep probe reuses these facts instead of scanning the environment again
        result = result.merge(run_deep_probe(timeout_s=opts.timeout, static_facts=result.facts, **kwargs))
    return result


def probe_dataset(path: str, opts: ScanOptions) -> ProbeResult:
    from doctor.probes.dataset import DatasetOptions, scan_dataset

    return scan_dataset(path, _options_for(DatasetOptions, opts))


def scan_scripts(paths: list[str]) -> ProbeResult:
    from doctor.probes.script import scan_script

    result = ProbeResult()
    for path in paths:
        result = result.merge(guarded(f"Script {path}", "script", lambda p=path: scan_script(p)))
    return result


def probe_config(path: str) -> ProbeResult:
    from doctor.probes.config import scan_config

    return scan_config(path)


def probe_model(path: str) -> ProbeResult:
    from doctor.probes.model import scan_model

    return scan_model(path)


def run_scan(kb: KnowledgeBase, targets: Targets, opts: ScanOptions) -> Report:
    result = opts.extra.get("distributed") or ProbeResult()   # scan --distributed: gathered from every rank
    if targets.env:
        result = result.merge(guarded("Environment", "env", lambda: probe_environment(opts)))
    for path in targets.data:
        result = result.merge(guarded(f"Dataset {path}", "dataset", lambda p=path: probe_dataset(p, opts)))
    result = result.merge(scan_scripts(targets.scripts))
    for path in targets.configs:
        result = result.merge(guarded(f"Config {path}", "config", lambda p=path: probe_config(p)))
    for path in targets.models:
        result = result.merge(guarded(f"Model {path}", "model", lambda p=path: probe_model(p)))
    facts = result.facts
    findings = evaluate(kb, facts) + findings_from_observations(kb, result.observations, facts)
    report = Report(command="scan", findings=findings, areas=result.areas, facts=dict(facts),
                    targets=targets.names())
    if opts.fix:
        from doctor.fixes.journal import Journal

        # one transaction for the whole run, so one `undo` reverts every file it wrote
        with Journal().transaction(f"scan --fix {' '.join(targets.projects or targets.names())}") as tx:
            applied = apply_script_fixes(targets.scripts, opts, tx)
            if applied:
                # report what is left after the fixes, as a re-run would; only the scripts changed
                after = scan_scripts(targets.scripts)
                report.findings = [f for f in report.findings if f.area != "script"] + \
                    findings_from_observations(kb, after.observations, facts)
                report.areas = [a for a in report.areas if a.area != "script"] + after.areas
                report.notes += applied + ["'unsloth-doctor undo' restores the files as they were."]
            if targets.data:
                report.notes += apply_dataset_fixes(targets.data, opts, tx)
    if opts.smoke:
        add_smoke(report, kb, facts, opts)
    return report


def apply_script_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[str]:
    if not paths:
        return []
    from doctor.fixes.apply import apply_fixes
    from doctor.probes.script import read_source, scan_source

    return apply_fixes(paths, lambda p: scan_source(read_source(p)), opts.unsafe_fixes,
                       f"scan --fix {' '.join(paths)}", tx=tx)


def apply_dataset_fixes(paths: list[str], opts: ScanOptions, tx: Transaction | None = None) -> list[str]:
    from doctor.fixes.dataset import RepairError, RepairOptions, repair_dataset

    notes = []
    for path in paths:
        try:
            summary = repair_dataset(path, _options_for(RepairOptions, opts), tx=tx, run_inputs=paths)
        except RepairError as exc:
            notes.append(f"{path}: not repaired: {exc}")
            continue
        notes.append(str(summary))
    return notes


def add_smoke(report: Report, kb: KnowledgeBase, facts: Facts | dict[str, Any], opts: ScanOptions) -> None:
    from doctor.smoke.runner import SmokeOptions, run_smoke

    smoke = run_smoke(_options_for(SmokeOptions, opts))
    report.sections["smoke"] = smoke
    report.findings += findings_from_observations(kb, getattr(smoke, "observations", []), facts)
