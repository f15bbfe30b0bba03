"""Per-request records: what became of every request of one replication.

`Recorder` holds the arrays an engine fills. What placement decided is written before
the walk (kind; for each connection that arrived before the run stopped, its first
request's start and rule-lookup CPU, the endpoint, whether it crosses nodes; a
connection that goes nowhere is dropped on arrival); the engine writes each request's
start, end, status and softirq CPU. `Recorder.finish` turns requests still in flight past
the timeout into timeouts and adds the conntrack estimate, giving the frozen `Records`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netmodel.connections.conntrack import conntrack_entries, conntrack_table
from netmodel.connections.placement import ABSENT, Connections, path_nodes
from netmodel.connections.workload import Demand
from netmodel.controlplane.syncloop import ControlPlaneResult
from netmodel.scenario.schema import Scenario
from netmodel.vocabulary import IN_FLIGHT, PACKET_DROPS, TIMEOUT


@dataclass(frozen=True)
class Records:
    """Per-request records of one replication (arrays indexed by request id).

    `status` is IN_FLIGHT, COMPLETED or a drop code (netmodel.vocabulary); `start`/`end` in
    seconds (NaN when not reached); `connected`: when a connection's set-up ended, on its
    first request (NaN on the others, for a set-up that failed or is not modelled, as
    kubectl's); `lookup_cpu`/`softirq_cpu` in CPU seconds charged to
    the request (a connection's set-up to its first request); `cross_node` says whether
    the request crossed the node network between nodes (a second node hop included);
    `kind` indexes TRAFFIC_KINDS; `endpoint` is the flat index of the endpoint served
    (-1: none), endpoints of Service s being `endpoint_offsets[s]:endpoint_offsets[s+1]`
    (Pods created by churn during the run have ids from `endpoint_offsets[-1]` on).
    """

    kind: np.ndarray
    status: np.ndarray
    start: np.ndarray
    end: np.ndarray
    lookup_cpu: np.ndarray
    softirq_cpu: np.ndarray
    cross_node: np.ndarray
    endpoint: np.ndarray
    endpoint_offsets: np.ndarray
    warmup: float
    last_arrival: float
    connected: np.ndarray | None = None
    packet_drops: np.ndarray | None = None
    """(requests, PACKET_DROPS): packets of each request dropped at each point (each sent again)."""
    ct_evictions: np.ndarray | None = None
    """Per request: entries a full LRU conntrack map (BPF) evicted for its connection's set-up."""
    control: ControlPlaneResult | None = None
    """The replication's control-plane run, when `control_plane.enabled`."""
    conntrack_entries: float = float("nan")
    """Steady-state conntrack entries on the busiest node (`conntrack_entries`)."""
    events: int = 0
    """Discrete events the engine processed (0: it did not count them)."""


class Recorder:
    """The arrays of one replication's records while an engine runs it."""

    def __init__(self, demand: Demand, connections: Connections, stop: float):
        n = demand.total_requests
        first, count = demand.first, demand.requests
        self.kind = np.repeat(demand.kind, count).astype(np.int8)
        self.status = np.zeros(n, dtype=np.int8)
        self.start = np.full(n, np.nan)
        self.end = np.full(n, np.nan)
        self.connected = np.full(n, np.nan)
        self.packet_drops = np.zeros((n, len(PACKET_DROPS)), dtype=np.int16)
        self.ct_evictions = np.zeros(n, dtype=np.int16)
        self.lookup_cpu = np.zeros(n)
        self.softirq_cpu = np.zeros(n)
        clock = demand.clock
        arrived = clock < stop  # an arrival at the stop instant is not processed
        placed = arrived & (connections.drop == 0)
        self.cross = np.repeat(placed & _crossing(connections.node), count)
        self.endpoint = np.repeat(np.where(placed, connections.endpoint, -1), count).astype(np.int32)
        self.start[first[placed]] = clock[placed]
        self.lookup_cpu[first[placed]] = connections.lookup_cpu[placed]
        for c in np.flatnonzero(arrived & (connections.drop != 0)).tolist():
            self.drop(int(first[c]), int(count[c]), int(connections.drop[c]), float(clock[c]))

    def drop(self, r0: int, n: int, code: int, now: float) -> None:
        """Requests r0..r0+n-1 fail at `now` (a connection refused at set-up, or whose Pod
        is gone mid-way); those not yet started start now."""
        self.start[r0:r0 + n] = np.where(np.isnan(self.start[r0:r0 + n]), now, self.start[r0:r0 + n])
        self.end[r0:r0 + n] = now
        self.status[r0:r0 + n] = code

    def finish(self, scenario: Scenario, demand: Demand, connections: Connections,
               endpoint_offsets: np.ndarray, stop: float) -> Records:
        """The records once the run stopped at `stop`: a request in flight for longer than
        the timeout has timed out."""
        started = ~np.isnan(self.start)
        late = (self.status == IN_FLIGHT) & started & (stop - self.start > scenario.workload.timeout)
        self.status[late] = TIMEOUT
        run = scenario.run
        last = demand.last_arrival
        conntrack = conntrack_entries(demand, connections, self.start, self.end, run.warmup,
                                      last, stop, conntrack_table(scenario).hold)
        return Records(self.kind, self.status, self.start, self.end, self.lookup_cpu,
                       self.softirq_cpu, self.cross, self.endpoint, endpoint_offsets, run.warmup,
                       last, connected=self.connected, packet_drops=self.packet_drops,
                       ct_evictions=self.ct_evictions, conntrack_entries=conntrack)


def _crossing(node: np.ndarray, block: int = 1 << 14) -> np.ndarray:
    """Whether each connection's requests cross two nodes or more (`path_nodes`), a block
    of connections at a time (the path-node table of all of them would be the recorder's
    peak)."""
    return np.concatenate([np.count_nonzero(path_nodes(node[lo:lo + block]) != ABSENT, axis=1) > 1
                           for lo in range(0, len(node), block)] or [np.zeros(0, dtype=bool)])
