"""`scan --deep`: import torch, bitsandbytes, triton and unsloth in a child process and run real ops.

The doctor never imports them itself. The child (doctor/probes/deep_child.py, run as
`python -c`) reports each step with a marker line; a segfault, a hang past the timeout or a
failed import becomes an observation with the tail of what the child printed, and the rest of
its output (Unsloth's banner, warnings) is matched against the knowledge base's symptoms.

Facts:
  deep.ran, deep.exit_code, deep.timed_out, deep.last_step
  deep.torch.version, deep.torch.cuda, deep.torch.cuda_available, deep.torch.device_count
  deep.torch.arch_list ("sm_75, sm_80, ..."; torch.cuda.get_arch_list())
  deep.gpu.<i>.name, deep.gpu.<i>.capability, deep.gpu.<i>.arch_supported (the build has kernels for it)
  deep.gpu.<i>.matmul_fp16_ok, deep.gpu.<i>.matmul_bf16_ok (only where capability >= 8.0)
  deep.cpu.matmul_gflops, deep.cpu.threads
  deep.<module>.import_ok, deep.<module>.version, deep.<module>.import_s  (torch, bitsandbytes,
  triton, unsloth)
Observations: ENV-DEEP-TIMEOUT, ENV-DEEP-CRASH, ENV-DEEP-IMPORT-FAILED, ENV-DEEP-MODULE-MISSING,
ENV-DEEP-MATMUL-FAILED, ENV-DEEP-ARCH-MISSING, plus any knowledge entry whose symptoms the child's output shows.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from doctor import progress
from doctor.facts import FactCollector, Facts
from doctor.findings import AreaStatus, Evidence, Observation
from doctor.probes.base import ProbeResult
from doctor.probes.child_python import absolute_python
from doctor.probes.system import run_bounded
from doctor.results.words import counted

MARK = "@@unsloth-doctor@@ "
TAIL_LINES = 25
SHORT_TAIL_LINES = 4
_MIN_SCORE = 0.5          # symptom matches weaker than this are left out of a scan
_MODULES = {"import_torch": "torch", "import_bitsandbytes": "bitsandbytes", "import_triton": "triton",
            "import_unsloth": "unsloth"}


@dataclass(frozen=True)
class ChildRun:
    returncode: int | None      # None when it was killed for running past the timeout
    output: str                 # stdout and stderr, interleaved as written
    timed_out: bool
    timeout_s: float


def child_source() -> str:
    with open(os.path.join(os.path.dirname(__file__), "deep_child.py"), encoding="utf-8") as fh:
        return fh.read()


def run_child(python: str, source: str, timeout_s: float, env: dict[str, str] | None = None) -> ChildRun:
    """Run `python -c source` from an empty folder (no cwd module shadows torch).

    The child imports nothing of ours, so the environment is passed on as it is."""
    python = absolute_python(python)  # a relative path would be looked up from the empty folder
    child_env = dict(os.environ if env is None else env)
    child_env.update({"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", "PYTHONIOENCODING": "utf-8"})
    with tempfile.TemporaryDirectory(prefix="unsloth-doctor-deep-") as cwd:
        try:
            done = run_bounded([python, "-c", source], timeout_s, env=child_env, cwd=cwd, merge_stderr=True)
        except OSError as exc:
            return ChildRun(returncode=127, output=f"could not start {python}: {exc}", timed_out=False,
                            timeout_s=timeout_s)
    return ChildRun(done.returncode, done.stdout, done.timed_out, timeout_s)


def split_output(output: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Marker records, and every other line (what the stack itself printed)."""
    records, lines = [], []
    for line in output.splitlines():
        idx = line.find(MARK)
        if idx >= 0:
            try:
                records.append(json.loads(line[idx + len(MARK):]))
            except ValueError:
                lines.append(line)
                continue
            if idx:
                lines.append(line[:idx])  # text the stack printed without a newline
        else:
            lines.append(line)
    return records, lines


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def interpret(run: ChildRun) -> tuple[Facts, list[Observation], str]:
    """Pure: facts and observations from what the child reported; returns the plain text too."""
    records, lines = split_output(run.output)
    text = "\n".join(lines)
    tail = "\n".join(lines[-TAIL_LINES:]).strip() or "(no output)"
    # the message quotes the last few lines; the evidence keeps the longer tail
    short = " | ".join(line.strip() for line in lines[-SHORT_TAIL_LINES:] if line.strip()) or "(no output)"
    fc = FactCollector("scan --deep child")
    obs: list[Observation] = []
    fc.set("deep.ran", True)
    fc.set("deep.timed_out", run.timed_out)
    fc.set("deep.exit_code", run.returncode)
    started: list[str] = []
    finished: set[str] = set()
    for rec in records:
        name, status = rec.get("step", "?"), rec.get("status")
        if status == "start":
            started.append(name)
            continue
        finished.add(name)
        _record_facts(fc, obs, name, status, rec)
    open_steps = [s for s in started if s not in finished]
    last = open_steps[-1] if open_steps else "done" if "done" in finished else \
        (started[-1] if started else "start-up")
    fc.set("deep.last_step", last)
    evidence = (Evidence("observation", "child output tail", tail),)
    if run.timed_out:
        obs.append(Observation("ENV-DEEP-TIMEOUT", values={"step": last, "timeout_s": run.timeout_s, "tail": short},
                               evidence=evidence))
    elif "done" not in finished:
        how = _signal_name(run.returncode) if run.returncode is not None and run.returncode < 0 \
            else f"exit code {run.returncode}"
        obs.append(Observation("ENV-DEEP-CRASH", values={"step": last, "how": how, "tail": short},
                               evidence=evidence))
    return fc.freeze(), obs, text


