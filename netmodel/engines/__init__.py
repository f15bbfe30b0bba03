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
"""Every engine by name."""


def engine_named(name: str) -> Engine:
    """The engine called `name`; a NetmodelError naming the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise NetmodelError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})",
                            field="engine") from None


def simulate(scenario: Scenario, profile: Profile, replication: int, engine: str = "simpy") -> Records:
    """Per-request records of replication `replication` of `scenario`, walked by `engine`;
    with `control_plane.enabled` its churn and kube-proxies first, the connections then
    routed by what they programmed."""
    described = describe(scenario, profile, replication)
    chosen = engine_named(engine)
    reason = chosen.unsupported(described)
    if reason is not None:
        raise NetmodelError(f"engine {engine} cannot run this point: {reason}", field="engine")
    return chosen.run(described)
