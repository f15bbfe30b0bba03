"""The data plane follows the programmed rules (issue 4): requests routed by stale rules to a
Pod that stopped serving are dropped as `stale-endpoint`, a new Pod gets traffic only once
the client's node has programmed it; hand-computed on one node, then the shape."""

import json

import numpy as np
import pytest

from netmodel.cluster.rules import iptables_restore_lines, iptables_total_rules
from netmodel.connections.replication import describe
from netmodel.controlplane.syncloop import couple, watch_send_seconds
from netmodel.costs.sync import iptables_sync_seconds
from netmodel.engines import simulate
from netmodel.runner.point import run_point
from netmodel.vocabulary import COMPLETED, IN_FLIGHT, STALE_ENDPOINT
from tests.conftest import make_scenario

START = 2.0


@pytest.fixture
def fixed_start(profile):
    return profile.with_overrides({"pod_start_median": f"{START}s", "pod_start_p99": f"{START}s"})


def one_pod_rollout(**control):
    """One node, one Service with one Pod, replaced at t = 1 (surge 1, unavailable 0): the new
    Pod is Ready at 3, the old one removed at 3; 100 requests/s, evenly spaced, for 8 s."""
    return make_scenario(cluster={"nodes": 1}, services={"count": 1, "endpoints_per_service": 1},
                         workload={"rate": "100/s", "arrival": "constant"},
                         control_plane={"enabled": True, "churn_rate": 0, "duration": "8s",
                                        "events": [{"rolling_update": {
                                            "at": "1s", "max_surge": 1, "max_unavailable": 0}}],
                                        **control},
                         run={"requests": None, "duration": "8s", "replications": 1})


def test_requests_between_pod_exit_and_programming_are_stale(fixed_start):
    """The node programs the update at t_p = 3 + 2 writes + one watcher's send + a partial
    iptables sync (its token bucket is full, nothing else runs): every request in [3, t_p)
    goes to the old Pod by the old rules and fails; the rest complete, the old Pod before,
    the new one after."""
    sc = one_pod_rollout()
    res = simulate(sc, fixed_start, 0)
    control = res.control
    cfg = control.config
    sync = iptables_sync_seconds(fixed_start, iptables_restore_lines(1, 1, 1), iptables_total_rules(1, 1))
    expected = 2 * fixed_start["apiserver_write"] + watch_send_seconds(cfg, fixed_start) + sync
    assert control.programming[0, 0] == pytest.approx(expected, rel=1e-9)
    t_p = 3.0 + expected
    stale = res.status == STALE_ENDPOINT
    assert stale.sum() == np.count_nonzero((res.start >= 3.0) & (res.start < t_p)) > 0
    assert np.all((res.start[stale] >= 3.0) & (res.start[stale] < t_p))
    assert np.all(res.status[~stale] == COMPLETED)
    done = res.status == COMPLETED
    assert np.all(res.endpoint[done & (res.start < 3.0)] == 0)
    assert np.all(res.endpoint[done & (res.start >= t_p)] == 1)
    assert control.stale_windows == pytest.approx([expected])


def test_pre_stop_longer_than_programming_removes_the_failures(fixed_start):
    res = simulate(one_pod_rollout(pre_stop="1s"), fixed_start, 0)
    assert res.control.programming[0, 0] < 1.0
    assert not (res.status == STALE_ENDPOINT).any()
    assert res.control.stale_windows.tolist() == [0.0]


def test_new_pod_only_after_the_clients_node_programmed_it(fixed_start):
    """Scale 1 -> 2 at t = 1: the new Pod is Ready at 3, but requests reach it only from the
    moment the node has programmed it; every request completes."""
    sc = one_pod_rollout(events=[{"scale": {"at": "1s", "replicas": 2}}])
    res = simulate(sc, fixed_start, 0)
    t_p = 3.0 + res.control.programming[0, 0]
    assert np.all(res.status == COMPLETED)
    new = res.endpoint == 1
    assert new.any() and res.start[new].min() >= t_p
    assert np.all(res.endpoint[res.start < t_p] == 0)


def test_kept_alive_connection_fails_when_its_pod_stops(fixed_start):
    """One keep-alive connection of 800 requests of 10 ms each, opened at t = 1 to the only
    Pod: its requests from t = 3, when the Pod stopped, fail as stale-endpoint (conntrack still
    sends them to it); none is lost."""
    sc = one_pod_rollout()
    sc = sc.model_copy(update={
        "workload": make_scenario(workload={
            "rate": "800/s", "arrival": "constant", "requests_per_connection": 800,
            "server": {"service_time": "10ms", "service_time_distribution": "constant"}}).workload,
        "run": make_scenario(run={"requests": 800, "replications": 1}).run})
    res = simulate(sc, fixed_start, 0)
    stale = res.status == STALE_ENDPOINT
    assert res.start[0] == pytest.approx(1.0)
    assert 150 < np.count_nonzero(~stale) < 200 < 600 < np.count_nonzero(stale)
    assert np.all(res.status[~stale] == COMPLETED) and np.all(res.start[~stale] < 3.0)
    assert np.all(res.start[stale] >= 3.0) and np.all(res.end[stale] == res.start[stale])


