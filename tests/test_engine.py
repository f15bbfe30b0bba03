"""The SimPy engine: zero-load latency by hand and by trace, conservation, determinism,
placement."""

import math

import numpy as np
import pytest

from netmodel.connections.placement import ROLES
from netmodel.connections.replication import describe
from netmodel.connections.trace import trace, trace_connection
from netmodel.costs.model import LOOKUPS, zero_load_seconds
from netmodel.engines import simulate
from netmodel.results.summary import COLUMNS
from netmodel.runner.point import run_point
from netmodel.vocabulary import COMPLETED, DROP_REASONS, IN_FLIGHT, TRAFFIC_KINDS
from tests.conftest import make_scenario, walked

QUIET = {"rate": 5, "server": {"service_time": "50us", "service_time_distribution": "constant"}}


def zero_load(rep, c: int, app: float = 50e-6) -> float:
    """Connection c's set-up and first request with no queueing, from its plans."""
    conns = rep.connections
    connect, request = rep.plans[conns.route[c]]
    lookup = dict(zip(LOOKUPS, conns.lookup[c].tolist()))
    return zero_load_seconds(connect, lookup) + zero_load_seconds(request, {"app": app})


EXTERNAL = {"services": {"count": 50, "endpoints_per_service": 3, "type": "LoadBalancer"},
            "external": {"load_balancer": {"provider": "metallb", "metallb_mode": "bgp"}}}


@pytest.mark.parametrize("kind", TRAFFIC_KINDS)
@pytest.mark.parametrize("datapath", ["vxlan", "native"])
def test_lone_requests_see_exactly_the_zero_load_path(profile, kind, datapath):
    sc = make_scenario(cluster={"nodes": 4, "cni_datapath": datapath}, **EXTERNAL,
                       workload={**QUIET, "mix": {kind: 1}}, run={"requests": 200})
    rep, res = walked(sc, profile)
    assert (res.status == COMPLETED).all()
    for c in range(len(rep.connections)):
        assert res.end[c] - res.start[c] == pytest.approx(zero_load(rep, c), rel=1e-9)
        assert res.lookup_cpu[c] == rep.connections.lookup[c].sum()
        # trace prints this very connection hop by hop: its zero-load total is the latency
        traced = trace_connection(sc, profile, rep.connection(c))
        assert res.end[c] - res.start[c] == pytest.approx(sum(traced.totals().values()), rel=1e-9)
    assert res.cross_node.all() == (kind in ("pod-pod-cross-node", "kubectl-proxy",
                                             "kubectl-port-forward"))
    assert (~res.cross_node).all() == (kind == "pod-pod-same-node")


def test_trace_charges_the_ingress_lookup_the_engine_charges(profile):
    """The review's case: Ingress under iptables, 2,000 NodePort Services on 50 nodes. The
    controller's own node port is walked after all of KUBE-SERVICES (the controller's
    Service included) and half of KUBE-NODEPORTS, in trace as in the engine."""
    sc = make_scenario(cluster={"nodes": 50}, services={"count": 2000, "endpoints_per_service": 1,
                                                        "type": "NodePort"},
                       workload={**QUIET, "mix": {"external-ingress": 1}}, run={"requests": 50})
    rep, res = walked(sc, profile)
    (hop,) = [h for h in trace(sc, profile, "external-ingress").hops if h.component == "nodeport-lookup"]
    replica0 = rep.connections.replica == 0
    charged = rep.connections.lookup[replica0, LOOKUPS.index("nodeport-lookup")]
    assert np.unique(charged).tolist() == [hop.cost_s]
    assert hop.cost_s == pytest.approx((2001 + 1 + 1001 + 1 + 10) * profile["iptables_rule"])
    assert "3,014 rules walked: all 2,002 of KUBE-SERVICES, then rank 1,001 in KUBE-NODEPORTS" in hop.action


def test_keep_alive_pays_setup_once_per_connection(profile):
    sc = make_scenario(workload={**QUIET, "requests_per_connection": 5}, run={"requests": 100})
    res = simulate(sc, profile, 0)
    lat = res.end - res.start
    firsts, rest = lat[0::5], np.delete(lat, np.s_[0::5])
    assert (res.lookup_cpu[0::5] > 0).all() and (np.delete(res.lookup_cpu, np.s_[0::5]) == 0).all()
    assert firsts.min() > rest.max()  # the first request carries the handshake


def _conserved(rows):
    for row in rows:
        dropped = sum(row[f"dropped_{r.replace('-', '_')}"] for r in DROP_REASONS)
        assert row["dropped"] == dropped
        assert row["requests"] == row["completed"] + row["dropped"] + row["in_flight"]
        assert row["measured"] <= row["completed"]


def test_every_request_is_completed_dropped_or_in_flight(profile):
    # an overloaded single-worker server with a tiny queue, a short timeout and a short
    # drain: every outcome happens (conntrack tables large enough to take 20,000 new
    # connections a second: they would fill otherwise, tests/test_overload.py)
    sc = make_scenario(
        cluster={"nodes": 2, "conntrack_max": 100_000_000},
        services={"count": 2, "endpoints_per_service": 1},
        workload={"rate": 20_000, "timeout": "20ms",
                  "mix": {"pod-clusterip": 2, "pod-pod-same-node": 1, "pod-pod-cross-node": 1},
                  "server": {"workers": 1, "queue_limit": 3, "service_time": "200us"}},
        run={"requests": 3000, "drain": "2ms", "replications": 2})
    rows = run_point(sc, profile)
    assert [r["traffic"] for r in rows] == ["pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"]
    _conserved(rows)
    total = {k: sum(r[k] for r in rows) for k in
             ("requests", "completed", "dropped_server_queue_full", "dropped_timeout", "in_flight")}
    assert total["requests"] == 2 * 3000
    assert total["completed"] > 0 and total["dropped_server_queue_full"] > 0
    assert total["dropped_timeout"] > 0 and total["in_flight"] > 0


