"""Routes: which hops each traffic kind takes, and why some cannot work."""

from dataclasses import replace

import pytest

from netmodel.connections.trace import trace
from netmodel.errors import NetmodelError
from netmodel.paths import Placement, route
from netmodel.paths.dataplane import Dataplane
from netmodel.paths.reachability import unreachable
from netmodel.vocabulary import TRAFFIC_KINDS
from tests.conftest import make_scenario


def components(legs):
    return [h.component for leg in legs for h in leg.hops]


def test_every_kind_has_a_route_that_serves_the_request_at_the_app():
    for kind in TRAFFIC_KINDS:
        r = route(kind, Placement(), Dataplane("iptables", "vxlan"), tls=True, cloud_lb=True)
        assert components(r.request).count("app") == 1, kind


def test_clusterip_route_by_hand():
    r = route("pod-clusterip", Placement(same_node=True), Dataplane("iptables", "native"))
    assert components(r.connect) == [
        "connection-setup", "rule-lookup", "tcp-stack-tx", "veth", "bridge", "netfilter", "conntrack",
        "veth", "tcp-stack-rx", "connection-setup",
        "tcp-stack-tx", "veth", "bridge", "netfilter", "conntrack", "veth", "tcp-stack-rx", "wakeup"]
    cross = route("pod-pod-cross-node", Placement(same_node=False), Dataplane("iptables", "vxlan"))
    assert "rule-lookup" not in components(cross.connect)
    assert components(cross.request)[:11] == ["tcp-stack-tx", "veth", "bridge", "netfilter", "conntrack",
                                              "vxlan-encap", "wire", "nic-rx", "vxlan-decap", "netfilter",
                                              "conntrack"]


def test_nodeport_cluster_policy_snats_and_takes_a_second_hop():
    remote = route("external-nodeport", Placement(entry_is_server=False, snat=True), Dataplane("iptables", "native"))
    hops = [(h.component, h.at) for leg in remote.request for h in leg.hops]
    assert ("nodeport-lookup", "entry") not in hops  # rules are walked once, at set-up
    setup = [(h.component, h.at) for h in remote.connect[0].hops]
    assert setup[:6] == [("internet", "external-client"), ("wire", "external-client"),
                         ("nic-rx", "entry"), ("netfilter", "entry"), ("conntrack", "entry"),
                         ("nodeport-lookup", "entry")]
    assert setup[6] == ("snat", "entry")
    assert ("wire", "entry") in setup  # the second node hop
    local = route("external-nodeport", Placement(entry_is_server=True, snat=False), Dataplane("iptables", "native"))
    setup = [(h.component, h.at) for h in local.connect[0].hops]
    assert ("snat", "entry") not in setup
    assert [c for c, _ in setup].count("wire") == 1  # only the way in


CILIUM = Dataplane("ebpf", "native", bpf_host_routing=True, socket_lb=True, peer_redirect=True,
                  implementation="cilium")


def test_ebpf_host_routing_bypasses_netfilter_on_every_packet():
    cross = route("pod-clusterip", Placement(same_node=False), CILIUM)
    assert components(cross.request[0:1]) == [
        "tcp-stack-tx", "veth", "bpf-ct", "bpf-redirect", "wire", "nic-rx", "bpf-ct", "bpf-redirect",
        "tcp-stack-rx", "wakeup"]  # no netfilter, no conntrack, no bridge, no veth on the way in
    every = components(cross.connect) + components(cross.request)
    assert not {"netfilter", "conntrack", "bridge", "bpf-lb"} & set(every)
    assert every.count("rule-lookup") == 1  # socket LB: at connect(), nothing per packet
    same = route("pod-pod-same-node", Placement(same_node=True), CILIUM)
    assert components(same.request[0:1]) == ["tcp-stack-tx", "veth", "bpf-ct", "bpf-redirect",
                                             "bpf-ct", "tcp-stack-rx", "wakeup"]


def test_legacy_host_routing_walks_netfilter_and_the_bpf_programs():
    legacy = replace(CILIUM, bpf_host_routing=False, peer_redirect=False)
    hops = components(route("pod-pod-cross-node", Placement(), legacy).request[0:1])
    assert hops == ["tcp-stack-tx", "veth", "bpf-ct", "bridge", "netfilter", "conntrack", "wire",
                    "nic-rx", "netfilter", "conntrack", "bridge", "bpf-ct", "veth", "tcp-stack-rx",
                    "wakeup"]