def test_coupled_runs_are_deterministic_and_conserve_requests(profile):
    sc = make_scenario(cluster={"nodes": 6}, services={"count": 20, "endpoints_per_service": 4,
                                                      "type": "NodePort"},
                       workload={"rate": "800/s", "mix": {"pod-clusterip": 2, "external-nodeport": 1,
                                                         "pod-pod-cross-node": 1}},
                       control_plane={"enabled": True, "churn_rate": "3/s", "duration": "10s",
                                      "sampled_nodes": 4, "node_monitor_grace_period": "2s",
                                      "eviction_timeout": "1s",
                                      "events": [{"node_failure": {"node": 2, "at": "3s"}},
                                                 {"rolling_update": {"service": 1, "at": "1s"}}]},
                       run={"requests": None, "duration": "10s", "replications": 2})
    a, b = run_point(sc, profile), run_point(sc, profile)
    assert json.dumps(a) == json.dumps(b)   # NaN included, bit for bit
    for row in a:
        assert row["requests"] == row["completed"] + row["dropped"] + row["in_flight"]
    assert sum(row["dropped_stale_endpoint"] for row in a) > 0
    res = simulate(sc, profile, 0)
    assert set(np.unique(res.status)) <= {IN_FLIGHT, COMPLETED, *range(2, 8)}


def test_programmed_view_matches_the_engines(profile):
    """`couple` is deterministic: the engine's view is what a second call gives."""
    sc = one_pod_rollout()
    topo = describe(sc, profile, 0).topology
    first = couple(sc, profile, topo, 0)[1]
    second = couple(sc, profile, topo, 0)[1]
    assert np.array_equal(first.added_at, second.added_at)
    assert np.array_equal(first.removed_at, second.removed_at)


@pytest.mark.validation
def test_more_rollout_churn_more_stale_failures_more_so_under_slower_programming(profile):
    """Issue 4's shape: 1,000 Services x 10 endpoints, zipf popularity, 500 requests/s for
    30 s; rolling updates (Kubernetes defaults 25% / 25%) of the busiest Service, or of the
    three busiest at once. Stale-endpoint failures grow with the churn under both modes and
    are several times more under iptables (partial restores of ~3 s) than nftables (~56 ms
    syncs, the minSyncPeriod token bucket dominating), so they also grow faster.
    Measured (seeds 3, 2 replications): see docs/control-plane.md."""
    stale = {}
    for mode in ("iptables", "nftables"):
        for busiest in (1, 3):
            sc = make_scenario(
                cluster={"nodes": 100, "pod_cidr": "10.0.0.0/14"},
                services={"count": 1000, "endpoints_per_service": 10, "popularity": "zipf"},
                kube_proxy={"mode": mode}, workload={"rate": "500/s"},
                control_plane={"enabled": True, "churn_rate": 0, "duration": "30s",
                               "sampled_nodes": 20,
                               "events": [{"rolling_update": {"service": s, "at": "2s"}}
                                          for s in range(busiest)]},
                run={"requests": None, "duration": "30s", "replications": 2})
            stale[mode, busiest] = run_point(sc, profile)[0]["dropped_stale_endpoint"]
    for mode in ("iptables", "nftables"):
        assert stale[mode, 3] > 1.3 * stale[mode, 1], stale
    for busiest in (1, 3):
        assert stale["iptables", busiest] > 3 * stale["nftables", busiest], stale
    assert stale["iptables", 3] - stale["iptables", 1] > stale["nftables", 3] - stale["nftables", 1]


def test_a_pod_deleted_before_ready_never_gets_traffic(fixed_start):
    """Scale 2 -> 3 at 1 s (Ready at 3 s), -> 4 at 5 s and back to 3 at 5.5 s: the fourth Pod
    was never Ready, so no node's rules ever hold it."""
    sc = make_scenario(cluster={"nodes": 2}, services={"count": 1, "endpoints_per_service": 2},
                       workload={"rate": "100/s", "arrival": "constant"},
                       control_plane={"enabled": True, "churn_rate": 0, "duration": "8s", "events": [
                           {"scale": {"at": "1s", "replicas": 3}}, {"scale": {"at": "5s", "replicas": 4}},
                           {"scale": {"at": "5.5s", "replicas": 3}}]},
                       run={"requests": None, "duration": "8s", "replications": 1})
    res = simulate(sc, fixed_start, 0)
    assert (res.endpoint == 2).any() and not (res.endpoint == 3).any()
    assert np.all(res.status == COMPLETED)


