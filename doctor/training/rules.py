"""The training watchdog's rules: pure functions over the trainer's log records.

No transformers import here (`kb test` runs these on recorded log histories); the
`TrainerCallback` in `doctor.training.watchdog` feeds each `on_log` record to a `Watcher`.

Conditions, each emitted as an observation of a `TRAIN-*` knowledge entry:
- TRAIN-LOSS-NOT-FINITE  the logged loss (or grad norm) is NaN or ±Inf;
- TRAIN-GRAD-SPIKE       grad_norm above `spike_factor` × the running median of earlier norms;
- TRAIN-LOSS-ZERO        a loss of exactly 0.0 (every label masked to -100), but not when
                         that step's grad norm is NaN/Inf: transformers' logging_nan_inf_filter
                         (on by default) logs a NaN loss as the mean of earlier ones, which
                         reads 0.0 with logging_steps=1;
- TRAIN-LOSS-FLAT        no fall in loss over the first `flat_steps` logged steps while the
                         learning rate is at or above `high_lr`.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from doctor.findings import Evidence, Observation

ERRORS = frozenset({"TRAIN-LOSS-NOT-FINITE", "TRAIN-LOSS-ZERO"})


@dataclass(frozen=True)
class WatchPolicy:
    action: str = "warn"                 # "warn": report only; "stop": also stop the run
    stop_on: frozenset[str] = ERRORS     # which conditions stop the run under action="stop"
    spike_factor: float = 10.0           # grad_norm > factor × running median is a spike
    spike_min_history: int = 5           # norms needed before a median means anything
    zero_loss_steps: int = 1             # consecutive logged zero losses before reporting
    flat_steps: int = 20                 # logged steps to judge "no fall" over
    flat_min_drop: float = 0.01          # relative fall below this counts as no fall
    high_lr: float = 1e-3                # "flat" is reported only at or above this lr

    def __post_init__(self) -> None:
        if self.action not in ("warn", "stop"):
            raise ValueError(f"policy must be 'warn' or 'stop', not {self.action!r}")

    def stops(self, entry_id: str) -> bool:
        return self.action == "stop" and entry_id in self.stop_on


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # transformers may log numbers as strings in some reporters
    except (TypeError, ValueError):
        return None


@dataclass
class Watcher:
    policy: WatchPolicy = field(default_factory=WatchPolicy)
    losses: list[tuple[int, float]] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    zero_run: int = 0
    reported: set[str] = field(default_factory=set)

    def observe(self, step: int, logs: Mapping[str, Any], learning_rate: float | None = None) -> list[Observation]:
        """Check one log record; each condition is reported once per run, a spike once per step."""
        out: list[Observation] = []
        loss = _number(logs.get("loss"))
        gnorm = _number(logs.get("grad_norm"))
        lr = _number(logs.get("learning_rate"))
        lr = lr if lr is not None else learning_rate
        evidence = (Evidence("observation", f"step {step}", {k: logs[k] for k in ("loss", "grad_norm", "learning_rate") if k in logs},
                             "trainer log"),)
        if (loss is not None and not math.isfinite(loss)) or (gnorm is not None and not math.isfinite(gnorm)):
            which = "loss" if loss is not None and not math.isfinite(loss) else "grad_norm"
            value = loss if which == "loss" else gnorm
            out += self._once("TRAIN-LOSS-NOT-FINITE", evidence, step=step, which=which, value=str(value), lr=lr)
        nan_filtered = loss == 0.0 and gnorm is not None and not math.isfinite(gnorm)
        if loss is not None and math.isfinite(loss) and not nan_filtered:
            self.zero_run = self.zero_run + 1 if loss == 0.0 else 0
            if self.zero_run >= self.policy.zero_loss_steps:
                out += self._once("TRAIN-LOSS-ZERO", evidence, step=step, steps=self.zero_run)
            self.losses.append((step, loss))
            out += self._flat(step, lr, evidence)
        if gnorm is not None and math.isfinite(gnorm):
            history = self.grad_norms
            if len(history) >= self.policy.spike_min_history:
                median = statistics.median(history)
                if median > 0 and gnorm > self.policy.spike_factor * median:
                    out.append(self._obs("TRAIN-GRAD-SPIKE", evidence, step=step, grad_norm=round(gnorm, 4),
                                         median=round(median, 4), ratio=round(gnorm / median, 1),
                                         factor=self.policy.spike_factor, lr=lr))
            history.append(gnorm)
        return out

    def _flat(self, step: int, lr: float | None, evidence: tuple[Evidence, ...]) -> list[Observation]:
        p = self.policy
        if len(self.losses) != p.flat_steps or lr is None or lr < p.high_lr:
            return []
        first = self.losses[: max(1, p.flat_steps // 4)]
        last = self.losses[-max(1, p.flat_steps // 4):]
        start = statistics.fmean(v for _, v in first)
        end = statistics.fmean(v for _, v in last)
        if start > 0 and (start - end) / start < p.flat_min_drop:
            return self._once("TRAIN-LOSS-FLAT", evidence, step=step, steps=p.flat_steps, start=round(start, 4),
                              end=round(end, 4), lr=lr)
        return []

    def _obs(self, entry_id: str, evidence: tuple[Evidence, ...], **values: Any) -> Observation:
        values["action"] = "stopping the run" if self.policy.stops(entry_id) else "the run goes on"
        return Observation(entry_id, values=values, evidence=evidence)

    def _once(self, entry_id: str, evidence: tuple[Evidence, ...], **values: Any) -> list[Observation]:
        if entry_id in self.reported:
            return []
        self.reported.add(entry_id)
        return [self._obs(entry_id, evidence, **values)]


def watch_history(history: Iterable[Mapping[str, Any]], policy: WatchPolicy | None = None) -> list[Observation]:
    """Run the rules over a finished `trainer.state.log_history`."""
    watcher = Watcher(policy or WatchPolicy())
    out: list[Observation] = []
    for i, record in enumerate(history, start=1):
        if "loss" in record or "grad_norm" in record:
            out += watcher.observe(int(record.get("step", i)), record)
    return out


def policy_from_options(options: Mapping[str, Any]) -> WatchPolicy:
    known = {k: v for k, v in options.items() if k in WatchPolicy.__dataclass_fields__}
    if "stop_on" in known:
        known["stop_on"] = frozenset(known["stop_on"])
    return WatchPolicy(**known)


def _log_history_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb examples: a JSON list of trainer log dicts, as in trainer.state.log_history."""
    return watch_history(json.loads(text), policy_from_options(options))


# kb test runs these on knowledge examples (`probe: NAME` in an entry's examples).
EXAMPLES = {
    "training.log_history": _log_history_example,
}
