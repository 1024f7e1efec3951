"""The parent side of the smoke test: start the child, enforce the timeout, read its results.

The doctor process never imports torch or unsloth: the child does (`doctor.smoketest.child`), and
reports stages as JSON lines in a result file. Its stdout/stderr is kept as the log, read for
Unsloth's banners and warnings, and handed to the explain engine when a stage fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from doctor import progress
from doctor.errors import UsageError
from doctor.findings import Location, Observation
from doctor.interrupts import deferred, end_process_group
from doctor.probes.child_python import absolute_python, with_doctor_code
from doctor.smoketest import estimate as est
from doctor.smoketest.logscan import banner_facts, warning_lines
from doctor.results.smoke import LoggedWarning, SmokeReport, Stage

_STAGE_MARK = "[doctor-smoke] stage "
MIN_FINDING_SCORE = 0.5


@dataclass
class SmokeOptions:
    model: str | None = None          # the user's local model folder; None = the tiny built model
    max_seq_length: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    force: bool = False               # run even when the VRAM estimate says it won't fit
    timeout: float = 600.0
    python: str | None = None         # interpreter for the child (default: this one)
    keep: str | None = None           # keep the work folder here instead of a temp folder

    def __post_init__(self) -> None:
        for name in ("max_seq_length", "batch_size", "steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SmokeOptionError(f"--{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}")
        if not self.timeout or self.timeout <= 0:
            raise SmokeOptionError(f"--timeout must be a positive number of seconds, not {self.timeout!r}")


class SmokeOptionError(UsageError):
    """A smoke option out of range; the CLI shows it as a usage error."""


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Offline, unbuffered, and able to import this `doctor` package (and nothing else of ours)."""
    env = with_doctor_code(dict(os.environ if base is None else base))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_TELEMETRY="1")
    # OpenMP threads that spin while waiting make CPU training 5-10x slower as soon as any
    # other process wants a core (measured on 2 cores: 8.2 s -> 1.5 s for the train stage).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def unsloth_importable(python: str | None = None, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether the child interpreter can find unsloth (without importing it: that takes 20 s+)."""
    code = ("import importlib.util as u,sys; m=[n for n in ('torch','unsloth','unsloth_zoo','trl','transformers',"
            "'peft','datasets') if u.find_spec(n) is None]; print(','.join(m)); sys.exit(1 if m else 0)")
    try:
        done = subprocess.run([absolute_python(python or sys.executable), "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=child_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot run {python or sys.executable}: {exc}"
    if done.returncode != 0:
        return False, f"not importable in the child: {done.stdout.strip() or done.stderr.strip()[-200:]}"
    return True, ""


def read_events(path: Path) -> list[dict[str, Any]]:
    """The child's JSON lines; a half-written last line (a killed child) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def last_started_stage(log: str) -> str | None:
    starts = [ln.split(_STAGE_MARK, 1)[1].split()[0] for ln in log.splitlines() if _STAGE_MARK in ln]
    return starts[-1] if starts else None


def apply_events(report: SmokeReport, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill stages and facts; returns the stage events that failed (with tracebacks)."""
    failed = []
    for e in events:
        kind = e.get("type")
        if kind == "fact":
            report.facts[str(e.get("name"))] = e.get("value")
        elif kind == "stage":
            report.stages.append(Stage(name=str(e.get("name")), seconds=float(e.get("seconds") or 0.0),
                                       ok=bool(e.get("ok")), detail=str(e.get("detail") or ""),
                                       skipped=bool(e.get("skipped"))))
            if not e.get("ok"):
                failed.append(e)
            if e.get("name") == "load_4bit":
                report.facts["smoke.load_4bit"] = ("skipped: " + str(e.get("detail"))) if e.get("skipped") \
                    else ("ok: " + str(e.get("detail")) if e.get("ok") else "failed")
        elif kind == "done":
            report.facts["smoke.completed"] = bool(e.get("ok"))
        elif kind == "note":
            report.notes.append(str(e.get("detail")))
    return failed


def run_child(spec: dict[str, Any], work: Path, python: str | None, timeout: float) -> tuple[int | None, str, list[dict[str, Any]], float]:
    """(exit code or None on timeout, log text, events, seconds).

    The child runs in a session of its own (the terminal's Ctrl-C never reaches it): at the
    timeout, or when we are interrupted, its whole process group is killed here."""
    spec_path, result_path, log_path = work / "spec.json", work / "result.jsonl", work / "child.log"
    spec_path.write_text(json.dumps(spec))
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        # cwd=work: Unsloth writes its compiled cache (unsloth_compiled_cache/) into the cwd.
        # an absolute interpreter path: a relative one would be looked up from cwd=work
        python = absolute_python(python or sys.executable)
        proc = None
        code: int | None = None
        try:
            with deferred():   # a signal now would leave a started child unrecorded
                proc = subprocess.Popen([python, "-m", "doctor.smoketest.child", str(spec_path), str(result_path)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=str(work), env=child_env(), start_new_session=True)
            code = _wait_showing_stages(proc, log_path, timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc is not None and code is None:   # timed out, or we were interrupted
                end_process_group(proc)
    seconds = time.perf_counter() - start
    return code, log_path.read_text(encoding="utf-8", errors="replace"), read_events(result_path), seconds


def _wait_showing_stages(proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> int:
    """proc.wait(timeout), naming on a terminal the stage the child has started."""
    if not progress.active():
        return proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    with progress.stage("smoke test: starting the child process") as rename:
        while True:
            try:
                return proc.wait(timeout=max(0.0, min(0.25, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            stage = last_started_stage(_log_tail(log_path))
            if stage:
                rename(f"smoke test: {stage.replace('_', ' ')}")


def _log_tail(path: Path, size: int = 64 << 10) -> str:
    """The end of the child's log, where its latest stage marker is (Unsloth prints a lot before)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def map_warnings(report: SmokeReport, log: str, kb: Any) -> None:
    """Each warning line, with the knowledge entries whose symptoms match it."""
    by_line: dict[int, list[str]] = {}
    if kb is not None:
        from doctor.engine import observations_from_output

        # Only confident matches become findings (a weak symptom such as "Bfloat16 = FALSE"
        # also appears in normal banners); observed entries come from `interpret`.
        matched = observations_from_output(kb, log, source="log", min_score=MIN_FINDING_SCORE,
                                           keep=lambda entry: not entry.observed, max_lines=3)
        report.observations += matched.observations
        by_line = matched.entries_by_line
    lines = dict(warning_lines(log))
    for no in by_line:  # matched lines that our warning filter did not pick up still count
        if no not in lines:
            lines[no] = log.splitlines()[no - 1].strip()
    report.warnings = [LoggedWarning(no, text, sorted(set(by_line.get(no, [])))) for no, text in sorted(lines.items())]


def diagnose_failure(report: SmokeReport, text: str, kb: Any) -> None:
    """Explain a failing stage with the same engine as `explain`."""
    if kb is None:
        return
    try:
        from doctor.explainer import diagnose
        result = diagnose(text, kb, report.facts)
        # a lead by wording is no diagnosis of a stage's own output
        findings = [d.finding for d in result.diagnoses if not d.by_wording]
    except ImportError:
        from doctor.engine import finding_from_match, match_text
        findings = [finding_from_match(m) for m in match_text(kb, text)[:3]]
    report.diagnoses = list(findings[:3])


def fit_check(config: Mapping[str, Any], tensors: Mapping[str, Any], memory_mib: float | None, batch: int,
              seq: int, where: str) -> tuple[est.Estimate, Observation | None]:
    """The estimate, and a SMOKE-WONT-FIT observation when it exceeds the GPU's memory."""
    e = est.estimate(config, tensors, batch=batch, seq=seq)
    if memory_mib is None or est.fits(e, memory_mib):
        return e, None
    return e, Observation("SMOKE-WONT-FIT", Location(where), {
        "estimate": est.describe(e, memory_mib), "total_mib": round(e.total_mib), "memory_mib": round(memory_mib),
        "batch": batch, "seq": seq})


def has_tokenizer(report: SmokeReport, options: SmokeOptions) -> bool:
    """For --model: a folder without tokenizer files fails at from_pretrained's tokenizer
    ("Can't load tokenizer"), which reads like a transformers problem; name the real cause
    before starting the child, as `scan --model` does (unless --force)."""
    from doctor.probes.model import TOKENIZER_FILES

    folder = Path(options.model or "")
    if options.force or not folder.is_dir() or not (folder / "config.json").is_file() \
            or (folder / "adapter_config.json").is_file():   # an adapter takes its base model's tokenizer
        return True
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        return True
    report.refused = True
    report.observations.append(Observation("MODEL-NO-TOKENIZER", Location(str(folder / "config.json"), 1, 1),
                                           {"kind": "model"}))
    report.stages.append(Stage("load", 0.0, False, f"no tokenizer files in {folder} ({', '.join(TOKENIZER_FILES)})"))
    return False


def check_fits(report: SmokeReport, options: SmokeOptions, facts_provider: Callable[[], Mapping[str, Any]]) -> bool:
    """For --model: estimate VRAM and refuse (with the numbers) when it would not fit."""
    folder = Path(options.model or "")
    memory = est.gpu_memory_mib(facts_provider())
    try:
        config, tensors = est.read_folder(folder)
        e, obs = fit_check(config, tensors, memory, options.batch_size or 1, options.max_seq_length or 2048, str(folder))
    except est.EstimateError as exc:
        report.refused = not options.force
        report.observations.append(Observation("SMOKE-MODEL-UNREADABLE", Location(str(folder)), {"reason": str(exc)}))
        return options.force
    report.facts.update(e.as_facts())
    report.facts.update({"smoke.estimate.gpu_memory_mib": memory, "smoke.estimate.model": str(folder),
                         "smoke.estimate.batch": options.batch_size or 1, "smoke.estimate.seq": options.max_seq_length or 2048})
    report.notes.append("VRAM estimate: " + est.describe(e, memory))
    if obs is None:
        return True
    report.observations.append(obs)
    report.refused = not options.force
    return options.force


def _gpu_facts() -> Mapping[str, Any]:
    from doctor.probes.gpu import collect_gpu
    from doctor.probes.system import SystemView
    return collect_gpu(SystemView.live())


def run_smoke(options: SmokeOptions, kb: Any | None = None,
              facts_provider: Callable[[], Mapping[str, Any]] | None = None) -> SmokeReport:
    report = SmokeReport()
    started = time.perf_counter()
    if options.model and (not check_fits(report, options, facts_provider or _gpu_facts)
                          or not has_tokenizer(report, options)):
        report.seconds = time.perf_counter() - started
        return report
    spec: dict[str, Any] = {"model": str(Path(options.model).resolve()) if options.model else None}
    for key in ("max_seq_length", "batch_size", "steps"):
        if getattr(options, key):
            spec[key] = getattr(options, key)
    if options.model:
        spec.setdefault("steps", 2)
        spec.setdefault("batch_size", 1)
        spec.setdefault("max_seq_length", 2048)
    with tempfile.TemporaryDirectory(prefix="doctor-smoke-") as tmp:
        work = Path(options.keep) if options.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        spec["workdir"] = str(work / "run")
        code, log, events, _ = run_child(spec, work, options.python, options.timeout)
    interpret(report, code, log, events, options.timeout, kb)
    report.seconds = time.perf_counter() - started
    report.facts["smoke.seconds_total"] = round(report.seconds, 2)
    report.facts["smoke.seconds_startup"] = round(report.seconds - sum(s.seconds for s in report.stages), 2)
    return report


def interpret(report: SmokeReport, code: int | None, log: str, events: list[dict[str, Any]], timeout: float,
              kb: Any | None) -> SmokeReport:
    """Turn what the child wrote and printed into stages, facts and observations."""
    failed = apply_events(report, events)
    report.facts.update(banner_facts(log))
    if "smoke.attention" not in report.facts and report.facts.get("smoke.attn_implementation"):
        # No Unsloth banner (the CPU path): transformers' own choice is what ran.
        report.facts["smoke.attention"] = str(report.facts["smoke.attn_implementation"]).upper()
    report.log_tail = log[-4000:]
    map_warnings(report, log, kb)
    if code is None:
        report.timed_out = True
        stage = last_started_stage(log) or "start"
        report.stages.append(Stage(stage, 0.0, False, f"timed out after {timeout:g} s"))
        report.observations.append(Observation("SMOKE-TIMEOUT", values={"stage": stage, "timeout": timeout}))
    elif not failed and report.facts.get("smoke.completed") is not True:
        # The child died without reporting (segfault, OOM killer, os._exit).
        stage = last_started_stage(log) or "start"
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        report.stages.append(Stage(stage, 0.0, False, f"the child process ended with {how} and no result"))
        report.observations.append(Observation("SMOKE-CHILD-CRASHED", values={"stage": stage, "how": how}))
        diagnose_failure(report, log[-20000:], kb)
    for f in failed[:1]:
        report.observations.append(Observation("SMOKE-STAGE-FAILED", values={
            "stage": f.get("name"), "detail": str(f.get("detail"))[:500]}))
        diagnose_failure(report, (log[-20000:] + "\n" + (f.get("traceback") or "")), kb)
    if report.facts.get("smoke.device") == "cpu" and report.ok:
        report.observations.append(Observation("SMOKE-CPU-ONLY", values={
            "unsloth": report.facts.get("smoke.unsloth_version")}))
    if report.facts.get("smoke.logit_max_abs_diff") is not None and report.facts.get("smoke.merged_auto_map") is False:
        report.observations.append(Observation("SMOKE-EXPORT-PLAIN-TRANSFORMERS", values={
            "diff": f"{report.facts['smoke.logit_max_abs_diff']:.1e}", "bound": f"{report.facts['smoke.logit_bound']:.1e}",
            "dtype": report.facts.get("smoke.merged_dtype")}))
    return report


def _events_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: child JSON lines (a {"type": "log", "text": ...} line stands for its output)."""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    log = "\n".join(str(e.get("text", "")) for e in events if e.get("type") == "log")
    code = options.get("exit_code", 0)
    report = interpret(SmokeReport(), code, log, events, float(options.get("timeout", 600)), kb=None)
    return report.observations


def _estimate_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: {"config": {...}, "tensors": {name: [dtype, shape]}, "gpu_mib": N, "batch": b, "seq": s}."""
    data = json.loads(text)
    tensors = {k: (v[0], tuple(v[1])) for k, v in data.get("tensors", {}).items()}
    try:
        _, obs = fit_check(data.get("config", {}), tensors, data.get("gpu_mib"), int(data.get("batch", 1)),
                           int(data.get("seq", 2048)), "model")
    except est.EstimateError as exc:
        return [Observation("SMOKE-MODEL-UNREADABLE", Location("model"), {"reason": str(exc)})]
    return [obs] if obs else []


# kb test runs these on knowledge examples (`probe: NAME` in an entry's examples).
EXAMPLES = {
    "smoke.events": _events_example,
    "smoke.estimate": _estimate_example,
}