def _record_facts(fc: FactCollector, obs: list[Observation], name: str, status: str | None,
                  rec: dict[str, Any]) -> None:
    data = rec.get("data") or {}
    if name == "python":
        fc.set("deep.python.version", data.get("version"))
        return
    if name in _MODULES:
        module = _MODULES[name]
        fc.set(f"deep.{module}.import_ok", status == "ok")
        fc.set(f"deep.{module}.import_s", rec.get("seconds"))
        if status == "ok":
            fc.set(f"deep.{module}.version", data.get("version"))
        else:
            error = str(rec.get("error", ""))
            missing = error.startswith("ModuleNotFoundError") and f"'{module}'" in error
            obs.append(Observation(
                "ENV-DEEP-MODULE-MISSING" if missing else "ENV-DEEP-IMPORT-FAILED",
                values={"module": module, "error": error},
                evidence=(Evidence("observation", f"import {module}", str(rec.get("traceback", "")).strip()),)))
        if name == "import_torch" and status == "ok":
            fc.set("deep.torch.cuda", data.get("cuda"))
            fc.set("deep.torch.cuda_available", data.get("cuda_available"))
            fc.set("deep.torch.device_count", data.get("device_count"))
            arch_list = data.get("arch_list")
            if arch_list:
                fc.set("deep.torch.arch_list", ", ".join(arch_list))
            for dev in data.get("devices", []):
                i = dev["index"]
                fc.set(f"deep.gpu.{i}.name", dev.get("name"))
                fc.set(f"deep.gpu.{i}.capability", dev.get("capability"))
                if arch_list and dev.get("capability") is not None:
                    ok = arch_supported(float(dev["capability"]), arch_list)
                    fc.set(f"deep.gpu.{i}.arch_supported", ok)
                    if not ok:
                        obs.append(Observation("ENV-DEEP-ARCH-MISSING", values={
                            "gpu": str(i), "name": dev.get("name"), "capability": dev.get("capability"),
                            "arch_list": ", ".join(arch_list), "torch_version": data.get("version")}))
        return
    if name.startswith("matmul_"):
        kind, _, index = name.partition(":")
        dtype = "fp16" if kind == "matmul_fp16" else "bf16"
        fc.set(f"deep.gpu.{index}.matmul_{dtype}_ok", status == "ok")
        if status != "ok":
            obs.append(Observation("ENV-DEEP-MATMUL-FAILED",
                                   values={"gpu": index, "dtype": dtype, "error": rec.get("error", "")},
                                   evidence=(Evidence("observation", name, str(rec.get("traceback", "")).strip()),)))
        return
    if name == "cpu_speed" and status == "ok":
        fc.set("deep.cpu.matmul_gflops", data.get("matmul_gflops"))
        fc.set("deep.cpu.threads", data.get("threads"))


