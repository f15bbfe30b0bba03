"""Cost model: packets, MSS, wire bytes, rule walks, plans — against hand computation."""

import numpy as np
import pytest

from netmodel.cluster.rules import iptables_rules_walked, kube_services_length
from netmodel.costs.model import CostModel, zero_load_seconds
from netmodel.costs.profile import PARAMETERS, load_profile
from netmodel.errors import NetmodelError
from netmodel.paths import Leg, pod_to_pod
from netmodel.paths.dataplane import dataplane_of
from tests.conftest import make_scenario


def test_shipped_profile_has_every_parameter_with_unit_and_source(profile):
    assert set(profile.parameters) == set(PARAMETERS)
    for p in profile.parameters.values():
        assert p.source.strip() and p.per.strip()
        assert p.text[-1].isalpha()  # the value carries its unit


def test_mss_shrinks_by_vxlan_overhead(profile):
    native = CostModel(profile, make_scenario(cluster={"cni_datapath": "native"}))
    vxlan = CostModel(profile, make_scenario(cluster={"cni_datapath": "vxlan"}))
    assert native.mss() == 1448
    assert vxlan.mss() == 1398
    # 1,448 B fit one native packet but need two under VXLAN
    assert native.packets(1448) == 1 and vxlan.packets(1448) == 2
    assert vxlan.wire_bytes(1448, encapsulated=True) == 1448 + 2 * (52 + 38 + 50)
    assert vxlan.wire_bytes(1448, encapsulated=False) == 1448 + 2 * (52 + 38)


def test_offloads_charge_cpu_per_gso_segment(profile):
    on = CostModel(profile, make_scenario(cluster={"offloads": True}))
    off = CostModel(profile, make_scenario(cluster={"offloads": False, "cni_datapath": "native"}))
    assert on.cpu_segments(200_000) == 4  # ceil(200000 / 65536)
    assert off.cpu_segments(200_000) == 139  # ceil(200000 / 1448)


def test_iptables_walk_follows_kube_proxy_layout():
    assert kube_services_length(10) == 11
    assert iptables_rules_walked(1, 0) == 8  # 1 + 1 + 6
    ranks, eps = np.arange(1, 1001), np.arange(1000) % 10
    # expected (R + 1) / 2 + (E + 1) / 2 + 6 with R = 1000, E = 10
    assert iptables_rules_walked(ranks, eps).mean() == pytest.approx(500.5 + 5.5 + 6)


@pytest.mark.parametrize("mode,expected", [("ipvs", 2e-6), ("nftables", 2.35e-6), ("ebpf", 0.5e-6)])
def test_flat_modes_do_not_depend_on_rank(profile, mode, expected):
    m = CostModel(profile, make_scenario(kube_proxy={"mode": mode}))
    assert np.allclose(m.rule_lookup_seconds(np.array([1, 10_000]), np.array([0, 9])), expected)


def test_iptables_lookup_is_rules_times_rule_cost(profile):
    m = CostModel(profile, make_scenario(kube_proxy={"mode": "iptables"}))
    assert m.rule_lookup_seconds(np.array([5000]), np.array([4]))[0] == pytest.approx(5011 * 27e-9)


def _message(model, same_node):
    dp = dataplane_of(model.scenario)
    return model.plan((Leg("request", pod_to_pod("client", "server", same_node, dp)),))


def test_cross_node_message_plan_zero_load_by_hand(profile):
    m = CostModel(profile, make_scenario(cluster={"cni_datapath": "vxlan", "nic_speed": "10Gbps"},
                                         workload={"request_size": "100B"}))
    plan = _message(m, same_node=False)
    assert [(s.kind, s.at) for s in plan] == [("cpu", "client"), ("wire", "client"),
                                               ("cpu", "server"), ("delay", "server")]
    cpu_src = (8 + 2 + 1 + 0.8 + 1 + 19) * 1e-6  # tx, veth, bridge, netfilter, conntrack, encap
    cpu_dst = (3 + 19 + 0.8 + 1 + 1 + 2 + 5) * 1e-6  # nic, decap, netfilter, conntrack, bridge, veth, rx
    wire = (100 + 52 + 38 + 50) * 8 / 10e9
    assert plan[0].seconds == pytest.approx(cpu_src)
    assert plan[2].seconds == pytest.approx(cpu_dst)
    assert zero_load_seconds(plan) == pytest.approx(cpu_src + 2 * wire + 5e-6 + cpu_dst + 31.8e-6)


def test_same_node_plan_never_touches_the_wire(profile):
    m = CostModel(profile, make_scenario(workload={"request_size": "1000B"}))
    plan = _message(m, same_node=True)
    assert [s.kind for s in plan] == ["cpu", "delay"]
    assert plan[0].seconds == pytest.approx((8 + 2 + 1 + 0.8 + 1 + 2 + 5) * 1e-6)


def test_nodeport_walks_all_of_kube_services_first(profile):
    m = CostModel(profile, make_scenario(kube_proxy={"mode": "iptables"}))
    # R = 1001 rules in KUBE-SERVICES, 3rd in KUBE-NODEPORTS, endpoint 0: 1001 + 3 + 1 + 10
    assert m.nodeport_lookup_seconds(1001, np.array([3]), np.array([0]))[0] == pytest.approx(1015 * 27e-9)
    flat = CostModel(profile, make_scenario(kube_proxy={"mode": "nftables"}))
    assert flat.nodeport_lookup_seconds(100_001, np.array([3]), np.array([0]))[0] == 2.35e-6


def test_profile_override_needs_known_name_and_unit(profile):
    assert profile.with_overrides({"veth": "4us"})["veth"] == 4e-6
    with pytest.raises(NetmodelError, match="unknown cost parameter"):
        profile.with_overrides({"vethh": "4us"}, file="s.yaml", lines={"vethh": 9})
    for bare in (4, "4", "1e-6"):
        with pytest.raises(NetmodelError, match="give a unit"):
            profile.with_overrides({"veth": bare})
    assert profile.with_overrides({"veth": 0})["veth"] == 0
    with pytest.raises(NetmodelError, match="unknown time unit"):
        profile.with_overrides({"veth": "4parsecs"})


def test_unknown_shipped_profile_is_an_error():
    with pytest.raises(NetmodelError, match="no shipped cost profile 'nope'"):
        load_profile("nope")
