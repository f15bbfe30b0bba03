"""Endpoint churn (netmodel.sim.churn): the Deployment arithmetic of rolling updates, scaling,
node failure and steady churn with hand-computed timelines (Pod start fixed at 2 s), and the
programmed view the data plane routes by."""

import math

import numpy as np
import pytest

from netmodel.sim.churn import Churn, EndpointUpdates, ProgrammedEndpoints, generate_churn
from netmodel.sim.controlplane import controlplane_streams
from tests.conftest import make_scenario

START = 2.0


@pytest.fixture
def fixed_start(profile):
    """Pod start exactly START seconds (p99 = median: no spread)."""
    return profile.with_overrides({"pod_start_median": f"{START}s", "pod_start_p99": f"{START}s"})


def churn_of(profile, replicas=4, services=1, nodes=4, **control) -> Churn:
    """Churn over `services` Services of `replicas` Pods each, Pod i of a Service on node i mod nodes."""
    sc = make_scenario(cluster={"nodes": nodes},
                       services={"count": services, "endpoints_per_service": replicas},
                       control_plane={"enabled": True, "churn_rate": 0, **control})
    offsets = np.arange(services + 1) * replicas
    nodes_of = np.tile(np.arange(replicas) % nodes, services)
    return generate_churn(sc, profile, offsets, nodes_of, controlplane_streams(3))


def timeline(churn: Churn):
    u = churn.updates
    return [(float(t), int(s), int(a), int(r)) for t, s, a, r in zip(u.times, u.services, u.added, u.removed)]


def test_rolling_update_one_at_a_time(fixed_start):
    """4 replicas, maxSurge 1, maxUnavailable 0, at t = 1: a new Pod at 1; each time one is
    Ready (3, 5, 7, 9) an old one goes and the next new one is created."""
    c = churn_of(fixed_start, events=[{"rolling_update": {"at": "1s", "max_surge": 1, "max_unavailable": 0}}])
    assert timeline(c) == [(3.0, 0, 1, 1), (5.0, 0, 1, 1), (7.0, 0, 1, 1), (9.0, 0, 1, 1)]
    assert c.removal[:4].tolist() == [3.0, 5.0, 7.0, 9.0]       # oldest first
    assert c.dead[:4].tolist() == [3.0, 5.0, 7.0, 9.0]          # pre_stop 0
    assert c.ready[4:].tolist() == [3.0, 5.0, 7.0, 9.0]
    assert c.added_by[4:].tolist() == [0, 1, 2, 3] and c.removed_by[:4].tolist() == [0, 1, 2, 3]
    assert c.first_new == 4 and c.service.tolist() == [0] * 8


def test_rolling_update_kubernetes_defaults(fixed_start):
    """10 replicas, 25% / 25%: surge 3 (rounded up), unavailable 2 (rounded down). At t = 0
    the controller scales the new ReplicaSet to 3, the old one down by 13 - 8 - 3 = 2, then
    the new one to 13 - 8 = 5. At t = 2 the 5 are Ready: the old ones go down to 3 (min
    available 8 = 3 old + 5 new) and the last 5 new are created; at t = 4 they are Ready and
    the last 3 old go."""
    c = churn_of(fixed_start, replicas=10, nodes=10, events=[{"rolling_update": {}}])
    assert timeline(c) == [(0.0, 0, 0, 2), (2.0, 0, 5, 5), (4.0, 0, 5, 3)]
    assert np.isfinite(c.removal[:10]).all()
    assert (c.ready[10:] <= 4.0).all() and c.ready[10:].size == 10


def test_scale_up_then_down_newest_first(fixed_start):
    c = churn_of(fixed_start, replicas=3, events=[{"scale": {"at": "1s", "replicas": 5}},
                                                   {"scale": {"at": "10s", "replicas": 3}}])
    assert timeline(c) == [(3.0, 0, 2, 0), (10.0, 0, 0, 2)]
    assert c.removal.tolist() == [math.inf] * 3 + [10.0, 10.0]


