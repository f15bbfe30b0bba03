"""Conntrack tables: which one a connection's entries live in, how full the busiest node's
is in steady state, and what a full one does.

The table is netfilter's (nf_conntrack_max entries, a closed connection's entry held
`cluster.conntrack_time_wait`) unless the data plane bypasses netfilter (eBPF host
routing): then it is the BPF conntrack map (`kube_proxy.ebpf.ct_map_size` entries, held
`ct_close_timeout`), an LRU map. Every connection holds an entry on each cluster node of
its path (client or entry node, proxy, server; DNS lookups and kept-alive upstreams not
counted) from its set-up to its last reply, and the hold after that. By Little's law a
node holds (connections opened through it per second) x (their mean lifetime + the hold).

During a run a node's table holds the entries of the run's connections and, from before
the run, its steady state of closed entries (`conntrack_prefill`): a short run starts
where a real node would be, those entries expiring evenly over the hold. A new
connection's SYN that finds netfilter's table full is dropped; one that finds the LRU map
full evicts the least recently used entry (a closed connection's first) and goes on: the
eviction is counted, not the packet dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from netmodel.connections.placement import Connections, path_nodes
from netmodel.connections.workload import Demand
from netmodel.paths.dataplane import ConntrackTable, dataplane_of
from netmodel.scenario.schema import Scenario


@dataclass(frozen=True)
class TableSpec:
    """A node's conntrack table: its name, size, how long a closed connection's entry
    stays, and whether a full one evicts (LRU) rather than refuses."""

    name: ConntrackTable
    limit: int
    hold: float
    lru: bool


def conntrack_table(scenario: Scenario) -> TableSpec:
    """The table a connection's entries live in on every node of its path."""
    if dataplane_of(scenario).conntrack_table == "bpf-ct":
        e = scenario.kube_proxy.ebpf
        return TableSpec("bpf-ct", e.ct_entries(), float(e.ct_close_timeout), True)
    c = scenario.cluster
    return TableSpec("nf_conntrack", c.conntrack_max, float(c.conntrack_time_wait), False)


def conntrack_entries(demand: Demand, connections: Connections, start: np.ndarray,
                      end: np.ndarray, since: float, until: float, stop: float,
                      time_wait: float) -> float:
    """Conntrack entries on the busiest node, from the connections opened in [since, until];
    one still open at `stop` counts to `stop`. `start` and `end` hold each request's (NaN:
    not reached): a connection opens when its first request starts. NaN for an empty
    window."""
    window = until - since
    nodes = int(connections.node.max(initial=-1)) + 1
    if window <= 0 or nodes <= 0:
        return float("nan")
    rate, held = np.zeros(nodes, dtype=np.int64), np.zeros(nodes)
    for lo in range(0, len(connections), _BLOCK):  # in blocks: ~100 B a connection of one
        _hold(rate, held, demand, connections, (start, end), slice(lo, lo + _BLOCK), (since, until, stop))
    used = rate > 0
    if not used.any():
        return float("nan")
    return float(np.max(rate[used] / window * (held[used] / rate[used] + time_wait)))


_BLOCK = 1 << 14


def _hold(rate: np.ndarray, held: np.ndarray, demand: Demand, connections: Connections,
          records: tuple[np.ndarray, np.ndarray], block: slice,
          times: tuple[float, float, float]) -> None:
    """Add a block of connections' entries to each node's count and summed lifetimes (in
    connection order, entry after entry: the sums do not depend on the blocks)."""
    (start, end), (since, until, stop) = records, times
    clock = start[demand.first[block]]  # when each opened, as the clock read it (NaN: never)
    mine = np.flatnonzero((clock < stop) & (connections.drop[block] == 0) & (clock >= since)
                          & (clock <= until))
    last_request = demand.first[block][mine] + demand.requests[block][mine] - 1
    closed = np.where(np.isnan(end[last_request]), stop, end[last_request])
    nodes = path_nodes(connections.node[block][mine])
    on = nodes >= 0  # a cluster node (not absent, not the control plane's)
    lifetime = np.repeat(closed - clock[mine], on.sum(axis=1))
    np.add.at(rate, nodes[on], 1)
    np.add.at(held, nodes[on], lifetime)


def conntrack_prefill(demand: Demand, connections: Connections, time_wait: float,
                      nodes: int) -> np.ndarray:
    """Entries in TIME_WAIT on each node when the run starts: the node's rate of new
    connections (with a set-up) over the arrivals x `time_wait`, rounded down."""
    window = demand.last_arrival
    counted = (connections.drop == 0)
    if window <= 0 or not counted.any():
        return np.zeros(nodes, dtype=np.int64)
    path = path_nodes(connections.node[counted])
    through = np.bincount(path[path >= 0], minlength=nodes)[:nodes]
    return (through / window * time_wait).astype(np.int64)


class ConntrackTables:
    """Each node's conntrack entries during a run (the reference engine's; the fast
    engine's loop keeps the same counts in arrays): prefilled closed entries (at most
    `cap` of them: an eviction takes the oldest), the run's entries (`live`, open or
    closed) and the run's closed entries in expiry order."""

    def __init__(self, prefill: np.ndarray, table: TableSpec):
        self.prefill, self.limit, self.hold, self.lru = prefill.tolist(), table.limit, table.hold, table.lru
        self.cap = list(self.prefill)
        self.live = [0] * len(self.prefill)
        self.expiring: list[deque] = [deque() for _ in self.prefill]

    def full(self, nodes: list[int], now: float) -> list[int]:
        """The nodes of `nodes` whose table holds its limit of entries at `now`."""
        return [node for node in nodes if self._held(node, now) >= self.limit]

    def _held(self, node: int, now: float) -> int:
        expiring = self.expiring[node]
        while expiring and expiring[0] <= now:
            expiring.popleft()
            self.live[node] -= 1
        return self._before(node, now) + self.live[node]

    def _before(self, node: int, now: float) -> int:
        """Prefilled entries still held at `now`."""
        left = int(self.prefill[node] * (self.hold - now) / self.hold) if now < self.hold else 0
        return min(left, self.cap[node])

    def evict(self, node: int, now: float) -> None:
        """An LRU table makes room: its oldest entry goes, the run's oldest closed one or a
        prefilled one (when only open connections are left, the count stays over)."""
        if self.expiring[node]:
            self.expiring[node].popleft()
            self.live[node] -= 1
        elif self._before(node, now) > 0:
            self.cap[node] = self._before(node, now) - 1

    def insert(self, nodes: list[int]) -> None:
        for node in nodes:
            self.live[node] += 1

    def close(self, nodes: list[int], now: float) -> None:
        """The connection closed: its entries expire the table's hold from now."""
        for node in nodes:
            self.expiring[node].append(now + self.hold)
