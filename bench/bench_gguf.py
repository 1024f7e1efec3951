"""The GGUF probe on real GGUF files, against gguf-py's GGUFReader (llama.cpp's reference reader).

    python bench/bench_gguf.py DIR [--cuts 5]

For every *.gguf under DIR: does the probe agree with GGUFReader that the file loads (no
finding) and with llama.cpp's own bounds check (tensor data inside the file)? Then the same
file cut at `--cuts` points spread over its length, where a loader must refuse it: does the
probe say GGUF-TRUNCATED? Time: the probe's header read against GGUFReader's (best of 3 each),
printed as a ratio. DIR is material nobody on the team wrote, e.g. the vocab files llama.cpp
ships in models/ (inside the llama-cpp-python sdist from PyPI).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from doctor.probes.gguf import examine  # noqa: E402


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def reference_loads(path: Path) -> bool:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception:  # noqa: BLE001 - any refusal counts as "does not load"
        return False
    size = path.stat().st_size
    return all(t.data_offset + t.n_bytes <= size for t in reader.tensors)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--cuts", type=int, default=5)
    args = parser.parse_args()
    files = sorted(Path(args.folder).rglob("*.gguf"))
    agree = cut_detected = cuts = 0
    ratios = []
    print(f"{'file':<40} {'MB':>7} {'probe':>22} {'reference':>10} {'probe ms':>9} {'ref ms':>8}")
    for path in files:
        observations, facts = examine(path)
        ours = [o.entry_id for o in observations if o.entry_id != "GGUF-NO-TENSORS"]   # a note, not a refusal
        ref = reference_loads(path)
        agree += (not ours) == ref
        t_probe = best_of(lambda: examine(path))
        t_ref = best_of(lambda: reference_loads(path))
        ratios.append(t_ref / t_probe)
        shown = ",".join(o.entry_id for o in observations) or "ok"
        print(f"{path.name:<40} {path.stat().st_size / 1e6:7.2f} {shown:>22} "
              f"{'loads' if ref else 'refused':>10} {t_probe * 1e3:9.1f} {t_ref * 1e3:8.1f}")
        data = path.read_bytes()
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(1, args.cuts + 1):
                cut = Path(tmp) / f"cut{i}.gguf"
                cut.write_bytes(data[: len(data) * i // (args.cuts + 1)])
                cuts += 1
                cut_detected += "GGUF-TRUNCATED" in [o.entry_id for o in examine(cut)[0]]
    print(f"\n{len(files)} files: probe and reference agree on {agree}/{len(files)}")
    print(f"cut copies: {cut_detected}/{cuts} reported as GGUF-TRUNCATED")
    if ratios:
        print(f"speed: GGUFReader time / probe time, median {statistics.median(ratios):.1f}x "
              f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")
    return 0 if agree == len(files) and cut_detected == cuts else 1


if __name__ == "__main__":
    raise SystemExit(main())
