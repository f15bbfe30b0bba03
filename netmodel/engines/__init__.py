"""Engines: ways to walk a described replication, chosen by name.

The contract is small. An engine has a `name`, says what it cannot run exactly
(`unsupported(replication)` gives the reason, or None), and `run(replication)` walks the
connections of a `netmodel.connections.replication.Replication` through its stations and
returns its `Records`. Everything else (demand, placement, rule walks, plans, records,
conntrack) is the replication's, the same for every engine: engines differ only in how
they walk. On the same replication every engine must give the same records.
"""

from __future__ import annotations

from typing import Protocol

from netmodel.connections.records import Records
from netmodel.connections.replication import Replication, describe
from netmodel.costs.profile import Profile
from netmodel.engines.simpy_engine import SimPyEngine
from netmodel.errors import NetmodelError
from netmodel.scenario.schema import Scenario


class Engine(Protocol):
    name: str

    def unsupported(self, replication: Replication) -> str | None:
        """Why this engine cannot run `replication` exactly, or None."""

    def run(self, replication: Replication) -> Records:
        """Walk the replication; return its per-request records."""


ENGINES: dict[str, Engine] = {engine.name: engine for engine in (SimPyEngine(),)}
"""Every engine by name, in the order `auto` prefers them (the reference last)."""
AUTO = "auto"
ENGINE_CHOICES = (AUTO, *ENGINES)
"""What `--engine` takes: `auto` runs each replication on the first engine that runs it
exactly."""


def engine_for(replication: Replication, name: str = AUTO) -> Engine:
    """The engine that runs `replication`: the one called `name`, or (auto) the first in
    ENGINES that runs it exactly; a NetmodelError when the named one cannot."""
    if name == AUTO:
        return next(e for e in ENGINES.values() if e.unsupported(replication) is None)
    if name not in ENGINES:
        raise NetmodelError(f"unknown engine {name!r} (known: {', '.join(ENGINE_CHOICES)})",
                            field="engine")
    reason = ENGINES[name].unsupported(replication)
    if reason is not None:
        raise NetmodelError(f"engine {name} cannot run this point exactly: {reason}", field="engine")
    return ENGINES[name]


def simulate(scenario: Scenario, profile: Profile, replication: int, engine: str = AUTO) -> Records:
    """Per-request records of replication `replication` of `scenario`, walked by `engine`
    (a name, or auto); with `control_plane.enabled` its churn and kube-proxies first, the
    connections then routed by what they programmed."""
    described = describe(scenario, profile, replication)
    return engine_for(described, engine).run(described)
