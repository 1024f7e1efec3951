"""`scan --model DIR --fix`: apply the repairs a model folder's findings propose, one at a time,
re-scanning after each and keeping it only if its finding is gone and nothing new appeared.

Whole-file edits (config keys, tokenizer files copied from the base, a rebuilt shard index, an
auto_map removed) come ready-made from the probe. Converting pickle weights to safetensors
(unsafe) runs in a child process with torch.load(weights_only=True): the doctor never
unpickles anything, and weights_only refuses any object but tensors and plain containers.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from doctor.findings import Fix, Observation, Safety
from doctor.fixes.apply import allowed
from doctor.fixes.journal import Transaction
from doctor.probes.model import TRAINER_STATE
from doctor.results.report import FixOutcome

Rescan = Callable[[], list[Observation]]
MAX_ROUNDS = 20
CONVERT = "MODEL-PICKLE-WEIGHTS"
_SHARD = re.compile(r"^pytorch_model(?P<rest>(-\d+-of-\d+)?)\.bin$")

CHILD = r"""
import json, sys
import torch
from safetensors.torch import save_file
src, dst = sys.argv[1], sys.argv[2]
state = torch.load(src, map_location="cpu", weights_only=True)
if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
    state = state["state_dict"]   # a Lightning-style .ckpt
tensors, seen = {}, set()
for name, value in state.items():
    if not isinstance(value, torch.Tensor):
        continue
    key = (value.untyped_storage().data_ptr(), value.storage_offset())
    # safetensors refuses tensors that share memory (tied weights): those get their own copy
    tensors[name] = value.clone().contiguous() if key in seen else value.contiguous()
    seen.add(key)
if not tensors:
    sys.exit("no tensors at the top level: not a weights file")
save_file(tensors, dst, metadata={"format": "pt"})
print(json.dumps({"tensors": len(tensors)}))
"""


class Rejected(Exception):
    pass


def safetensors_name(pickle_name: str) -> str:
    """transformers' names: pytorch_model-00001-of-00002.bin -> model-00001-of-00002.safetensors."""
    m = _SHARD.match(pickle_name)
    if m:
        return f"model{m.group('rest')}.safetensors"
    return Path(pickle_name).stem + ".safetensors"


def repair_model(folder: str, rescan: Rescan, unsafe: bool, tx: Transaction, python: str | None = None,
                 timeout: float = 600) -> list[FixOutcome]:
    """Fix the folder until no allowed repair remains; returns what each applied repair did."""
    outcomes: list[FixOutcome] = []
    tried: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        before = rescan()
        candidate = next(((o, f) for o in before for f in o.fixes
                          if (o.entry_id, f.text) not in tried and _applicable(o, f, unsafe)), None)
        if candidate is None:
            break
        obs, fix = candidate
        tried.add((obs.entry_id, fix.text))
        try:
            with tx.savepoint():
                written = _apply(folder, obs, fix, tx, python or sys.executable, timeout)
                _check(before, rescan(), obs.entry_id)
        except Rejected as why:
            outcomes.append(FixOutcome(folder, f"{folder}: not fixed {obs.entry_id}: {why}", applied=False,
                                       entry_id=obs.entry_id))
            continue
        outcomes.append(FixOutcome(folder, f"fixed {obs.entry_id} in {folder}: {fix.text}", entry_id=obs.entry_id,
                                   outputs=tuple(written)))
    return outcomes


def _applicable(obs: Observation, fix: Fix, unsafe: bool) -> bool:
    if obs.entry_id == CONVERT and fix.kind == "model" and not fix.edits:
        return unsafe and fix.safety == Safety.UNSAFE
    return allowed(fix, unsafe)


def _check(before: list[Observation], after: list[Observation], fixed: str) -> None:
    """The fixed finding is gone (or fewer), and no finding appeared that was not there."""
    was, now = Counter(o.entry_id for o in before), Counter(o.entry_id for o in after)
    if now[fixed] >= was[fixed]:
        raise Rejected("the finding is still there after the repair; the folder was put back")
    new = sorted(set(now) - set(was))
    if new:
        raise Rejected(f"the repair brought new findings ({', '.join(new)}); the folder was put back")


def _apply(folder: str, obs: Observation, fix: Fix, tx: Transaction, python: str, timeout: float) -> list[str]:
    if fix.edits:
        for edit in fix.edits:
            tx.write(edit.path, edit.content(), source=folder)
        return [e.path for e in fix.edits]
    return convert_pickles(Path(folder), tx, python, timeout)


def convert_pickles(root: Path, tx: Transaction, python: str, timeout: float) -> list[str]:
    """A safetensors copy of each pickle weight file, written by a child process; the pickles
    stay (transformers prefers the safetensors files once they exist)."""
    written: list[str] = []
    sources = sorted(p for p in root.iterdir() if _SHARD.match(p.name) or (
        p.suffix in (".pt", ".pth", ".ckpt") and not p.name.startswith(TRAINER_STATE)))
    for src in sources:
        dst = root / safetensors_name(src.name)
        tmp = root / f".{dst.name}.{os.getpid()}.tmp"
        try:
            done = subprocess.run([python, "-c", CHILD, str(src), str(tmp)], capture_output=True, text=True,
                                  timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tmp.unlink(missing_ok=True)
            raise Rejected(f"converting {src.name} did not finish: {exc}") from None
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Rejected(f"torch.load(weights_only=True) refused {src.name}: {last}")
        tx.prepare(dst, source=str(root))
        os.replace(tmp, dst)
        written.append(str(dst))
    index = root / "pytorch_model.bin.index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        data["weight_map"] = {k: safetensors_name(v) for k, v in (data.get("weight_map") or {}).items()}
        target = root / "model.safetensors.index.json"
        tx.write(target, (json.dumps(data, indent=2) + "\n").encode(), source=str(root))
        written.append(str(target))
    if not written:
        raise Rejected("no pickle weight file to convert")
    return written
