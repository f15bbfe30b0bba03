"""The eBPF data plane's settings: how they resolve as Cilium and Calico resolve them, what
a kernel or a CNI cannot run, and the BPF conntrack map that evicts where netfilter drops."""

import pytest

from netmodel.connections.conntrack import conntrack_table
from netmodel.errors import NetmodelError
from netmodel.paths.dataplane import dataplane_of
from netmodel.runner.point import run_point
from netmodel.scenario.loader import load_scenario
from tests.conftest import make_scenario


def ebpf(kernel="6.1", cni="vxlan", **settings):
    return make_scenario(cluster={"kernel": kernel, "cni_datapath": cni},
                         kube_proxy={"mode": "ebpf", "ebpf": settings})


def test_cilium_defaults_route_through_the_host_stack_until_masquerading_is_bpf():
    """Cilium's bpf.masquerade defaults to false, and eBPF host routing needs it."""
    default = dataplane_of(ebpf())
    assert (default.bpf_host_routing, default.socket_lb, default.external, default.xdp,
            default.maglev) == (False, True, "snat", False, False)
    assert dataplane_of(ebpf(masquerade="bpf")).bpf_host_routing
    assert not dataplane_of(ebpf("5.4", masquerade="bpf")).bpf_host_routing  # auto: no 5.10
    assert dataplane_of(ebpf(cni="native", load_balancer_mode="hybrid")).external == "dsr"


def test_calico_defaults():
    calico = dataplane_of(ebpf(implementation="calico"))
    assert (calico.bpf_host_routing, calico.peer_redirect, calico.external) == (True, False, "tunnel")
    assert conntrack_table(ebpf(implementation="calico")).limit == 512_000
    assert conntrack_table(ebpf(masquerade="bpf")).limit == 524_288


def test_the_other_modes_ignore_the_ebpf_settings():
    sc = make_scenario(kube_proxy={"mode": "nftables", "ebpf": {"host_routing": "bpf"}})
    assert not dataplane_of(sc).bpf_host_routing
    assert conntrack_table(sc).name == "nf_conntrack"


@pytest.mark.parametrize("cluster,settings,says", [
    ({"kernel": "5.4"}, {"host_routing": "bpf", "masquerade": "bpf"},
     "kube_proxy.ebpf.host_routing: eBPF host routing needs kernel >= 5.10"),
    ({}, {"host_routing": "bpf"}, "needs eBPF masquerading (bpf.masquerade=true)"),
    ({"kernel": "4.19.0"}, {}, "cluster.kernel: cilium's eBPF data plane needs kernel >= 4.19.57"),
    ({"kernel": "5.2"}, {"implementation": "calico"}, "calico's eBPF data plane needs kernel >= 5.3"),
    ({}, {"load_balancer_mode": "dsr"}, "Cilium's DSR needs native routing"),
    ({"cni_datapath": "native"}, {"implementation": "calico", "load_balancer_mode": "hybrid"},
     "calico has no load_balancer_mode hybrid; expected one of tunnel, dsr"),
    ({}, {"load_balancer_mode": "tunnel"}, "cilium has no load_balancer_mode tunnel"),
    ({}, {"implementation": "calico", "algorithm": "maglev"}, "algorithm is a Cilium setting"),
])
def test_settings_the_kernel_or_the_cni_cannot_run_are_one_line(tmp_path, cluster, settings, says):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\n" + f"cluster: {cluster}\n" +
                    f"kube_proxy: {{mode: ebpf, ebpf: {settings}}}\n".replace("'", ""))
    with pytest.raises(NetmodelError, match=says.replace("(", r"\(").replace(")", r"\)")) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:")


def test_a_kernel_version_must_be_text(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ncluster: {kernel: 5.10}\n")
    with pytest.raises(NetmodelError, match='quote the kernel version, e.g. "5.10"'):
        load_scenario(path)


def _burst(**kube_proxy):
    """2,000 new connections at 5,000/s through 2 nodes whose tables hold 200 entries."""
    return make_scenario(cluster={"nodes": 2, "conntrack_max": 200, "conntrack_time_wait": "120s"},
                         kube_proxy=kube_proxy, services={"count": 4, "endpoints_per_service": 2},
                         workload={"rate": 5000, "mix": {"pod-pod-cross-node": 1}},
                         run={"requests": 2000})


def test_a_full_bpf_map_evicts_where_a_full_netfilter_table_drops(profile):
    netfilter = run_point(_burst(mode="iptables"), profile)[0]
    assert netfilter["conntrack_table"] == "nf_conntrack"
    assert netfilter["packets_dropped_conntrack_full"] > 0 and netfilter["conntrack_evictions"] == 0
    bpf = run_point(_burst(mode="ebpf", ebpf={"masquerade": "bpf", "ct_map_size": 200,
                                              "ct_close_timeout": "120s"}), profile)[0]
    assert bpf["conntrack_table"] == "bpf-ct"
    assert bpf["packets_dropped_conntrack_full"] == 0 and bpf["dropped"] == 0
    # the map holds 200: every connection after the first ~200 on a node evicts one entry
    assert bpf["conntrack_evictions"] > 1000
    assert bpf["conntrack_fill"] > 1


def test_the_bpf_map_lets_closed_connections_go_after_10_s_not_120_s(profile):
    """Little's law with the hold of each table: short connections at a steady rate."""
    common = {"cluster": {"nodes": 2}, "workload": {"rate": 1000, "mix": {"pod-pod-cross-node": 1}},
              "run": {"requests": 4000}}
    netfilter = run_point(make_scenario(**common), profile)[0]
    bpf = run_point(make_scenario(**common, kube_proxy={"mode": "ebpf", "ebpf": {"masquerade": "bpf"}}),
                    profile)[0]
    assert bpf["conntrack_entries"] / netfilter["conntrack_entries"] == pytest.approx(10 / 120, rel=0.02)
