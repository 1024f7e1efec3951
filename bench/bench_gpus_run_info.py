"""How well `scan --gpus` reads the run (method, model size) from real training scripts.

    python bench/bench_gpus_run_info.py real/notebooks-py

(real/notebooks-py: unslothai/notebooks python_scripts/, extracted from its git snapshot.)
Baseline: the size each notebook's file name carries, "Llama3.1_(8B)"; a size read from the
code within 15% of it agrees. Also counts the launch-setting findings on the same scripts.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from doctor.distributed.run_info import run_from_script
from doctor.distributed.script_split import scan_script_paths


def main(folder: str) -> None:
    files = sorted(Path(folder).glob("*.py"))
    methods: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    agree, differ, no_size = 0, [], 0
    for path in files:
        run = run_from_script(str(path))
        methods[run.method or "unknown"] += 1
        findings.update(o.entry_id for o in scan_script_paths([str(path)]))
        titled = re.search(r"\((\d+(?:\.\d+)?)([BM])\)", path.name)
        if run.method and run.params_b is None:
            no_size += 1
        if not titled or run.params_b is None:
            continue
        want = float(titled.group(1)) / (1000 if titled.group(2) == "M" else 1)
        if abs(want - run.params_b) <= 0.15 * want:
            agree += 1
        else:
            differ.append(f"{path.name}: code loads {run.source.rsplit('(', 1)[-1].rstrip(')')} ({run.params_b:g}B)")
    print(f"{len(files)} scripts; method: {dict(methods)}; training scripts with no size in the model name: {no_size}")
    print(f"size read from the code vs the file name's size: {agree} agree, {len(differ)} differ")
    print(*differ, sep="\n")
    print(f"launch-setting findings: {dict(findings)}")


if __name__ == "__main__":
    main(sys.argv[1])
