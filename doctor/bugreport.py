"""`unsloth-doctor report`: what a bug report needs beyond a scan, computed before rendering:
a VRAM estimate for the model folder the scan examined (read from its headers, as the smoke
test estimates it) and the data of the HTML report's plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from doctor.results.plots import plots_for
from doctor.results.report import Report

DEFAULT_SEQ = 2048   # the smoke test's default sequence length


def model_folders(report: Report) -> list[str]:
    """Model folders the scan examined (a GGUF file is no folder the estimate reads)."""
    return [a.path for a in report.areas if a.area == "model" and a.path and a.ran and Path(a.path).is_dir()]


def vram_estimate_facts(folder: str, seq: int, memory_mib: float | None) -> dict[str, Any]:
    """The smoke test's estimate of one LoRA step (batch 1), as its facts; {} when the folder
    cannot be estimated (the scan's findings say why)."""
    from doctor.smoketest import estimate as est

    try:
        config, tensors = est.read_folder(Path(folder))
        found = est.estimate(config, tensors, batch=1, seq=seq)
    except est.EstimateError:
        return {}
    return {**found.as_facts(), "smoke.estimate.gpu_memory_mib": memory_mib, "smoke.estimate.model": folder,
            "smoke.estimate.batch": 1, "smoke.estimate.seq": seq}


HOSTED = (("Colab", ("COLAB_RELEASE_TAG", "COLAB_GPU")), ("Kaggle", ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE")))


def hosted_platform(environ: Mapping[str, str]) -> str:
    """Where the notebook runs, as Unsloth's issue template asks: Colab, Kaggle, or local / cloud."""
    return next((name for name, keys in HOSTED if any(k in environ for k in keys)), "local / cloud")


def prepare(report: Report, max_seq_length: int | None = None, environ: Mapping[str, str] | None = None) -> Report:
    """Add the platform, the estimate (unless a smoke test made one) and the plots to a scan's report."""
    import os

    from doctor.smoketest.estimate import gpu_memory_mib

    report.facts.setdefault("platform.hosted", hosted_platform(os.environ if environ is None else environ))

    smoke_facts = report.smoke.facts if report.smoke else {}
    folders = model_folders(report)
    if folders and "smoke.estimate.total_mib" not in {**smoke_facts, **report.facts}:
        report.facts.update(vram_estimate_facts(folders[0], max_seq_length or DEFAULT_SEQ,
                                                gpu_memory_mib(report.facts)))
    report.plots = plots_for(report.facts, report.smoke)
    return report