def test_calico_enters_the_pod_through_its_veth():
    calico = replace(CILIUM, peer_redirect=False, implementation="calico", external="tunnel")
    hops = components(route("pod-pod-cross-node", Placement(), calico).request[0:1])
    assert hops[-5:] == ["bpf-ct", "bpf-redirect", "veth", "tcp-stack-rx", "wakeup"]


def test_a_clusterip_translated_per_packet_pays_at_the_client_both_ways():
    for dp in (replace(CILIUM, socket_lb=False), Dataplane("ipvs", "native")):
        r = route("pod-clusterip", Placement(), dp)
        nat = {"ebpf": "bpf-lb", "ipvs": "ipvs-conn"}[dp.proxy]
        there, back = r.request[0].hops, r.request[2].hops
        assert [h.at for h in there if h.component == nat] == ["client"]
        assert [h.at for h in back if h.component == nat] == ["client"]
    assert "bpf-lb" not in components(route("pod-pod-cross-node", Placement(),
                                            replace(CILIUM, socket_lb=False)).request)


def _external(dp, snat=True):
    r = route("external-nodeport", Placement(entry_is_server=False, snat=snat), dp)
    return [(h.component, h.at, h.to) for h in r.connect[0].hops], [
        (h.component, h.at, h.to) for h in r.request[2].hops]


def test_nodeport_replies_snat_back_through_the_entry_node_or_leave_directly_under_dsr():
    syn, reply = _external(CILIUM)
    assert ("snat", "entry", None) in syn
    assert ("wire", "server", "entry") in reply and ("wire", "entry", "external-client") in reply
    syn, reply = _external(replace(CILIUM, external="dsr"))
    assert ("snat", "entry", None) not in syn  # DSR keeps the client's address
    assert [(c, at, to) for c, at, to in reply if c == "wire"] == [("wire", "server", "external-client")]


def test_xdp_forwards_nodeport_packets_for_other_nodes_in_the_driver():
    syn, reply = _external(replace(CILIUM, xdp=True))
    assert ("xdp-rx", "entry", None) in syn and ("nic-rx", "entry", None) not in syn
    assert ("bpf-redirect", "entry", None) not in syn  # XDP_TX, not a redirect
    assert ("xdp-rx", "entry", None) in reply
    local = route("external-nodeport", Placement(entry_is_server=True), replace(CILIUM, xdp=True))
    assert "xdp-rx" not in components(local.connect)  # XDP passes a local backend's packet up


def test_calico_tunnels_nodeport_traffic_and_keeps_the_client_address():
    syn, reply = _external(replace(CILIUM, implementation="calico", external="tunnel",
                                   peer_redirect=False))
    assert ("vxlan-encap", "entry", None) in syn and ("vxlan-encap", "server", None) in reply
    assert ("snat", "entry", None) not in syn


def test_ingress_terminates_tls_once_and_proxies_every_request():
    r = route("external-ingress", Placement(snat=True), Dataplane("iptables", "vxlan"), tls=True)
    assert components(r.connect).count("tls-handshake") == 1
    assert components(r.request).count("ingress-proxy") == 1
    assert "tls-handshake" not in components(route("external-ingress", Placement(), Dataplane("iptables", "vxlan"),
                                                   tls=False).connect)


def test_kubectl_paths_go_through_the_api_server():
    proxy = route("kubectl-proxy", Placement(), Dataplane("iptables", "native"))
    assert components(proxy.request).count("apiserver-proxy") == 2  # in and out
    forward = route("kubectl-port-forward", Placement(), Dataplane("iptables", "native"))
    assert components(forward.request).count("kubelet-stream") == 2
    assert proxy.connect == () and forward.connect == ()


def test_cloud_lb_adds_its_hop_only_when_present():
    assert "cloud-lb" in components(route("external-loadbalancer", Placement(), Dataplane("iptables", "native"), cloud_lb=True).request)
    assert "cloud-lb" not in components(route("external-loadbalancer", Placement(), Dataplane("iptables", "native")).request)


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