def test_no_endpoints_drops_every_clusterip_request(profile):
    sc = make_scenario(services={"count": 5, "endpoints_per_service": 0},
                       run={"requests": 300, "warmup": 0})
    (row,) = run_point(sc, profile)
    _conserved([row])
    assert row["dropped_no_endpoints"] == 300 and row["completed"] == 0
    assert row["measured"] == 0 and math.isnan(row["p50_s"])


def test_same_seed_same_rows_other_seed_other_rows(profile):
    sc = make_scenario(workload={"rate": 3000}, run={"requests": 1500, "replications": 2})
    a, b = run_point(sc, profile), run_point(sc, profile)
    assert list(a[0]) == list(COLUMNS)
    assert repr(a) == repr(b)
    other = make_scenario(workload={"rate": 3000}, run={"requests": 1500, "replications": 2,
                                                        "seed": 4})
    assert repr(run_point(other, profile)) != repr(a)


def test_cross_node_share_follows_random_placement(profile):
    nodes = 5
    sc = make_scenario(cluster={"nodes": nodes}, services={"count": 100, "endpoints_per_service": 5},
                       run={"requests": 8000})
    (row,) = run_point(sc, profile)
    expected, n = 1 - 1 / nodes, row["measured"]
    assert abs(row["cross_node_share"] - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


def test_iptables_lookup_cpu_matches_the_expected_walk(profile):
    s, e = 4000, 10
    sc = make_scenario(cluster={"nodes": 400, "pod_cidr": "10.0.0.0/14"}, services={"count": s, "endpoints_per_service": e},
                       run={"requests": 6000})
    (row,) = run_point(sc, profile)
    mean_walk = (s + 2) / 2 + (e + 1) / 2 + 6  # R = s + 1 rules in KUBE-SERVICES
    sd_walk = s / math.sqrt(12)
    tol = 4 * sd_walk * profile["iptables_rule"] / math.sqrt(row["measured"])
    assert row["rule_lookup_cpu_s_per_request"] == pytest.approx(mean_walk * profile["iptables_rule"], abs=tol)


def test_ipvs_round_robin_cycles_per_node_and_service(profile):
    sc = make_scenario(cluster={"nodes": 3}, kube_proxy={"mode": "ipvs"},
                       services={"count": 2, "endpoints_per_service": 4}, run={"requests": 300})
    rep = describe(sc, profile, 0)
    conns, client = rep.connections, rep.connections.node[:, ROLES.index("client")]
    rotations = 0
    for node in range(3):
        for s in range(2):
            picks = conns.position[(client == node) & (rep.demand.service == s)]
            assert len(picks) > 10 and ((np.diff(picks) - 1) % 4 == 0).all()  # each next one
            rotations += 1
    # each (node, Service) rotation starts at its first connection's random draw
    firsts = [conns.position[(client == n) & (rep.demand.service == s)][0] for n in range(3) for s in range(2)]
    assert len(set(firsts)) > 1 and rotations == 6


def test_timeout_applies_to_requests_left_in_flight(profile):
    sc = make_scenario(workload={"timeout": "1ms", "server": {"service_time": "5ms",
                                                             "service_time_distribution": "constant"}},
                       run={"requests": 10, "drain": "3ms"})
    res = simulate(sc, profile, 0)
    assert set(np.unique(res.status)) <= {COMPLETED, IN_FLIGHT, 2 + DROP_REASONS.index("timeout")}
    assert (res.status == 2 + DROP_REASONS.index("timeout")).sum() >= 9


@pytest.mark.parametrize("name,queries", [("short", 1), ("namespaced", 2), ("fqdn", 1), ("external", 4)])
def test_dns_lookup_follows_the_search_list(profile, name, queries):
    from netmodel.paths import dns_queries

    assert dns_queries(name, ndots=5, host_search_domains=0) == queries
    sc = make_scenario(cluster={"nodes": 4}, services={"count": 8},
                       dns={"enabled": True, "name": name, "cache_hit_ratio": 0.5},
                       workload=QUIET, run={"requests": 200})
    rep, res = walked(sc, profile)
    upstream = 0
    for c, (kind, placement) in enumerate(rep.connections.routes[r] for r in rep.connections.route):
        assert placement.dns_queries == queries
        upstream += placement.dns_upstream
        assert res.end[c] - res.start[c] == pytest.approx(zero_load(rep, c), rel=1e-9)
    # only external names miss the cache, about half the time here
    assert (upstream > 60) == (name == "external") and upstream < 140


def test_ndots_decides_whether_the_search_list_is_tried():
    from netmodel.paths import dns_queries

    assert dns_queries("external", ndots=2, host_search_domains=0) == 1  # 2 dots >= ndots
    assert dns_queries("external", ndots=5, host_search_domains=2) == 6
