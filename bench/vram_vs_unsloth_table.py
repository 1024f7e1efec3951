"""The VRAM estimate's lower end against the minimum VRAM Unsloth publishes per model size.

    python bench/vram_vs_unsloth_table.py

Unsloth's requirements page (https://unsloth.ai/docs/get-started/fine-tuning-for-beginners/
unsloth-requirements) lists "the absolute minimum" VRAM for QLoRA (4-bit) and LoRA (16-bit) by
parameter count. The estimate here is made as `scan` makes it for a script that names only the
model: the shape guessed from the size, batch 1, 512 tokens, r=16, Unsloth's checkpointing and
8-bit AdamW; its floor is the least the run can need (the loss in its smallest chunks). A
reference, not a calibration: the page does not say at which batch and length it measured.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doctor.probes import vram  # noqa: E402

# billions: (QLoRA GB, LoRA GB), as published
PUBLISHED = {3: (3.5, 8), 7: (5, 19), 8: (6, 22), 9: (6.5, 24), 11: (7.5, 29), 14: (8.5, 33), 27: (22, 64),
             32: (26, 76), 40: (30, 96), 70: (41, 164)}


def main() -> int:
    print(f"{'size':>5}  {'QLoRA pub':>9} {'floor':>6} {'ratio':>6} {'about':>6}   "
          f"{'LoRA pub':>8} {'floor':>6} {'ratio':>6} {'about':>6}   (GB)")
    ratios = []
    for b, (q, l) in PUBLISHED.items():
        shape = vram.shape_from_params(int(b * 1e9))
        row = [f"{b:>4}B"]
        for four, pub in ((True, q), (False, l)):
            est = vram.estimate(shape, vram.RunSettings(batch=1, seq=512, load_in_4bit=four))
            gb = 2**20 / 1e9   # MiB -> GB, as the page writes
            ours, about = vram.floor_mib(est) * gb, est.total_mib * gb
            ratios.append(ours / pub)
            row.append(f"{pub:>9} {ours:>6.1f} {ours / pub:>6.2f} {about:>6.1f}")
        print("  ".join(row))
    print(f"floor/published: min {min(ratios):.2f}, median {sorted(ratios)[len(ratios) // 2]:.2f}, "
          f"max {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
