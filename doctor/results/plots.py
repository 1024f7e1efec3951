"""The data of the HTML report's plots, computed from a report's facts and smoke result before
any reporter runs: where a plot says more than a table. Pure functions over plain data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Union

if TYPE_CHECKING:
    from doctor.results.smoke import SmokeReport


@dataclass(frozen=True)
class Histogram:
    """Counts in equal-width bins from 0, and a marked value on the same axis."""

    title: str
    bin_width: float
    counts: tuple[int, ...]
    x_label: str
    marker: float | None = None
    marker_label: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Segment:
    label: str
    value: float


@dataclass(frozen=True)
class StackedBar:
    """Parts of one total against a limit (and a softer line below it)."""

    title: str
    parts: tuple[Segment, ...]
    unit: str
    limit: float | None = None
    limit_label: str = ""
    soft_limit: float | None = None
    soft_label: str = ""
    caption: str = ""

    @property
    def total(self) -> float:
        return sum(p.value for p in self.parts)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    ok: bool = True
    note: str = ""


@dataclass(frozen=True)
class BarChart:
    """One horizontal bar per item, in order."""

    title: str
    bars: tuple[Bar, ...]
    unit: str
    caption: str = ""


Plot = Union[Histogram, StackedBar, BarChart]

HEADROOM = 0.90   # the smoke test's estimate: "fits" means under 90% of the GPU's memory


def token_histogram(facts: Mapping[str, Any]) -> Histogram | None:
    data = facts.get("dataset.tokens.histogram")
    if not isinstance(data, Mapping) or not data.get("counts"):
        return None
    limit = data.get("max_seq_length")
    truncated = facts.get("dataset.tokens.truncated_rows")
    caption = f"{data.get('rows', 0):,} rows measured in {facts.get('dataset.path', 'the dataset')}; longest " \
              f"{data.get('longest', 0):,} tokens"
    if limit:
        caption += f"; {truncated or 0:,} rows longer than max_seq_length {limit:,}"
    else:
        caption += "; no max_seq_length given (--max-seq-length or the project configuration)"
    return Histogram("Token length per row", float(data["bin_width"]), tuple(int(c) for c in data["counts"]),
                     "tokens per row", float(limit) if limit else None,
                     f"max_seq_length {limit:,}" if limit else "", caption)


# The estimate's parts (doctor/probes/vram.py VramEstimate.parts), as the facts name them.
VRAM_PARTS = (("weights", "weights_mib"), ("trainable + gradients", "trainable_mib"),
              ("optimizer state", "optimizer_mib"), ("activations", "activations_mib"),
              ("logits (chunked loss)", "logits_mib"), ("CUDA context", "overhead_mib"))


def _gpu_memory(facts: Mapping[str, Any]) -> float | None:
    memory = facts.get("smoke.estimate.gpu_memory_mib") or facts.get("gpu.0.memory_total_mib")
    return float(memory) if memory else None


def _vram_plot(parts: tuple[Segment, ...], memory: float | None, what: str, band: str,
               title: str = "VRAM estimate against the GPU's memory") -> StackedBar:
    total = sum(p.value for p in parts)
    if memory is None:
        caption = f"Estimated {total:,.0f} MiB {band}for {what}; no GPU memory known here."
    else:
        verdict = "fits" if total <= HEADROOM * memory else "does not fit"
        caption = (f"Estimated {total:,.0f} MiB {band}for {what}: {verdict} under {HEADROOM:.0%} of the GPU's "
                   f"{memory:,.0f} MiB.")
    return StackedBar(title, parts, "MiB", memory,
                      f"GPU memory {memory:,.0f} MiB" if memory else "",
                      HEADROOM * memory if memory else None, f"{HEADROOM:.0%}" if memory else "", caption)


def vram_bar(facts: Mapping[str, Any]) -> StackedBar | None:
    """The smoke test's estimate of one LoRA step on a --model folder."""
    if facts.get("smoke.estimate.total_mib") is None:
        return None
    parts = tuple(Segment(label, float(facts.get(f"smoke.estimate.{key}") or 0)) for label, key in VRAM_PARTS)
    low, high = facts.get("smoke.estimate.low_mib"), facts.get("smoke.estimate.high_mib")
    band = f"({low:,.0f} to {high:,.0f}) " if low and high else ""
    where = facts.get("smoke.estimate.model") or "the model"
    shape = f"batch {facts.get('smoke.estimate.batch', 1)}, sequence {facts.get('smoke.estimate.seq', '?')}"
    return _vram_plot(parts, _gpu_memory(facts), f"one LoRA step on {where} ({shape})", band)


def run_vram_bars(facts: Mapping[str, Any]) -> list[StackedBar]:
    """The estimate of each run a script or config describes (doctor/probes/runmemory.py)."""
    out = []
    for key, fact in sorted(facts.items()):
        if not key.startswith("vram.run:") or not isinstance(fact, Mapping) or not fact.get("parts"):
            continue
        parts = tuple(Segment(str(label), float(value)) for label, value in fact["parts"])
        what = (f"{fact.get('model')} ({fact.get('kind')}, batch {fact.get('batch')} x {fact.get('seq')} tokens) "
                f"in {fact.get('path')}")
        band = f"({fact.get('low_mib'):,.0f} to {fact.get('high_mib'):,.0f}) " if fact.get("low_mib") else ""
        out.append(_vram_plot(parts, _gpu_memory(facts), what, band, f"VRAM of the run in {fact.get('path')}"))
    return out


def stage_times(smoke: SmokeReport | None) -> BarChart | None:
    if smoke is None or not smoke.stages:
        return None
    bars = tuple(Bar(s.name, s.seconds, s.ok, "skipped" if s.skipped else "" if s.ok else "failed")
                 for s in smoke.stages)
    failed = smoke.failed_stage
    caption = f"{len(bars)} stages in {smoke.seconds:.1f} s" + (f"; failed at {failed.name}" if failed else "")
    return BarChart("Smoke test: seconds per stage", bars, "s", caption)


def plots_for(facts: Mapping[str, Any], smoke: SmokeReport | None = None) -> list[Plot]:
    """Every plot the data allows, in reading order; none where a table would say as much."""
    found = [token_histogram(facts), vram_bar({**(smoke.facts if smoke else {}), **facts}), *run_vram_bars(facts),
             stage_times(smoke)]
    return [p for p in found if p is not None]
