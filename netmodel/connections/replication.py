"""One replication of one scenario point, described for any engine.

`describe` builds everything a replication is before an engine walks it: the cluster
(endpoint Pods on nodes, rule order), the control plane's churn and what every node
programmed (with `control_plane.enabled`), the clients' demand, each connection placed on
arrival, and the plans of its route. An engine only walks the plans through its
stations and fills the records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from netmodel.cluster.topology import Topology, build_topology
from netmodel.connections.conntrack import TableSpec, conntrack_prefill, conntrack_table
from netmodel.connections.placement import Connection, Connections, Placer, place_connections, route_of
from netmodel.connections.records import Recorder, Records
from netmodel.connections.vectorized import place_static
from netmodel.connections.workload import Demand, draw_demand
from netmodel.controlplane.churn import ProgrammedEndpoints
from netmodel.controlplane.syncloop import ControlPlaneResult, couple
from netmodel.costs.model import CostModel, Step
from netmodel.costs.profile import Profile
from netmodel.scenario.schema import Scenario
from netmodel.streams import streams
from netmodel.vocabulary import TRAFFIC_KINDS

Plans = tuple[tuple[Step, ...], tuple[Step, ...]]
"""A route's (set-up steps, per-request steps)."""


@dataclass(frozen=True)
class Replication:
    """Replication `index` of a scenario point, placed and planned."""

    scenario: Scenario
    profile: Profile
    index: int
    costs: CostModel
    topology: Topology
    demand: Demand
    connections: Connections
    plans: tuple[Plans, ...]
    """The plans of each of `connections.routes`."""
    stop: float
    """When the run stops: the last arrival plus `run.drain` (default: the timeout)."""
    conntrack: TableSpec
    """The conntrack table every node has (netfilter's or the BPF map; conntrack.py)."""
    conntrack_prefill: np.ndarray
    """Closed connections' entries on each node when the run starts (conntrack.py)."""
    control: ControlPlaneResult | None
    programmed: ProgrammedEndpoints | None

    def serving(self, endpoint: int, t: float) -> bool:
        """Whether the endpoint's Pod still serves at `t` (always, without churn)."""
        return self.programmed is None or self.programmed.serving(endpoint, t)

    def recorder(self) -> Recorder:
        """Fresh records, with what placement decided written in."""
        return Recorder(self.demand, self.connections, self.stop)

    def finish(self, recorder: Recorder) -> Records:
        """The records of the walked run."""
        records = recorder.finish(self.scenario, self.demand, self.connections,
                                  self.topology.endpoint_offsets, self.stop)
        return dataclasses.replace(records, control=self.control) if self.control else records

    def connection(self, c: int) -> Connection:
        """Connection `c` (not dropped on arrival) as `Placer.connect` gives it, walks and all."""
        conns = self.connections
        kind = self.kind(c)
        placer = Placer(self.scenario, self.costs, self.topology, self.programmed)
        return placer.connect(kind, int(self.demand.service[c]), conns.nodes(c), int(conns.endpoint[c]),
                              int(conns.position[c]), int(conns.replica[c]), bool(conns.dns_upstream[c]))

    def kind(self, c: int) -> str:
        return TRAFFIC_KINDS[self.demand.kind[c]]


def describe(scenario: Scenario, profile: Profile, index: int) -> Replication:
    """Replication `index` of `scenario` under `profile`, ready for an engine."""
    costs = CostModel(profile, scenario)
    rng = streams(scenario.run.seed, index)
    topology = build_topology(scenario, rng)
    control, programmed = (couple(scenario, profile, topology, index)
                           if scenario.control_plane.enabled else (None, None))
    demand = draw_demand(scenario, topology, rng)
    if programmed is None:  # the cluster stays as it is: every connection at once
        connections = place_static(scenario, costs, topology, demand)
    else:
        placer = Placer(scenario, costs, topology, programmed)
        connections = place_connections(placer, [TRAFFIC_KINDS[k] for k in demand.kind.tolist()],
                                        demand.service, demand.draws, demand.clock)
    demand = dataclasses.replace(demand, draws={})  # spent: 40 B per connection let go
    plans = tuple(costs.route_plans(route_of(scenario, kind, placement))
                  for kind, placement in connections.routes)
    drain = scenario.run.drain if scenario.run.drain is not None else scenario.workload.timeout
    table = conntrack_table(scenario)
    prefill = conntrack_prefill(demand, connections, table.hold, topology.nodes)
    return Replication(scenario, profile, index, costs, topology, demand, connections, plans,
                       demand.last_arrival + drain, table, prefill, control, programmed)
