"""Run gpu_child.py with a deadline and read what it printed, even when it had to be killed."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

from doctor.probes.system import run_bounded

MARK = "UNSLOTH_DOCTOR_GPUS "


def child_source() -> str:
    with open(os.path.join(os.path.dirname(__file__), "gpu_child.py"), encoding="utf-8") as fh:
        return fh.read()


def parse_child(output: str, timed_out: bool, timeout_s: float) -> dict[str, Any]:
    """The machine record's torch/gpus/peer_copy part from the child's marker lines; pure.

    Killed at the deadline: the pair started and never finished hung; pairs never started
    are inconclusive. No torch line at all: the import (or enumeration) itself did not answer.
    """
    record: dict[str, Any] = {}
    copies: dict[str, str] = {}
    access: dict[str, bool] = {}
    started: list[str] = []
    done = False
    for line in output.splitlines():
        idx = line.find(MARK)
        if idx < 0:
            continue
        try:
            item = json.loads(line[idx + len(MARK):])
        except ValueError:
            continue
        if "torch" in item:
            record["torch"] = item["torch"]
            record["gpus"] = item.get("gpus", [])
        elif "start" in item:
            started.append(item["start"])
            access[item["start"]] = bool(item.get("peer_access"))
        elif "copy" in item:
            copies[item["copy"]] = item["status"]
        elif item.get("done"):
            done = True
    if "torch" not in record:
        why = f"did not answer within {timeout_s:g} s" if timed_out else "ended without a report"
        tail = " | ".join(output.strip().splitlines()[-3:])[:400]
        record["torch"] = {"error": f"import torch / GPU enumeration {why}" + (f": {tail}" if tail else "")}
        return record
    count = len(record["gpus"])
    if count > 1 and (started or timed_out) and not done:
        for src in range(count):
            for dst in range(count):
                pair = f"{src}->{dst}"
                if src == dst or pair in copies:
                    continue
                if started and pair == started[-1]:
                    copies[pair] = f"hung: did not finish within the {timeout_s:g} s deadline"
                elif timed_out:
                    copies[pair] = "inconclusive: not reached before the deadline"
                else:
                    copies[pair] = "inconclusive: the probe process ended early"
    if copies:
        record["peer_copy"] = dict(sorted(copies.items()))
        record["peer_access"] = access
    return record


def run_gpu_child(timeout_s: float, python: str = sys.executable, env: dict[str, str] | None = None) -> dict[str, Any]:
    child_env = dict(os.environ if env is None else env)
    child_env.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
    with tempfile.TemporaryDirectory(prefix="unsloth-doctor-gpus-") as cwd:   # no cwd module shadows torch
        try:
            done = run_bounded([python, "-c", child_source()], timeout_s, env=child_env, cwd=cwd, merge_stderr=True)
        except OSError as exc:
            return {"torch": {"error": f"could not start {python}: {exc}"}}
    record = parse_child(done.stdout, done.timed_out, timeout_s)
    if record.get("gpus") and len(record["gpus"]) > 1 and (record.get("torch") or {}).get("hip"):
        record["peer_copy_skipped"] = "ROCm: the sentinel peer-copy probe is CUDA-only here, as in Unsloth's check"
    return record
