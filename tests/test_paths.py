"""Routes: which hops each traffic kind takes, and why some cannot work."""

import pytest

from netmodel.connections.trace import trace
from netmodel.errors import NetmodelError
from netmodel.paths import Placement, route
from netmodel.paths.reachability import unreachable
from netmodel.vocabulary import TRAFFIC_KINDS
from tests.conftest import make_scenario


def components(legs):
    return [h.component for leg in legs for h in leg.hops]


def test_every_kind_has_a_route_that_serves_the_request_at_the_app():
    for kind in TRAFFIC_KINDS:
        r = route(kind, Placement(), "vxlan", tls=True, cloud_lb=True)
        assert components(r.request).count("app") == 1, kind


def test_clusterip_route_by_hand():
    r = route("pod-clusterip", Placement(same_node=True), "native")
    assert components(r.connect) == [
        "connection-setup", "rule-lookup", "tcp-stack-tx", "veth", "bridge", "conntrack", "veth",
        "tcp-stack-rx", "connection-setup",
        "tcp-stack-tx", "veth", "bridge", "conntrack", "veth", "tcp-stack-rx", "wakeup"]
    cross = route("pod-pod-cross-node", Placement(same_node=False), "vxlan")
    assert "rule-lookup" not in components(cross.connect)
    assert components(cross.request)[:9] == ["tcp-stack-tx", "veth", "bridge", "conntrack",
                                             "vxlan-encap", "wire", "nic-rx", "vxlan-decap", "conntrack"]


def test_nodeport_cluster_policy_snats_and_takes_a_second_hop():
    remote = route("external-nodeport", Placement(entry_is_server=False, snat=True), "native")
    hops = [(h.component, h.at) for leg in remote.request for h in leg.hops]
    assert ("nodeport-lookup", "entry") not in hops  # rules are walked once, at set-up
    setup = [(h.component, h.at) for h in remote.connect[0].hops]
    assert setup[:6] == [("internet", "external-client"), ("wire", "external-client"),
                         ("nic-rx", "entry"), ("conntrack", "entry"), ("nodeport-lookup", "entry"),
                         ("snat", "entry")]
    assert ("wire", "entry") in setup  # the second node hop
    local = route("external-nodeport", Placement(entry_is_server=True, snat=False), "native")
    setup = [(h.component, h.at) for h in local.connect[0].hops]
    assert ("snat", "entry") not in setup
    assert [c for c, _ in setup].count("wire") == 1  # only the way in


def test_ingress_terminates_tls_once_and_proxies_every_request():
    r = route("external-ingress", Placement(snat=True), "vxlan", tls=True)
    assert components(r.connect).count("tls-handshake") == 1
    assert components(r.request).count("ingress-proxy") == 1
    assert "tls-handshake" not in components(route("external-ingress", Placement(), "vxlan",
                                                   tls=False).connect)


def test_kubectl_paths_go_through_the_api_server():
    proxy = route("kubectl-proxy", Placement(), "native")
    assert components(proxy.request).count("apiserver-proxy") == 2  # in and out
    forward = route("kubectl-port-forward", Placement(), "native")
    assert components(forward.request).count("kubelet-stream") == 2
    assert proxy.connect == () and forward.connect == ()


def test_cloud_lb_adds_its_hop_only_when_present():
    assert "cloud-lb" in components(route("external-loadbalancer", Placement(), "native", cloud_lb=True).request)
    assert "cloud-lb" not in components(route("external-loadbalancer", Placement(), "native").request)


@pytest.mark.parametrize("sections,kind,says", [
    ({"services": {"type": "LoadBalancer"}}, "external-loadbalancer", "EXTERNAL-IP <pending>"),
    ({}, "external-nodeport", "set services.type: NodePort"),
    ({"services": {"type": "NodePort"}}, "external-loadbalancer", "no Service of type LoadBalancer"),
    ({"workload": {"protocol": "tcp"}}, "kubectl-proxy", "HTTP only"),
    ({"external": {"ingress": {"service_type": "LoadBalancer"}}}, "external-ingress",
     "set external.ingress.service_type: NodePort"),
    ({"services": {"type": "LoadBalancer"}, "external": {"load_balancer": {"provider": "cloud"}}},
     "external-loadbalancer", "use metallb"),
])
def test_unreachable_paths_say_why_and_what_fixes_them(sections, kind, says):
    assert says in unreachable(make_scenario(**sections), kind)


@pytest.mark.parametrize("sections", [
    {"services": {"type": "LoadBalancer"}, "cluster": {"provider": "cloud"}},
    {"services": {"type": "LoadBalancer"}, "external": {"load_balancer": {"provider": "metallb"}}},
])
def test_a_provider_makes_load_balancers_reachable(sections):
    assert unreachable(make_scenario(**sections), "external-loadbalancer") is None


def test_a_scenario_asking_for_an_unreachable_kind_is_refused():
    with pytest.raises(NetmodelError, match="external-loadbalancer cannot work here: the Service stays") as err:
        make_scenario(services={"type": "LoadBalancer"}, workload={"mix": {"external-loadbalancer": 1}})
    assert err.value.field == "workload.mix.external-loadbalancer"


def test_trace_lists_hops_with_rule_counts_and_costs(profile):
    sc = make_scenario(cluster={"nodes": 10}, services={"count": 100, "type": "NodePort"})
    t = trace(sc, profile, "external-nodeport")
    assert t.reachable and t.hops[0].where == "outside"
    (lookup,) = [h for h in t.hops if h.component == "nodeport-lookup"]
    assert lookup.phase == "connect" and "all 101 of KUBE-SERVICES" in lookup.action
    walked = int(lookup.action.split(": ")[2].split()[0].replace(",", ""))
    assert 101 + 1 + 11 <= walked <= 101 + 100 + 11
    assert lookup.cost_s == pytest.approx(walked * profile["iptables_rule"])
    assert {h.station for h in t.hops} >= {"softirq cores", "NIC tx / switch port", "app", "-"}
    assert t.totals()["request"] > 2 * sc.external.client_latency


def test_trace_of_an_unreachable_path_gives_the_reason(profile):
    t = trace(make_scenario(services={"type": "LoadBalancer"}), profile, "external-loadbalancer")
    assert not t.reachable and "pending" in t.reason and t.hops == ()
