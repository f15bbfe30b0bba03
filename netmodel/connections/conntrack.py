"""Conntrack tables: how full the busiest node's is in steady state, and when one is full.

Every connection holds an entry on each cluster node of its path (client or entry node,
proxy, server; DNS lookups and kept-alive upstreams not counted) from its set-up to its
last reply, and `conntrack_time_wait` after that. By Little's law a node holds (connections
opened through it per second) x (their mean lifetime + the TIME_WAIT hold).

During a run a node's table holds the entries of the run's connections and, from before
the run, its TIME_WAIT steady state (`conntrack_prefill`): a short run starts where a
real node would be, those entries expiring evenly over the TIME_WAIT hold. A new
connection's SYN finds a full table (nf_conntrack_max) and is dropped.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from netmodel.connections.placement import Connections
from netmodel.connections.workload import Demand


def conntrack_entries(demand: Demand, connections: Connections, end: np.ndarray, since: float,
                      until: float, stop: float, time_wait: float) -> float:
    """Conntrack entries on the busiest node, from the connections opened in [since, until];
    one still open at `stop` counts to `stop`. `end` holds each request's end (NaN: not
    ended). NaN for an empty window."""
    window = until - since
    opened_in_run = (demand.clock < stop) & (connections.drop == 0)
    if window <= 0 or not opened_in_run.any():
        return float("nan")
    last_request = demand.first + demand.requests - 1
    closed = np.where(np.isnan(end[last_request]), stop, end[last_request])
    mine = np.flatnonzero(opened_in_run & (demand.clock >= since) & (demand.clock <= until))
    nodes = connections.path_nodes[mine]
    on = nodes >= 0  # a cluster node (not absent, not the control plane's)
    if not on.any():
        return float("nan")
    lifetime = np.repeat(closed[mine] - demand.clock[mine], on.sum(axis=1))
    # row by row: each node's lifetimes are summed in connection order
    rate = np.bincount(nodes[on])
    held = np.bincount(nodes[on], weights=lifetime)
    used = rate > 0
    return float(np.max(rate[used] / window * (held[used] / rate[used] + time_wait)))


def conntrack_prefill(demand: Demand, connections: Connections, time_wait: float,
                      nodes: int) -> np.ndarray:
    """Entries in TIME_WAIT on each node when the run starts: the node's rate of new
    connections (with a set-up) over the arrivals x `time_wait`, rounded down."""
    window = demand.last_arrival
    counted = (connections.drop == 0)
    if window <= 0 or not counted.any():
        return np.zeros(nodes, dtype=np.int64)
    path = connections.path_nodes[counted]
    through = np.bincount(path[path >= 0], minlength=nodes)[:nodes]
    return (through / window * time_wait).astype(np.int64)


class ConntrackTables:
    """Each node's conntrack entries during a run (the reference engine's; the fast
    engine's loop keeps the same counts in arrays)."""

    def __init__(self, prefill: np.ndarray, limit: int, time_wait: float):
        self.prefill, self.limit, self.time_wait = prefill.tolist(), limit, time_wait
        self.live = [0] * len(self.prefill)
        self.expiring: list[deque] = [deque() for _ in self.prefill]

    def full(self, nodes: list[int], now: float) -> bool:
        """Whether a table on `nodes` holds nf_conntrack_max entries at `now`."""
        for node in nodes:
            expiring = self.expiring[node]
            while expiring and expiring[0] <= now:
                expiring.popleft()
                self.live[node] -= 1
            before = int(self.prefill[node] * (self.time_wait - now) / self.time_wait) \
                if now < self.time_wait else 0
            if before + self.live[node] >= self.limit:
                return True
        return False

    def insert(self, nodes: list[int]) -> None:
        for node in nodes:
            self.live[node] += 1

    def close(self, nodes: list[int], now: float) -> None:
        """The connection closed: its entries expire `time_wait` from now."""
        for node in nodes:
            self.expiring[node].append(now + self.time_wait)
