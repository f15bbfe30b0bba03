"""Endpoint churn (netmodel.controlplane.churn): the Deployment arithmetic of rolling updates, scaling,
node failure and steady churn with hand-computed timelines (Pod start fixed at 2 s), and the
programmed view the data plane routes by."""

import math

import numpy as np
import pytest

from netmodel.controlplane.churn import Churn, EndpointUpdates, ProgrammedEndpoints, generate_churn
from netmodel.controlplane.syncloop import controlplane_streams
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
    from netmodel.controlplane.churn import PodStart

    start = PodStart(profile, 0.5, np.random.default_rng(1))
    draws = np.array([start.draw() for _ in range(20_000)]) - 0.5
    assert np.median(draws) == pytest.approx(profile["pod_start_median"], rel=0.03)
    assert np.percentile(draws, 99) == pytest.approx(profile["pod_start_p99"], rel=0.06)


# --- controllers when events overlap (from the review of the first version) -----------------

def existing_at_end(c: Churn, s: int = 0) -> int:
    """Pods of Service s Ready and never removed: the replicas the run ends with."""
    return int(((c.service == s) & (c.removal == math.inf) & (c.ready < math.inf)).sum())


@pytest.mark.parametrize("events, grace, replicas", [
    # a node failure during a rollout: the evicted Pods are replaced, not added to
    ([{"rolling_update": {"max_surge": 1, "max_unavailable": 0}}, {"node_failure": {"node": 1, "at": "1s"}}], "1s", 4),
    # scaled to 0 while a failed node's Pods wait for eviction: nothing comes back
    ([{"node_failure": {"node": 1, "at": "1s"}}, {"scale": {"at": "2s", "replicas": 0}}], "10s", 0),
    # scaled up in that window: the shortfall only
    ([{"node_failure": {"node": 1, "at": "1s"}}, {"scale": {"at": "2s", "replicas": 6}}], "10s", 6),
    # scaled to 0 during a rollout: no surge at 0 replicas (Deployment controller's allowedSize)
    ([{"rolling_update": {"max_surge": 1, "max_unavailable": 0}}, {"scale": {"at": "1s", "replicas": 0}}], "1s", 0),
    # a second rollout takes every existing Pod (the first one's surge Pod too) as old
    ([{"rolling_update": {"max_surge": 1, "max_unavailable": 0}},
      {"rolling_update": {"at": "1s", "max_surge": 1, "max_unavailable": 0}}], "1s", 4),
])
def test_the_deployment_ends_with_its_desired_replicas(fixed_start, events, grace, replicas):
    c = churn_of(fixed_start, node_monitor_grace_period=grace, eviction_timeout=grace, events=events)
    assert existing_at_end(c) == replicas


def test_scale_up_during_a_rollout_sets_its_replicas(fixed_start):
    c = churn_of(fixed_start, replicas=1, events=[
        {"rolling_update": {"max_surge": 1, "max_unavailable": 0}}, {"scale": {"at": "1s", "replicas": 3}}])
    assert existing_at_end(c) == 3


def test_no_pod_runs_once_every_node_failed(fixed_start):
    """Replacements of a cluster whose every node failed stay Pending (never Ready)."""
    c = churn_of(fixed_start, replicas=2, nodes=2, node_monitor_grace_period="1s", eviction_timeout="1s",
                 events=[{"node_failure": {"node": 0, "at": "1s"}}, {"node_failure": {"node": 1, "at": "1s"}}])
    assert c.service.size > c.first_new and np.all(c.ready[c.first_new:] == math.inf)


def test_a_pod_in_its_pre_stop_stops_when_its_node_fails(fixed_start):
    c = churn_of(fixed_start, replicas=2, nodes=2, pre_stop="10s",
                 events=[{"scale": {"at": "1s", "replicas": 1}}, {"node_failure": {"node": 1, "at": "2s"}}])
    assert c.node[1] == 1 and c.removal[1] == 1.0 and c.dead[1] == 2.0


def test_rollout_keeps_max_unavailable_with_old_pods_not_ready(fixed_start):
    """4 Ready Pods, scaled to 5 at 0 s (the fifth Ready at 2 s), rolled at 0.5 s with surge 0
    and unavailable 1: at least 4 Pods stay available throughout; the not-Ready one goes first."""
    c = churn_of(fixed_start, events=[{"scale": {"replicas": 5}},
                                      {"rolling_update": {"at": "0.5s", "max_surge": 0, "max_unavailable": 1}}])
    grid = np.arange(0.5, 30.0, 0.01)
    available = ((c.ready[None, :] <= grid[:, None]) & (grid[:, None] < c.removal[None, :])).sum(axis=1)
    assert available.min() >= 4
    assert c.removal[4] == 0.5 and c.ready[4] == math.inf      # deleted before it was Ready
    assert existing_at_end(c) == 5


def test_changes_at_one_time_and_service_are_one_update(fixed_start):
    """A node marked at 5 s and a scale at 5 s of the same Service: one update."""
    c = churn_of(fixed_start, replicas=4, nodes=2, node_monitor_grace_period="4s",
                 events=[{"node_failure": {"node": 1, "at": "1s"}}, {"scale": {"at": "5s", "replicas": 2}}])
    keys = list(zip(c.updates.times.tolist(), c.updates.services.tolist()))
    assert len(keys) == len(set(keys)) and (5.0, 0) in keys