def test_stale_window_counts_only_time_the_rules_held_the_pod(fixed_start):
    """Scale 10 -> 12 at 1 s and back at 3.5 s (Pods Ready at 3 s) under iptables at 1,000
    Services: nodes that programmed the add late hold the Pods for less than removed - exit,
    some not at all; the window is measured from max(exit, added to the rules)."""
    sc = make_scenario(cluster={"nodes": 100, "pod_cidr": "10.0.0.0/14"},
                       services={"count": 1000, "endpoints_per_service": 10},
                       control_plane={"enabled": True, "churn_rate": 0, "duration": "10s", "sampled_nodes": 20,
                                      "events": [{"scale": {"at": "1s", "replicas": 12}},
                                                 {"scale": {"at": "3.5s", "replicas": 10}}]},
                       run={"requests": None, "duration": "10s"})
    topo = describe(sc, fixed_start, 0).topology
    result, view = couple(sc, fixed_start, topo, 0)
    gone = view.churn.removed_by >= 0
    held = view.removed_at[gone] - np.maximum(view.churn.dead[gone][:, None], view.added_at[gone])
    assert result.stale_windows.tolist() == np.maximum(held, 0).ravel().tolist()
    assert result.stale_windows.max() < (view.removed_at[gone] - view.churn.dead[gone][:, None]).max()


def test_a_failed_nodes_clients_stop_and_its_pods_fail_until_marked(fixed_start):
    """Two nodes, one Pod on each; node 1 fails at 1 s, is marked at 3 s. After the failure
    every request comes from node 0: those to node 1's Pod fail as stale-endpoint until node 0
    has programmed the mark, the others complete on node 0 without crossing nodes."""
    sc = make_scenario(cluster={"nodes": 2}, services={"count": 1, "endpoints_per_service": 2},
                       workload={"rate": "200/s", "arrival": "constant"},
                       control_plane={"enabled": True, "churn_rate": 0, "duration": "6s",
                                      "node_monitor_grace_period": "2s", "eviction_timeout": "1h",
                                      "events": [{"node_failure": {"node": 1, "at": "1s"}}]},
                       run={"requests": None, "duration": "6s", "replications": 1, "seed": 3})
    assert sorted(describe(sc, fixed_start, 0).topology.endpoint_node.tolist()) == [0, 1]
    res = simulate(sc, fixed_start, 0)
    control = res.control
    marked = 3.0 + control.programming[0, 0]          # node 0 drops node 1's Pod from its rules
    after = res.start >= 1.0
    stale = res.status == STALE_ENDPOINT
    assert np.all(res.start[stale] >= 1.0) and np.all(res.start[stale] < marked) and stale.sum() > 50
    done = (res.status == COMPLETED) & after
    assert done.sum() > 500 and not res.cross_node[done].any()
    assert res.cross_node[(res.status == COMPLETED) & ~after].any()


def test_headless_services_updates_are_not_programmed(fixed_start):
    """kube-proxy ignores headless Services' EndpointSlices: a rollout of one changes no
    node's rules and no programming sample, while its clients (Pod IPs from DNS) follow the
    slice itself: requests to a replaced Pod fail from its exit, never after."""
    inventory = {"nodes": [{"name": "a"}, {"name": "b"}], "services": [
        {"name": "db", "cluster_ip": "None",
         "endpoints": [{"ip": "10.244.0.5", "node": "a"}, {"ip": "10.244.1.5", "node": "b"}]},
        {"name": "web", "endpoints": [{"ip": "10.244.0.6", "node": "a"}]}]}
    sc = make_scenario(inventory=inventory, workload={"rate": "200/s", "arrival": "constant"},
                       control_plane={"enabled": True, "churn_rate": 0, "duration": "8s",
                                      "events": [{"rolling_update": {"service": 0, "at": "1s",
                                                                     "max_surge": 1, "max_unavailable": 0}}]},
                       run={"requests": None, "duration": "8s", "replications": 1})
    res = simulate(sc, fixed_start, 0)
    assert res.control.updates.size == 0 and res.control.programming_durations.size == 0
    assert not (res.status == STALE_ENDPOINT).any()      # the slice drops a Pod as it exits
    assert (res.endpoint >= 3).any()                     # the new Pods get traffic
