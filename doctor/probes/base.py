"""What every probe returns, and the registry `kb test` uses to run a probe on an example.

A probe looks at one kind of target and returns facts and located observations. It never
decides severity or wording: the knowledge entry named by an observation does that.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from doctor.facts import Facts
from doctor.findings import AreaStatus, Observation


@dataclass
class ProbeResult:
    facts: Facts = field(default_factory=Facts)
    observations: list[Observation] = field(default_factory=list)
    areas: list[AreaStatus] = field(default_factory=list)

    def merge(self, other: "ProbeResult") -> "ProbeResult":
        return ProbeResult(
            facts=self.facts.merged(other.facts),
            observations=[*self.observations, *other.observations],
            areas=[*self.areas, *other.areas],
        )


# probe name -> function(example input text, options) -> observations. Used by `kb test`
# to check entries that probes emit (`observed: true`) against their own examples.
ExampleRunner = Callable[[str, dict[str, Any]], list[Observation]]
_EXAMPLE_RUNNERS: dict[str, ExampleRunner] = {}

# Modules that register example runners; imported lazily so start-up stays light.
_RUNNER_MODULES: dict[str, str] = {
    "dataset": "doctor.probes.dataset",
    "packages": "doctor.probes.packages",
    "env": "doctor.probes.env",
    "script": "doctor.probes.script",
    "model": "doctor.probes.model",
    "config": "doctor.probes.config",
    "training": "doctor.watchdog_rules",
    "smoke": "doctor.smoke.runner",
    "doctor": "doctor.scan",
    "distributed": "doctor.distributed.examples",
}


def example_runner(name: str) -> Callable[[ExampleRunner], ExampleRunner]:
    def register(fn: ExampleRunner) -> ExampleRunner:
        _EXAMPLE_RUNNERS[name] = fn
        return fn
    return register


def get_example_runner(name: str) -> ExampleRunner | None:
    if name not in _EXAMPLE_RUNNERS:
        module = _RUNNER_MODULES.get(name.split(".", 1)[0])
        if module:
            try:
                importlib.import_module(module)
            except ImportError:
                return None
    return _EXAMPLE_RUNNERS.get(name)
