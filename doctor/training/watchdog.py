"""`DoctorCallback`: a transformers `TrainerCallback` that watches a real training run.

    from doctor import DoctorCallback
    trainer = SFTTrainer(..., callbacks=[DoctorCallback(policy="stop")])

It reads each `on_log` record (set `logging_steps=1` to check every step), applies the rules in
`doctor.training.rules`, and reports through the knowledge base (`TRAIN-*` entries), the same
findings `unsloth-doctor` prints. With policy="stop" an error stops the run cleanly
(`control.should_training_stop = True`) so the last good checkpoint is kept.
This module imports transformers; `import doctor` does not load it until asked for.
"""
from __future__ import annotations

import sys
from typing import IO, Any, Callable, Iterable

from transformers import TrainerCallback

from doctor.findings import Finding, Observation
from doctor.training.rules import ERRORS, Watcher, WatchPolicy

__all__ = ["DoctorCallback"]


def _default_printer(stream: IO[str]) -> Callable[[Finding], None]:
    def show(f: Finding) -> None:
        print(f"[unsloth-doctor] {f.severity.value.upper()} {f.id}: {f.title}\n    {f.message}", file=stream, flush=True)
    return show


class DoctorCallback(TrainerCallback):
    """Watch loss and gradient norms; warn (policy="warn") or also stop (policy="stop")."""

    def __init__(self, policy: str = "warn", *, stop_on: Iterable[str] = ERRORS, spike_factor: float = 10.0,
                 spike_min_history: int = 5, flat_steps: int = 20, flat_min_drop: float = 0.01,
                 high_lr: float = 1e-3, zero_loss_steps: int = 1, kb: Any = None,
                 on_finding: Callable[[Finding], None] | None = None, stream: IO[str] | None = None) -> None:
        self.policy = WatchPolicy(action=policy, stop_on=frozenset(stop_on), spike_factor=spike_factor,
                                  spike_min_history=spike_min_history, flat_steps=flat_steps,
                                  flat_min_drop=flat_min_drop, high_lr=high_lr, zero_loss_steps=zero_loss_steps)
        self._kb = kb
        self._show = on_finding or _default_printer(stream or sys.stderr)
        self.watcher = Watcher(self.policy)
        self.observations: list[Observation] = []
        self.findings: list[Finding] = []
        self.stopped_by: str | None = None

    def _knowledge(self) -> Any:
        if self._kb is None:
            from doctor.kb import load_knowledge
            self._kb = load_knowledge()
        return self._kb

    def on_train_begin(self, args, state, control, **kwargs):
        self.watcher = Watcher(self.policy)  # a second train() starts clean
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return control
        found = self.watcher.observe(state.global_step, logs, learning_rate=getattr(args, "learning_rate", None))
        if not found:
            return control
        from doctor.engine import findings_from_observations

        self.observations += found
        for finding in findings_from_observations(self._knowledge(), found):
            self.findings.append(finding)
            self._show(finding)
            if self.policy.stops(finding.id) and self.stopped_by is None:
                self.stopped_by = finding.id
        if self.stopped_by:
            control.should_training_stop = True
        return control
