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
