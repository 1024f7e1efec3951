"""`scan --gpus` starts its own ranks: one fresh process per GPU on a free local port, no torchrun.

Processes rather than threads: a hung NCCL communicator can only be ended by killing its
process, and the scan must answer. Each rank is the leader of its own process group, writes to
a file (an undrained pipe would block a chatty rank inside the collective and turn a healthy
machine into a "hang") and is killed, with all it started, at the deadline.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from doctor.interrupts import deferred, end_process_group
from doctor.probes.child_python import with_doctor_code

# torch import and communicator set-up come before the collective's own timeout starts
STARTUP_S = 60.0
_TIMEOUT_WORDS = ("timed out", "timeout", "watchdog caught collective operation timeout")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_env(base: dict[str, str], rank: int, world: int, port: int, timeout_s: float, result_file: str) -> dict[str, str]:
    env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), UNSLOTH_DOCTOR_TIMEOUT=str(timeout_s),
               UNSLOTH_DOCTOR_RESULT_FILE=result_file, PYTHONUNBUFFERED="1")
    for name in ("TORCHELASTIC_RUN_ID", "GROUP_RANK", "NODE_RANK"):   # this is not the user's launch
        env.pop(name, None)
    return env


def _tail(paths: list[str], limit: int = 600) -> str:
    parts = []
    for i, path in enumerate(paths):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text:
            parts.append(f"rank {i}: {text[-limit:]}")
    return "\n".join(parts)


def _error_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "Error" in line or "error" in line]
    return lines[-1][:400] if lines else (log.strip().splitlines() or ["no output"])[-1][:400]


def run_local_ranks(world: int, timeout_s: float, extra_env: dict[str, str] | None = None,
                    python: str = sys.executable, startup_s: float = STARTUP_S, backend: str = "?") -> dict[str, Any]:
    """The all-reduce suite over `world` fresh local ranks: its result, or {backend, error, hung}
    (`backend`: what the ranks would have used, for a result they never wrote)."""
    base = with_doctor_code({**os.environ, **(extra_env or {})})
    with tempfile.TemporaryDirectory(prefix="unsloth-doctor-ranks-") as folder:
        result_file = os.path.join(folder, "result.json")
        logs = [os.path.join(folder, f"rank{r}.log") for r in range(world)]
        port = free_port()
        procs: list[subprocess.Popen[bytes]] = []
        hung = False
        try:
            with deferred():
                for r in range(world):
                    with open(logs[r], "wb") as log:
                        procs.append(subprocess.Popen(
                            [python, "-m", "doctor.distributed.rank_worker"], cwd=folder, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=rank_env(base, r, world, port, timeout_s, result_file)))
            deadline = time.monotonic() + timeout_s + startup_s
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    hung = True
                    break
        except OSError as exc:
            return {"backend": backend, "error": f"could not start rank {len(procs)} of {world}: {exc}", "hung": False}
        finally:
            for p in procs:   # Ctrl-C or a hang must not leave ranks holding GPU contexts
                if p.poll() is None:
                    end_process_group(p)
        log = _tail(logs)
        if hung:
            return {"backend": backend, "hung": True, "log": log,
                    "error": f"no answer within {timeout_s + startup_s:g} s (killed)"}
        try:
            with open(result_file, encoding="utf-8") as fh:
                result: dict[str, Any] = json.load(fh)
        except (OSError, ValueError):
            codes = ", ".join(f"rank {i}: {p.returncode}" for i, p in enumerate(procs))
            return {"backend": backend, "hung": False, "log": log,
                    "error": f"the ranks exited without a result ({codes}): {_error_line(log)}"}
    if result.get("error"):
        result["hung"] = any(w in result["error"].lower() for w in _TIMEOUT_WORDS)
    return result
