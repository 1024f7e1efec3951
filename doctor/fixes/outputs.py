"""Where `--fix` writes a dataset's repair, and the rule that it never overwrites what is not its own.

Names derive from the input's full name, so two inputs of one folder never share an output:

- the repaired copy keeps the input's format and extension, `.fixed` going before it:
  `train.jsonl` -> `train.fixed.jsonl`, `table.csv` -> `table.fixed.csv`, `table.parquet` ->
  `table.fixed.parquet`. A `.json` file (or any other name), whose repair is JSON Lines, gets
  `.fixed.jsonl` after its full name: `train.json` -> `train.json.fixed.jsonl`;
- the rejects file is the full input name plus `.rejects.jsonl`: `table.csv.rejects.jsonl`,
  `table.parquet.rejects.jsonl`, `train.jsonl.rejects.jsonl`.

An output may replace only an earlier repair of the same input (the journal says which input
wrote it); anything else in the way, or another input of the same run, makes the repair of
that input refuse with a RepairError, before anything is written.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Sequence

from doctor.fixes.dataset_model import RepairError
from doctor.fixes.journal import Transaction, path_key
from doctor.probes.dataset import reader

# Inputs whose repair is written in their own format, so their extension is kept.
_OWN_FORMAT = (*reader.JSONL_SUFFIXES, *reader.CSV_SUFFIXES, *reader.PARQUET_SUFFIXES)


def output_paths(path: str) -> tuple[str, str]:
    """The repaired copy and the rejects file of `path`."""
    p = Path(path)
    name, suffix = p.name, p.suffix
    if suffix and name.lower().endswith(_OWN_FORMAT) and len(name) > len(suffix):
        fixed = f"{name[: -len(suffix)]}.fixed{suffix}"
    else:
        fixed = f"{name}.fixed.jsonl"
    return str(p.with_name(fixed)), str(p.with_name(f"{name}.rejects.jsonl"))


def output_mode(path: str) -> int:
    """Permission bits for the outputs: the input's, so a shared dataset stays shared."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o777


def check_outputs(source: str, targets: Sequence[str], tx: Transaction, run_inputs: Iterable[str] = ()) -> None:
    """Refuse (RepairError) if writing `targets` from `source` would overwrite anything but an
    earlier repair of `source` itself, or another input of this run."""
    me, name = path_key(source), Path(source).name
    others = {path_key(p) for p in run_inputs} - {me}
    keys = [path_key(t) for t in targets]
    # The messages name the output; the caller says which input was not repaired.
    if len(set(keys)) != len(keys):
        raise RepairError(f"the repaired copy and the rejects file of {name} would be the same file")
    for target, key in zip(targets, keys):
        if key == me:
            continue   # --in-place: the input itself, with a backup
        if key in others:
            raise RepairError(f"its output {target} is another input of this run; nothing was written "
                              "(rename one of them)")
        touched, writer = tx.source_of(target)
        if touched:
            if writer != me:
                raise RepairError(f"its output {target} was already written in this run from "
                                  f"{writer or 'a script fix'}; nothing was written (rename one of the inputs)")
            continue
        if os.path.lexists(target) and tx.journal.last_source(target) != me:
            raise RepairError(f"{target} already exists and is not an earlier repair of {name} by "
                              "unsloth-doctor; nothing was overwritten (move it away, then run --fix again)")
