"""Conntrack occupancy (`conntrack_entries`, `conntrack_fill`): Little's law against a direct
count of the entries the run held, and by hand on one node."""

import numpy as np
import pytest

from netmodel.runner.point import run_point
from tests.conftest import make_scenario, walked


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
