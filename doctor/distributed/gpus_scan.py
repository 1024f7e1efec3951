"""`unsloth-doctor scan --gpus`: the multi-GPU pre-flight of one machine, no launcher needed.

1. A child process asks torch for the GPUs and copies a sentinel-checked buffer between every
   ordered pair (gpu_child.py), under a deadline.
2. NVML, in this process, describes each pair's link and each GPU's PCIe link (nvml_topology.py).
3. One fresh process per GPU runs the checked all-reduce suite over NCCL (local_ranks.py); if
   it fails or hangs, it runs again with NCCL_P2P_DISABLE=1 so "it hangs" becomes "set this".
4. preflight.py turns the record into observations; the user's script/model give the run the
   strategy verdict is for, and the script's launch settings are checked against it.
Under torchrun / accelerate / srun the CLI runs `scan --distributed` instead (cross-rank checks).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from doctor.distributed.gpu_probe import run_gpu_child
from doctor.distributed.local_ranks import run_local_ranks
from doctor.distributed.nvml_topology import live_topology, merge_topology
from doctor.distributed.preflight import gpus_facts, gpus_observations, summary_lines
from doctor.distributed.run_info import run_for
from doctor.distributed.script_split import scan_script_paths
from doctor.distributed.strategy import Run, need_gib
from doctor.facts import Facts
from doctor.findings import AreaStatus, Observation
from doctor.probes.base import ProbeResult

# Script findings that assume DDP (a whole model per rank); a run that must be split over the
# GPUs in one process needs exactly such a device_map.
_DDP_ONLY = ("DIST-DEVICE-MAP-STRATEGY", "DIST-DEVICE-MAP-SPLIT")


@dataclass
class GpusOptions:
    timeout_s: float = 60.0
    scripts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    python: str = sys.executable
    record_file: str | None = None      # write the machine record here (to keep or to replay)
    replay_file: str | None = None      # judge a recorded machine instead of this one


def p2p_disable_inherited(environ: Mapping[str, str]) -> bool:
    """NCCL_P2P_DISABLE=1 already set: NCCL parses it as an integer and disables P2P only on 1."""
    try:
        return int(environ.get("NCCL_P2P_DISABLE", "").strip() or "0", 0) == 1
    except ValueError:
        return False


def _allreduce_failed(result: Mapping[str, Any]) -> bool:
    return bool(result.get("error") or result.get("hung"))


def machine_record(opts: GpusOptions, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ if environ is None else environ)
    record = run_gpu_child(opts.timeout_s, opts.python, environ)
    torch = record.get("torch") or {}
    gpus = record.get("gpus") or []
    if torch.get("error") or not gpus:
        return record
    if not torch.get("hip"):
        record = merge_topology(record, live_topology(gpus))
    if len(gpus) < 2 or not torch.get("nccl_available"):
        return record
    record["allreduce"] = run_local_ranks(len(gpus), opts.timeout_s, python=opts.python, backend="nccl")
    record["p2p_disable_inherited"] = p2p_disable_inherited(environ)
    if _allreduce_failed(record["allreduce"]) and not record["p2p_disable_inherited"]:
        record["allreduce_retry"] = run_local_ranks(len(gpus), opts.timeout_s, {"NCCL_P2P_DISABLE": "1"},
                                                    python=opts.python, backend="nccl")
    return record


def _script_observations(scripts: list[str], strategy_id: str) -> list[Observation]:
    """The script's launch settings against the verdict. A placement strategy splits the model
    over the GPUs in one process (Unsloth's 2 x T4 notebooks do): right for a model that does not
    fit one GPU, a waste of all but one GPU at a time for one that does (DDP would use them all).
    Under a launcher `scan --distributed` reports them whatever the size: there DDP is certain."""
    found = scan_script_paths(scripts)
    if strategy_id == "GPUS-STRATEGY-DDP":
        return [Observation("GPUS-DEVICE-MAP-SPLIT-FITS", o.location, o.values) if o.entry_id in _DDP_ONLY else o
                for o in found]
    # the model must be split, or its size is unknown: a split in one process may be the right run
    return [o for o in found if o.entry_id not in _DDP_ONLY]


def judge(record: dict[str, Any], run: Run, scripts: list[str]) -> ProbeResult:
    """Observations, facts and summary lines for a machine record and the user's run."""
    record = {**record, "run": {"method": run.method, "params_b": run.params_b, "source": run.source}}
    observations = gpus_observations(record)
    strategy_id = next((o.entry_id for o in observations if o.entry_id.startswith("GPUS-STRATEGY-")), "")
    observations += _script_observations(scripts, strategy_id)
    facts = gpus_facts(record)
    if strategy_id:
        facts["gpus.strategy"] = strategy_id.removeprefix("GPUS-STRATEGY-").lower()
    if run.method:
        facts["gpus.run.method"] = run.method
    if run.params_b:
        facts["gpus.run.params_b"] = run.params_b
        facts["gpus.run.need_gib"] = need_gib(run)
    areas = [AreaStatus("distributed", label, detail=detail, ids=ids) for label, detail, ids in summary_lines(record)]
    return ProbeResult(facts=Facts(facts, {k: "scan --gpus" for k in facts}), observations=observations, areas=areas)


def load_record(path: str) -> dict[str, Any]:
    """A machine record written by --gpus-record; bad input is a UsageError with its line and column."""
    from doctor.errors import UsageError

    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not a machine record: {exc.msg}") from None
    if not isinstance(record, dict) or not isinstance(record.get("torch"), dict):
        raise UsageError(f"{path}:1:1: not a machine record: expected a JSON object with a 'torch' object")
    gpus = record.get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(g, dict) and isinstance(g.get("index"), int) for g in gpus):
        raise UsageError(f"{path}:1:1: not a machine record: 'gpus' must be a list of objects with an integer 'index'")
    for key in ("pairs", "peer_copy", "allreduce", "allreduce_retry"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise UsageError(f"{path}:1:1: not a machine record: '{key}' must be an object")
    return record


def run_gpus_scan(opts: GpusOptions, environ: Mapping[str, str] | None = None) -> ProbeResult:
    from doctor.probes.env import collect_environment

    if opts.replay_file:
        record = load_record(opts.replay_file)
        env = ProbeResult()
    else:
        # the environment of the interpreter the user trains with (--python), as a plain scan reads it
        env = collect_environment(python=None if opts.python == sys.executable else opts.python)
        record = machine_record(opts, environ)
    if opts.record_file:
        with open(opts.record_file, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1, sort_keys=True)
    run = run_for(opts.scripts, opts.models, configs=opts.configs)
    result = judge(record, run, opts.scripts)
    return ProbeResult(facts=env.facts.merged(result.facts), observations=[*env.observations, *result.observations],
                       areas=[*env.areas, *result.areas])

