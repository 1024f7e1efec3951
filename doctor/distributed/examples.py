"""`kb test` runners for the DIST-* entries: each runs the real check on the example's input.

Inputs are YAML (rank records, an all-reduce result, an environment) or Python source. No
torch: these are the pure halves of `scan --distributed`.
"""
from __future__ import annotations

from typing import Any

import yaml

from doctor.distributed.bandwidth import allreduce_observations
from doctor.distributed.checks import cross_rank_observations
from doctor.distributed.envchecks import launch_observations, start_observations
from doctor.distributed.preflight import gpus_observations
from doctor.distributed.rank_only import rank_only_observations
from doctor.distributed.script_split import scan_source
from doctor.findings import Observation
from doctor.probes.script import read_source


def _records(text: str) -> list[dict[str, Any]]:
    records = yaml.safe_load(text) or []
    for i, r in enumerate(records):
        r.setdefault("rank", i)
    return records


def _facts(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """A YAML list of rank records (rank, host, facts, vars, net, runtime, compile_cache)."""
    records = _records(text)
    return cross_rank_observations(records) + launch_observations(records) + \
        rank_only_observations(records, kb)


def _allreduce(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    return allreduce_observations(yaml.safe_load(text) or {})


def _start(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """A YAML mapping of environment variables; options.failure: torch | rendezvous."""
    env = {k: str(v) for k, v in (yaml.safe_load(text) or {}).items()}
    return start_observations(env, options.get("failure"), options.get("error", ""))


def _script(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    return scan_source(read_source(options.get("name", "train.py"), text))


def _gpus(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """A YAML machine record, as `scan --gpus` builds it (doctor/distributed/preflight.py)."""
    return gpus_observations(yaml.safe_load(text) or {})


def _gpus_script(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """A training script judged on a machine (options.record, YAML): what `scan --gpus --script` adds."""
    import os
    import tempfile

    from doctor.distributed.gpus_scan import judge
    from doctor.distributed.run_info import run_from_script

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, options.get("name", "train.py"))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return judge(yaml.safe_load(options["record"]), run_from_script(path), [path]).observations


# kb test runs these on knowledge examples (`probe: NAME` in an entry's examples).
EXAMPLES = {
    "distributed.facts": _facts,
    "distributed.allreduce": _allreduce,
    "distributed.start": _start,
    "distributed.script": _script,
    "distributed.gpus": _gpus,
    "distributed.gpus-script": _gpus_script,
}
