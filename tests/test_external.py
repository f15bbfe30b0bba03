"""External access in the engine: policies, load balancers, Ingress, the API server."""

import math

import numpy as np
import pytest

from netmodel.connections.placement import ROLES
from netmodel.connections.replication import describe
from netmodel.engines import simulate
from netmodel.runner.point import run_point
from netmodel.vocabulary import APISERVER_THROTTLED, COMPLETED
from tests.conftest import make_scenario

NODES = 8


def _nodeport(policy, **extra):
    return make_scenario(cluster={"nodes": NODES},
                         services={"count": 40, "endpoints_per_service": 1, "type": "NodePort",
                                   "external_traffic_policy": policy},
                         workload={"rate": 200, "mix": {"external-nodeport": 1}},
                         run={"requests": 4000}, **extra)


def _within(share, expected, n):
    return abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 1e-12


def test_cluster_policy_second_hop_share_is_the_share_of_nodes_without_an_endpoint(profile):
    (row,) = run_point(_nodeport("Cluster"), profile)
    assert row["dropped"] == 0
    # one endpoint per Service: a node without it forwards (second hop) with probability 7/8
    assert _within(row["cross_node_share"], 1 - 1 / NODES, row["measured"])


def test_local_policy_drops_on_nodes_without_an_endpoint_and_never_hops(profile):
    (row,) = run_point(_nodeport("Local"), profile)
    assert row["cross_node_share"] == 0.0
    assert _within(row["dropped_no_local_endpoint"] / row["requests"], 1 - 1 / NODES, row["requests"])
    assert row["requests"] == row["completed"] + row["dropped"] + row["in_flight"]


def test_cluster_snat_costs_more_setup_than_local_on_the_same_node(profile):
    res_local = simulate(_nodeport("Local"), profile, 0)
    res_cluster = simulate(_nodeport("Cluster"), profile, 0)
    ok_l, ok_c = res_local.status == COMPLETED, res_cluster.status == COMPLETED
    assert np.median((res_cluster.end - res_cluster.start)[ok_c]) > np.median((res_local.end - res_local.start)[ok_l])


def test_local_policy_skews_load_towards_endpoints_alone_on_their_node(profile):
    # 3 endpoints on 2 nodes behind a LB that health-checks: each node gets half the
    # traffic, so the lone endpoint carries 1/2 and the other two 1/4: skew 1.5
    sc = make_scenario(
        cluster={"provider": "cloud"},
        inventory={"nodes": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                   "services": [{"name": "web", "type": "LoadBalancer", "external_traffic_policy": "Local",
                                 "ports": [{"port": 80, "node_port": 30080}],
                                 "endpoints": [{"ip": "10.244.0.2", "node": "a"},
                                               {"ip": "10.244.0.3", "node": "a"},
                                               {"ip": "10.244.1.2", "node": "b"}]}]},
        workload={"rate": 300, "mix": {"external-loadbalancer": 1}}, run={"requests": 6000})
    (row,) = run_point(sc, profile)
    assert row["dropped"] == 0  # health checks keep node c out
    assert row["endpoint_load_skew"] == pytest.approx(1.5, abs=0.08)
    cluster = sc.model_copy(update={"inventory": sc.inventory.model_copy(update={"services": [
        sc.inventory.services[0].model_copy(update={"external_traffic_policy": "Cluster"})]})})
    (even,) = run_point(cluster, profile)
    assert even["endpoint_load_skew"] == pytest.approx(1.0, abs=0.08)


def test_metallb_l2_sends_everything_through_one_node(profile):
    sc = make_scenario(cluster={"nodes": NODES},
                       services={"count": 1, "endpoints_per_service": 4, "type": "LoadBalancer"},
                       external={"load_balancer": {"provider": "metallb", "metallb_mode": "l2"}},
                       workload={"rate": 200, "mix": {"external-loadbalancer": 1}}, run={"requests": 300})
    entry = ROLES.index("entry")
    assert len(set(describe(sc, profile, 0).connections.node[:, entry])) == 1
    bgp = sc.model_copy(update={"external": sc.external.model_copy(update={
        "load_balancer": sc.external.load_balancer.model_copy(update={"metallb_mode": "bgp"})})})
    assert len(set(describe(bgp, profile, 0).connections.node[:, entry])) == NODES  # ECMP over every node


def test_iptables_nodeport_walks_more_rules_than_clusterip(profile):
    common = dict(cluster={"nodes": 100}, services={"count": 2000, "endpoints_per_service": 1,
                                                    "type": "NodePort"}, run={"requests": 2000})
    clusterip = run_point(make_scenario(**common, workload={"mix": {"pod-clusterip": 1}}), profile)[0]
    nodeport = run_point(make_scenario(**common, workload={"mix": {"external-nodeport": 1}}), profile)[0]
    # NodePort: all 2,001 KUBE-SERVICES rules first; ClusterIP: half of them on average
    assert nodeport["rule_lookup_cpu_s_per_request"] > 1.5 * clusterip["rule_lookup_cpu_s_per_request"]
    assert nodeport["rule_lookup_cpu_s_per_request"] > 2001 * profile["iptables_rule"]


def test_ingress_controller_saturates(profile):
    def row(rate):
        sc = make_scenario(cluster={"nodes": 4}, services={"count": 4, "endpoints_per_service": 2},
                           external={"ingress": {"replicas": 1, "workers": 1, "tls": False}},
                           workload={"rate": rate, "requests_per_connection": 10,
                                     "mix": {"external-ingress": 1}},
                           run={"requests": 4000, "warmup": "0.2s"})
        return run_point(sc, profile)[0]
    # one worker at 0.5 ms per request serves at most 2,000 requests/s
    light, heavy = row(200), row(2500)
    assert heavy["throughput_rps"] < 2050 < 0.9 * 2500
    assert heavy["p99_s"] > 10 * light["p99_s"]


def test_apiserver_refuses_beyond_max_requests_inflight(profile):
    sc = make_scenario(cluster={"nodes": 2}, services={"count": 1, "endpoints_per_service": 1},
                       external={"kubectl": {"apiserver_cores": 1, "max_requests_inflight": 2}},
                       workload={"rate": 6000, "mix": {"kubectl-proxy": 1},
                                 "server": {"workers": 1}},
                       run={"requests": 2000})
    res = simulate(sc, profile, 0)
    assert (res.status == APISERVER_THROTTLED).sum() > 0
    assert (res.status == COMPLETED).sum() > 0
    (row,) = run_point(sc, profile)
    assert row["requests"] == row["completed"] + row["dropped"] + row["in_flight"]


def test_port_forward_is_one_stream(profile):
    def mean(kind):
        sc = make_scenario(cluster={"nodes": 2}, services={"count": 1, "endpoints_per_service": 4},
                           workload={"rate": 9000, "mix": {kind: 1}, "server": {"workers": 64}},
                           external={"kubectl": {"apiserver_cores": 64}}, run={"requests": 3000})
        return run_point(sc, profile)[0]["mean_s"]
    # 2 x 50 us per request on the single stream caps it at 10,000 requests/s; proxying
    # uses many API server cores, so at 9,000/s the stream queues and the proxy does not
    assert mean("kubectl-port-forward") > mean("kubectl-proxy")