def test_pre_stop_keeps_a_deleted_pod_serving(fixed_start):
    c = churn_of(fixed_start, replicas=3, pre_stop="4s", events=[{"scale": {"at": "1s", "replicas": 1}}])
    assert c.removal.tolist() == [math.inf, 1.0, 1.0] and c.dead.tolist() == [math.inf, 5.0, 5.0]


def test_node_failure(fixed_start):
    """Node 1 fails at 5 s: its Pods stop at once, leave the EndpointSlice when the node is
    marked (grace 10 s), and are replaced after eviction (5 s) on other nodes, Ready 2 s later."""
    c = churn_of(fixed_start, replicas=4, nodes=2, node_monitor_grace_period="10s",
                 eviction_timeout="5s", events=[{"node_failure": {"node": 1, "at": "5s"}}])
    assert timeline(c) == [(15.0, 0, 0, 2), (22.0, 0, 2, 0)]
    assert c.dead[[1, 3]].tolist() == [5.0, 5.0] and c.removal[[1, 3]].tolist() == [15.0, 15.0]
    assert (c.node[4:] == 0).all()                                  # not on the failed node


def test_steady_churn_replaces_pods(fixed_start):
    """Each replacement: the old Pod removed at t, the new one added at t + 2 s."""
    c = churn_of(fixed_start, replicas=2, services=5, churn_rate="1/s", duration="20s")
    removed = c.removed_by >= 0
    assert removed.sum() == c.updates.removed.sum() == c.service.size - 10
    assert np.allclose(np.sort(c.ready[10:]), np.sort(c.removal[removed]) + START)


def test_unready_pod_deleted_is_never_announced(fixed_start):
    c = churn_of(fixed_start, replicas=1, events=[{"scale": {"at": "1s", "replicas": 2}},
                                                   {"scale": {"at": "2s", "replicas": 1}}])
    assert timeline(c) == [] and c.ready[1] == math.inf


def test_programmed_view_by_hand():
    """Service 0: endpoint 0 there from the start and removed by update 1, endpoint 1 added by
    update 0; two simulated nodes program them at different times."""
    updates = EndpointUpdates(np.array([1.0, 3.0]), np.array([0, 0]), np.array([1, 0]), np.array([0, 1]))
    churn = Churn(updates, service=np.array([0, 0]), node=np.array([0, 1]),
                  ready=np.array([-math.inf, 1.0]), removal=np.array([3.0, math.inf]),
                  dead=np.array([3.0, math.inf]), added_by=np.array([-1, 0]),
                  removed_by=np.array([1, -1]), first_new=1)
    view = ProgrammedEndpoints.of(churn, np.array([[0.5, 2.0], [1.0, 4.0]]))
    assert view.in_rules(0, 0, 1.2).tolist() == [0]
    assert view.in_rules(0, 0, 1.5).tolist() == [0, 1]
    assert view.in_rules(0, 0, 4.0).tolist() == [1]
    assert view.in_rules(0, 1, 6.9).tolist() == [0, 1]             # node 1 programs at 7
    assert view.in_rules(0, 3, 6.9).tolist() == [0, 1]             # node 3 follows node 1
    assert view.listed(0, 3.0).tolist() == [1]
    assert view.in_rules(5, 0, 1.0) is None                        # an unchanged Service
    assert not view.serving(0, 3.0) and view.serving(0, 2.99)
    assert view.stale_windows().tolist() == [1.0, 4.0]


def test_pod_start_is_lognormal_through_the_profiles_median_and_p99(profile):
    """20,000 draws: median 1.5 s and p99 5 s of the default profile, plus readiness_delay."""
    from netmodel.sim.churn import PodStart

    start = PodStart(profile, 0.5, np.random.default_rng(1))
    draws = np.array([start.draw() for _ in range(20_000)]) - 0.5
    assert np.median(draws) == pytest.approx(profile["pod_start_median"], rel=0.03)
    assert np.percentile(draws, 99) == pytest.approx(profile["pod_start_p99"], rel=0.06)
