"""The VRAM estimate against the peak memory of real Unsloth runs, as a table.

    python bench/vram_table.py bench/results/vram-2026-12-07/vram-measured.json [--fit]

The measurements come from bench/gpu/vram_calibrate.py on a GPU machine. For every run the
table shows the estimate (doctor/probes/vram.py, as shipped) beside the measured peak of the
whole process (torch's peak reserved pool + the CUDA context measured alone) and their ratio;
the last lines give the largest error and whether every run falls inside the stated band.
--fit prints the least-squares activation constants for the runs without offloading.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doctor.probes import vram  # noqa: E402


def config_of(shape: dict) -> dict:
    return {"hidden_size": shape["hidden"], "intermediate_size": shape["intermediate"],
            "num_hidden_layers": shape["layers"], "num_attention_heads": shape["heads"],
            "num_key_value_heads": shape["kv_heads"], "vocab_size": shape["vocab"], "tie_word_embeddings": False}


def run_settings(run: dict) -> vram.RunSettings:
    return vram.RunSettings(batch=run["batch"], seq=run["seq"], rank=run["rank"], load_in_4bit=run["load_in_4bit"],
                            full_finetuning=bool(run.get("full_finetuning")), optimizer=run["optim"],
                            gradient_checkpointing=run["gc"])


def measured_mib(run: dict, context: dict) -> float | None:
    if "peak_reserved_mib" not in run:
        return None
    return run["peak_reserved_mib"] + float(context.get("context_mib", vram.OVERHEAD_MIB))


def label(run: dict) -> str:
    kind = "full" if run.get("full_finetuning") else ("4bit" if run["load_in_4bit"] else "16bit")
    return f"w{run['width']:<5} seq {run['seq']:<5} {kind:<5} gc={str(run['gc']):<7}"


def table(data: dict) -> tuple[list[str], list[float]]:
    lines = [f"{'run':<36} {'estimate':>9} {'measured':>9} {'est/meas':>8}  {'peak alloc':>10}  (MiB)"]
    errors = []
    for run in data["runs"]:
        meas = measured_mib(run, data.get("context", {}))
        if meas is None:
            lines.append(f"{label(run):<36} failed: {str(run.get('error', ''))[-120:]!r}")
            continue
        shape = vram.shape_from_config(config_of(data["shape"][str(run["width"])]))
        est = vram.estimate(shape, run_settings(run))
        ratio = est.total_mib / meas
        errors.append(ratio - 1)
        lines.append(f"{label(run):<36} {est.total_mib:>9,.0f} {meas:>9,.0f} {ratio:>8.2f}  "
                     f"{run['peak_allocated_mib']:>10,.0f}")
    return lines, errors


def fit(data: dict) -> str:
    """Least squares for ACT_H, ACT_I on the runs without checkpointing (activations dominate)."""
    import numpy as np

    rows, rhs = [], []
    ctx = float(data.get("context", {}).get("context_mib", vram.OVERHEAD_MIB))
    for run in data["runs"]:
        if run["gc"] is not False or "peak_reserved_mib" not in run:
            continue
        s = data["shape"][str(run["width"])]
        shape = vram.shape_from_config(config_of(s))
        est = vram.estimate(shape, run_settings(run))
        rest = (est.total_mib - est.activations_mib - est.overhead_mib) * vram.MIB
        tokens = run["batch"] * run["seq"] * s["layers"]
        rows.append([tokens * s["hidden"], tokens * s["intermediate"]])
        rhs.append(run["peak_reserved_mib"] * vram.MIB - rest - 0 * ctx)
    if len(rows) < 2:
        return "not enough runs without checkpointing to fit"
    sol, *_ = np.linalg.lstsq(np.array(rows, float), np.array(rhs, float), rcond=None)
    return f"fit on {len(rows)} runs without checkpointing: ACT_H={sol[0]:.1f} ACT_I={sol[1]:.1f}"


def main(argv: list[str]) -> int:
    data = json.loads(Path(argv[0]).read_text())
    lines, errors = table(data)
    print(f"GPU: {next((r.get('gpu') for r in data['runs'] if r.get('gpu')), '?')}; "
          f"context measured alone: {data.get('context', {}).get('context_mib')} MiB")
    print("\n".join(lines))
    if errors:
        worst = max(errors, key=abs)
        inside = sum(abs(e) <= vram.BAND for e in errors)
        print(f"{len(errors)} runs; largest error {worst:+.1%}; mean |error| "
              f"{sum(abs(e) for e in errors) / len(errors):.1%}; inside the stated ±{vram.BAND:.0%}: "
              f"{inside}/{len(errors)}")
    if "--fit" in argv:
        print(fit(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
