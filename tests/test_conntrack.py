"""Conntrack occupancy (`conntrack_entries`, `conntrack_fill`): Little's law against a direct
count of the entries the run held, and by hand on one node."""

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netmodel.connections import conntrack
from netmodel.connections.placement import path_nodes
from netmodel.connections.replication import describe
from netmodel.engines import ENGINES
from netmodel.runner.point import run_point
from tests.conftest import make_scenario, walked
from tests.strategies import scenarios


def test_one_node_constant_arrivals_by_hand(profile):
    """One node, same-node Pod-to-Pod requests 10 ms apart, each connection lasting its one
    request's latency L: entries = 100/s x (L + 2 s time_wait)."""
    sc = make_scenario(cluster={"nodes": 1, "conntrack_time_wait": "2s"},
                       services={"count": 1, "endpoints_per_service": 1},
                       workload={"rate": "100/s", "arrival": "constant", "mix": {"pod-pod-same-node": 1},
                                 "server": {"service_time_distribution": "constant"}},
                       run={"requests": 500, "warmup": "0s"})
    _, res = walked(sc, profile)
    latency = res.end - res.start
    assert np.ptp(latency) < 1e-12                       # no queueing: every one the same
    assert res.last_arrival == pytest.approx(5.0)        # arrivals at 0.01 .. 5.00 s
    assert res.conntrack_entries == pytest.approx(100 * (latency[0] + 2.0), rel=1e-9)


def test_littles_law_matches_the_entries_the_run_held(profile):
    """Two nodes, 400 connections/s (Poisson, keep-alive 3) for 30 s, time_wait 2 s, each
    connection on one or both nodes: the
    estimate for the busiest node is within 3% of the mean of a direct count (connections
    open or closed less than 2 s before) at 400 instants in [5 s, 25 s]."""
    sc = make_scenario(cluster={"nodes": 2, "conntrack_time_wait": "2s"},
                       services={"count": 4, "endpoints_per_service": 2},
                       workload={"rate": "1200/s", "requests_per_connection": 3,
                                 "mix": {"pod-clusterip": 3, "pod-pod-cross-node": 1}},
                       run={"requests": None, "duration": "30s", "warmup": "5s"})
    rep, res = walked(sc, profile)
    demand, conns = rep.demand, rep.connections
    placed = np.flatnonzero(conns.drop == 0)
    opened = demand.clock[placed]
    last = demand.first[placed] + demand.requests[placed] - 1   # a connection ends with its last reply
    closed = np.where(np.isnan(res.end[last]), np.inf, res.end[last])
    direct = []
    for node in (0, 1):
        on = np.array([node in conns.on_path(c) for c in placed])
        t = np.linspace(5, 25, 400)[:, None]
        held = (opened[on][None, :] <= t) & (t < closed[on][None, :] + 2.0)
        direct.append(held.sum(axis=1).mean())
    assert res.conntrack_entries == pytest.approx(max(direct), rel=0.03)
    assert max(direct) > 600       # ~ 400/s x 2 s, less the connections that miss the node


def test_fill_is_entries_over_conntrack_max(profile):
    sc = make_scenario(cluster={"nodes": 2, "conntrack_max": 1000},
                       services={"count": 2, "endpoints_per_service": 2},
                       workload={"rate": "500/s"}, run={"requests": 2000, "replications": 2})
    row = run_point(sc, profile)[0]
    assert row["conntrack_fill"] == pytest.approx(row["conntrack_entries"] / 1000)
    assert row["conntrack_fill"] > 1                      # 120 s of TIME_WAIT at 500/s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(requests=400), block=st.integers(1, 64))
def test_the_estimate_in_blocks_is_the_estimate_of_all_at_once(profile, sc, block):
    """conntrack_entries folds blocks of connections in connection order: for any block
    size it equals, bit for bit, each node's entries counted and their lifetimes summed
    over all connections at once (np.bincount, which sums in input order)."""
    _same_in_blocks(sc, profile, block)


def test_the_estimate_in_blocks_sums_each_nodes_lifetimes_in_connection_order(profile):
    """Two nodes, 3,000 connections in blocks of 7: summing each block apart and adding
    the blocks' sums would round differently; the blocks are folded entry after entry."""
    sc = make_scenario(cluster={"nodes": 2}, services={"count": 4, "endpoints_per_service": 2},
                       workload={"rate": "2000/s", "mix": {"pod-clusterip": 1}},
                       run={"requests": 3000, "warmup": "0.1s"})
    _same_in_blocks(sc, profile, 7)


def _same_in_blocks(sc, profile, block):
    rep = describe(sc, profile, 0)
    rec = ENGINES["fast"].run(rep)
    demand, conns = rep.demand, rep.connections
    args = (demand, conns, rec.start, rec.end, sc.run.warmup, demand.last_arrival, rep.stop,
            rep.conntrack.hold)
    with patch.object(conntrack, "_BLOCK", block):
        blocks = conntrack.conntrack_entries(*args)
    assert blocks == _at_once(*args) or (np.isnan(blocks) and np.isnan(_at_once(*args)))


def _at_once(demand, conns, start, end, since, until, stop, time_wait):
    """The estimate over all connections in one pass."""
    clock = demand.clock
    window = until - since
    mine = np.flatnonzero((clock < stop) & (conns.drop == 0) & (clock >= since) & (clock <= until))
    nodes = path_nodes(conns.node[mine])
    on = nodes >= 0
    if window <= 0 or not on.any():
        return float("nan")
    last = demand.first[mine] + demand.requests[mine] - 1
    closed = np.where(np.isnan(end[last]), stop, end[last])
    lifetime = np.repeat(closed - clock[mine], on.sum(axis=1))
    rate = np.bincount(nodes[on])
    held = np.bincount(nodes[on], weights=lifetime)
    used = rate > 0
    return float(np.max(rate[used] / window * (held[used] / rate[used] + time_wait)))