def arch_supported(capability: float, arch_list: list[str]) -> bool:
    """Whether a build's compiled kernels run on a GPU of this compute capability.

    CUDA's compatibility rules: a cubin for sm_XY runs on the same major version with an equal
    or higher minor (sm_80 on 8.6); PTX for compute_XY is JIT-compiled for any GPU at or above XY."""
    major, minor = int(capability), round(capability * 10) % 10
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if not digits.isdigit() or len(digits) < 2:
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def symptom_observations(kb: Any, text: str, static_facts: Any = None) -> list[Observation]:
    """Knowledge entries whose symptoms appear in what the child printed.

    An entry whose `when:` already holds on the static scan's facts is left out: scan reports
    it from the facts, and the child's output would only repeat it."""
    from doctor.engine import evaluate_condition, observations_from_output

    def keep(entry: Any) -> bool:
        if entry.id.startswith("ENV-DEEP-"):
            return False
        return not (entry.fires_in_scan and static_facts is not None
                    and evaluate_condition(entry.when, static_facts) is True)

    return observations_from_output(kb, text, source="deep", min_score=_MIN_SCORE, keep=keep).observations


def _already_known_missing(obs: Observation, static_facts: Any) -> bool:
    """A module the metadata scan already found uninstalled: the static findings say it.
    (Installed per metadata yet not importable is kept: that is news.)"""
    if obs.entry_id != "ENV-DEEP-MODULE-MISSING" or static_facts is None:
        return False
    return f"pkg.{obs.values.get('module')}.version" not in static_facts


def _area(facts: Facts, obs: list[Observation]) -> AreaStatus:
    if facts.get("deep.timed_out"):
        return AreaStatus("Deep check", f"timed out in {facts.get('deep.last_step')}")
    if any(o.entry_id == "ENV-DEEP-CRASH" for o in obs):
        return AreaStatus("Deep check", f"child crashed in {facts.get('deep.last_step')}")
    if not facts.get("deep.torch.import_ok"):
        return AreaStatus("Deep check", "torch did not import")
    n = facts.get("deep.torch.device_count", 0)
    ok = sum(1 for k, v in facts.items() if k.endswith("_ok") and k.startswith("deep.gpu.") and v)
    return AreaStatus("Deep check", f"torch {facts.get('deep.torch.version')}: {counted(n, 'CUDA device')}, "
                      f"{counted(ok, 'GPU matmul')} passed", detail=f"CPU {facts.get('deep.cpu.matmul_gflops', '?')} GFLOP/s")


def run_deep_probe(kb: Any, timeout_s: float = 120, python: str = sys.executable,
                   env: dict[str, str] | None = None, static_facts: Any = None) -> ProbeResult:
    """Run the child; `static_facts` (the environment probe's facts, which it passes in) avoid
    repeating what they show."""
    with progress.stage("deep probe: importing torch and unsloth in a child process"):
        run = run_child(python, child_source(), timeout_s, env)
    facts, obs, text = interpret(run)
    try:
        obs += symptom_observations(kb, text, static_facts)
    except Exception:  # a broken knowledge file is reported by `kb test`, not here
        pass
    obs = [o for o in obs if not _already_known_missing(o, static_facts)]
    return ProbeResult(facts=facts, observations=obs, areas=[_area(facts, obs)])


def run_output_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb example input: JSON {"rc": int|null, "timed_out": bool, "output": child output}."""
    data = json.loads(text)
    run = ChildRun(returncode=data.get("rc"), output=data.get("output", ""), timed_out=bool(data.get("timed_out")),
                   timeout_s=float(data.get("timeout_s", 120)))
    return interpret(run)[1]
