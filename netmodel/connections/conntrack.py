"""How full the busiest node's conntrack table is in steady state.

Every connection holds an entry on each cluster node of its path (client or entry node,
proxy, server; DNS lookups and kept-alive upstreams not counted) from its set-up to its
last reply, and `conntrack_time_wait` after that. By Little's law a node holds (connections
opened through it per second) x (their mean lifetime + the TIME_WAIT hold).
"""

from __future__ import annotations

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
    rate: dict[int, int] = {}
    held: dict[int, float] = {}
    mine = opened_in_run & (demand.clock >= since) & (demand.clock <= until)
    for c in np.flatnonzero(mine).tolist():
        for node in sorted(i for i in connections.on_path(c) if i >= 0):
            rate[node] = rate.get(node, 0) + 1
            held[node] = held.get(node, 0.0) + closed[c] - demand.clock[c]
    if not rate:
        return float("nan")
    return max(n / window * (held[node] / n + time_wait) for node, n in rate.items())
