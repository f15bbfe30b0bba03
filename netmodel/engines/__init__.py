"""Engines: ways to walk a described replication, chosen by name.

The contract is small. An engine has a `name`, says what it cannot run exactly
(`unsupported(scenario)` gives the reason, or None), and `run(replication)` walks the
connections of a `netmodel.connections.replication.Replication` through its stations and
returns its `Records`. Everything else (demand, placement, rule walks, plans, records,
conntrack) is the replication's, the same for every engine: engines differ only in how
they walk, and on the same replication every engine gives the same records
(tests/test_engines_agree.py). `fast` (a compiled event loop) is preferred; `simpy` is
the reference.
"""

from __future__ import annotations

from typing import Protocol

from netmodel.connections.records import Records
from netmodel.connections.replication import Replication, describe
from netmodel.costs.profile import Profile
from netmodel.engines.fast import FastEngine
from netmodel.engines.simpy_engine import SimPyEngine
from netmodel.errors import NetmodelError
from netmodel.scenario.schema import Scenario


class Engine(Protocol):
    name: str

    def unsupported(self, scenario: Scenario) -> str | None:
        """Why this engine cannot run `scenario`'s replications exactly, or None."""

    def run(self, replication: Replication) -> Records:
        """Walk the replication; return its per-request records."""


ENGINES: dict[str, Engine] = {engine.name: engine for engine in (FastEngine(), SimPyEngine())}
"""Every engine by name, in the order `auto` prefers them (the reference last)."""
AUTO = "auto"
ENGINE_CHOICES = (AUTO, *ENGINES)
"""What `--engine` takes: `auto` runs each replication on the first engine that runs it
exactly."""


def engine_for(scenario: Scenario, name: str = AUTO) -> tuple[Engine, str | None]:
    """The engine that runs `scenario`: the one called `name`, or (auto) the first in ENGINES
    that runs it exactly, with why the ones before it did not (None when the first did); a
    NetmodelError when the named one cannot."""
    if name == AUTO:
        skipped = []
        for engine in ENGINES.values():
            reason = engine.unsupported(scenario)
            if reason is None:
                return engine, ("; ".join(skipped) or None)
            skipped.append(f"{engine.name}: {reason}")
    if name not in ENGINES:
        raise NetmodelError(f"unknown engine {name!r} (known: {', '.join(ENGINE_CHOICES)})",
                            field="engine")
    reason = ENGINES[name].unsupported(scenario)
    if reason is not None:
        raise NetmodelError(f"engine {name} cannot run this point exactly: {reason}", field="engine")
    return ENGINES[name], None


def simulate(scenario: Scenario, profile: Profile, replication: int, engine: str = AUTO) -> Records:
    """Per-request records of replication `replication` of `scenario`, walked by `engine`
    (a name, or auto); with `control_plane.enabled` its churn and kube-proxies first, the
    connections then routed by what they programmed."""
    chosen, _ = engine_for(scenario, engine)
    return chosen.run(describe(scenario, profile, replication))
