"""The three kinds of IP: node addresses, Pod CIDRs, ClusterIPs, and the allocation check."""

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netmodel.cluster.addresses import (
    CLOUD_EXTERNAL_RANGES,
    NodeAddresses,
    check_allocation,
    cluster_ips,
    node_addresses,
)
from netmodel.errors import NetmodelError
from netmodel.scenario.loader import parse_scenario
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import expand_sweep
from tests.conftest import make_scenario


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def inventory_scenario(nodes: list[dict], services: list[dict], **cluster) -> Scenario:
    return make_scenario(cluster=cluster, inventory={"nodes": nodes, "services": services})


def error_of(**sections) -> str:
    with pytest.raises(NetmodelError) as err:
        make_scenario(**sections)
    assert err.value.field == "cluster"
    return err.value.message


# --- generated clusters -------------------------------------------------------------

def test_bare_metal_nodes_have_no_external_ip():
    nodes = node_addresses(make_scenario(cluster={"nodes": 3}))
    assert make_scenario().cluster.provider == "bare-metal"
    assert [n.external_ip for n in nodes] == [None, None, None]


def test_generated_nodes_by_hand():
    sc = make_scenario(cluster={"nodes": 3, "node_network": "10.0.0.0/24",
                                "pod_cidr": "10.244.0.0/16", "node_cidr_mask": 24})
    assert node_addresses(sc) == [
        NodeAddresses("node-0", ip("10.0.0.1"), None, "node-0", net("10.244.0.0/24")),
        NodeAddresses("node-1", ip("10.0.0.2"), None, "node-1", net("10.244.1.0/24")),
        NodeAddresses("node-2", ip("10.0.0.3"), None, "node-2", net("10.244.2.0/24")),
    ]


def test_small_node_blocks_are_consecutive():
    sc = make_scenario(cluster={"nodes": 3, "pods_per_node": 10, "pod_cidr": "10.1.0.0/26",
                                "node_cidr_mask": 28})
    assert [n.pod_cidr for n in node_addresses(sc)] == [
        net("10.1.0.0/28"), net("10.1.0.16/28"), net("10.1.0.32/28")]


def test_cloud_nodes_have_one_documentation_external_ip_each():
    nodes = node_addresses(make_scenario(cluster={"nodes": 3, "provider": "cloud"}))
    assert [n.external_ip for n in nodes] == [ip("203.0.113.1"), ip("203.0.113.2"),
                                              ip("203.0.113.3")]


def test_cloud_external_ips_go_on_past_the_first_range():
    sc = make_scenario(cluster={"nodes": 800, "provider": "cloud", "pod_cidr": "10.0.0.0/14"},
                       services={"count": 1})
    external = [n.external_ip for n in node_addresses(sc)]
    assert len(set(external)) == 800
    assert external[253:255] == [ip("203.0.113.254"), ip("198.51.100.1")]
    assert external[762] == ip("198.18.0.1")
    assert all(any(e in r for r in CLOUD_EXTERNAL_RANGES) for e in external)


def test_generated_cluster_ips_follow_the_kubernetes_service():
    sc = make_scenario(services={"count": 3}, cluster={"service_cidr": "10.96.0.0/12"})
    assert cluster_ips(sc) == [ip("10.96.0.2"), ip("10.96.0.3"), ip("10.96.0.4")]


@pytest.mark.parametrize("nodes, mask, prefix", [(1, 24, 16), (255, 24, 16), (40, 26, 20),
                                                 (3, 30, 28)])
def test_generated_addresses_are_distinct_and_inside_their_ranges(nodes, mask, prefix):
    sc = make_scenario(cluster={"nodes": nodes, "pods_per_node": 2, "node_cidr_mask": mask,
                                "pod_cidr": f"10.64.0.0/{prefix}", "node_network": "172.16.0.0/16"},
                       services={"count": 1, "endpoints_per_service": 1})
    addresses = node_addresses(sc)
    blocks = [a.pod_cidr for a in addresses]
    assert len(addresses) == nodes
    assert all(b.subnet_of(sc.cluster.pod_cidr) and b.prefixlen == mask for b in blocks)
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    internal = [a.internal_ip for a in addresses]
    assert len(set(internal)) == nodes and all(i in sc.cluster.node_network for i in internal)


# --- inventory clusters -------------------------------------------------------------

def test_inventory_keeps_given_addresses_and_allocates_the_missing_ones():
    sc = inventory_scenario(
        nodes=[{"name": "a", "internal_ip": "192.168.0.2", "pod_cidr": "10.244.0.0/24",
                "hostname": "a.lab"},
               {"name": "b", "external_ip": "198.51.100.7"},
               {"name": "c", "internal_ip": "172.20.0.9", "pod_cidr": "10.99.0.0/24"}],
        services=[{"name": "web"}], node_network="192.168.0.0/24")
    assert node_addresses(sc) == [
        NodeAddresses("a", ip("192.168.0.2"), None, "a.lab", net("10.244.0.0/24")),
        NodeAddresses("b", ip("192.168.0.1"), ip("198.51.100.7"), "b", net("10.244.1.0/24")),
        NodeAddresses("c", ip("172.20.0.9"), None, "c", net("10.99.0.0/24")),
    ]


def test_inventory_cluster_ips_none_for_headless_and_external_name():
    sc = inventory_scenario(
        nodes=[{"name": "a"}],
        services=[{"name": "web", "cluster_ip": "10.96.0.3"},
                  {"name": "web-headless", "cluster_ip": "None"},
                  {"name": "db", "type": "ExternalName"},
                  {"name": "new"},
                  {"name": "elsewhere", "cluster_ip": "172.30.0.5"}])
    assert sc.inventory.services[1].headless
    # .1 is the kubernetes Service's, .3 is taken: the new Service gets .2
    assert cluster_ips(sc) == [ip("10.96.0.3"), None, None, ip("10.96.0.2"), ip("172.30.0.5")]


def test_inventory_node_without_pod_cidr_needs_a_free_block():
    nodes = [{"name": "a", "pod_cidr": "10.1.0.0/25"}, {"name": "b", "pod_cidr": "10.1.0.128/25"},
             {"name": "c"}]
    with pytest.raises(NetmodelError, match=r"cluster.pod_cidr 10.1.0.0/24 has room for 0 node "
                                         r"blocks of /25, but 1 inventory nodes have no pod_cidr"):
        inventory_scenario(nodes, [{"name": "web"}], pod_cidr="10.1.0.0/24", node_cidr_mask=25,
                           pods_per_node=100)
    # addresses the inventory gives outside the ranges are accepted as they are
    sc = inventory_scenario([{"name": "a", "pod_cidr": "10.200.0.0/24", "internal_ip": "10.9.9.9"}],
                            [{"name": "web", "cluster_ip": "172.30.0.5"}],
                            pod_cidr="10.1.0.0/24", node_network="192.168.0.0/30",
                            service_cidr="10.96.0.0/30")
    assert node_addresses(sc)[0].pod_cidr == net("10.200.0.0/24")


def test_inventory_service_without_cluster_ip_needs_a_free_address():
    services = [{"name": "a", "cluster_ip": "10.96.0.2"}, {"name": "b"}]
    with pytest.raises(NetmodelError, match=r"cluster.service_cidr 10.96.0.0/30 has room for 0 "
                                         r"ClusterIPs besides the kubernetes Service's, but 1 "
                                         r"inventory Services have no cluster_ip"):
        inventory_scenario([{"name": "n"}], services, service_cidr="10.96.0.0/30")
    sc = inventory_scenario([{"name": "n"}], [{"name": "b"}], service_cidr="10.96.0.0/30")
    assert cluster_ips(sc) == [ip("10.96.0.2")]


# --- ranges too small ---------------------------------------------------------------

def test_pod_cidr_too_small_for_the_nodes():
    assert error_of(cluster={"nodes": 300}) == (
        "cluster.pod_cidr 10.244.0.0/16 holds 256 node blocks of /24, but the cluster has "
        "300 nodes")
    make_scenario(cluster={"nodes": 256})


def test_node_block_too_small_for_the_pods():
    assert error_of(cluster={"node_cidr_mask": 26}) == (
        "a /26 node block (cluster.node_cidr_mask) holds 62 Pod IPs, but cluster.pods_per_node "
        "is 110")
    make_scenario(cluster={"node_cidr_mask": 26, "pods_per_node": 62})


def test_service_cidr_too_small_for_the_services():
    # a /29 has 6 host addresses; the kubernetes Service takes one
    assert error_of(cluster={"service_cidr": "10.96.0.0/29"}, services={"count": 6}) == (
        "cluster.service_cidr 10.96.0.0/29 holds 5 ClusterIPs besides the kubernetes Service's, "
        "but services.count is 6")
    sc = make_scenario(cluster={"service_cidr": "10.96.0.0/29"}, services={"count": 5})
    assert cluster_ips(sc)[-1] == ip("10.96.0.6")


def test_node_network_too_small_for_the_nodes():
    assert error_of(cluster={"nodes": 7, "node_network": "192.168.1.0/29"}) == (
        "cluster.node_network 192.168.1.0/29 holds 6 node addresses, but the cluster has 7 nodes")
    make_scenario(cluster={"nodes": 6, "node_network": "192.168.1.0/29"})


def test_node_mask_shorter_than_the_pod_cidr():
    assert error_of(cluster={"node_cidr_mask": 12}) == (
        "cluster.node_cidr_mask /12 is shorter than the prefix of cluster.pod_cidr "
        "10.244.0.0/16: a node's Pod block must fit inside the Pod CIDR")


def test_check_allocation_raises_a_value_error():
    sc = make_scenario().model_copy(update={"cluster": make_scenario().cluster.model_copy(
        update={"nodes": 1000})})
    with pytest.raises(ValueError, match="holds 256 node blocks of /24, but the cluster has 1,000"):
        check_allocation(sc)


# --- as the user sees it ------------------------------------------------------------

def test_scenario_error_is_one_line_at_the_cluster_section(tmp_path):
    text = "name: big\nrun:\n  requests: 10\ncluster:\n  nodes: 300\n  mtu: 9000\n"
    with pytest.raises(NetmodelError) as err:
        parse_scenario(text, "big.yaml", tmp_path)
    assert str(err.value) == ("big.yaml:4: cluster: cluster.pod_cidr 10.244.0.0/16 holds 256 "
                              "node blocks of /24, but the cluster has 300 nodes")
    assert (err.value.line, err.value.field) == (4, "cluster")


def test_sweep_point_error_names_the_point(tmp_path):
    text = "name: grow\ncluster:\n  nodes: 10\nsweep:\n  axes:\n    cluster.nodes: [100, 1000]\n"
    with pytest.raises(NetmodelError) as err:
        expand_sweep(parse_scenario(text, "grow.yaml", tmp_path))
    assert str(err.value) == ("grow.yaml:4: sweep: point 1 (cluster.nodes=1000): cluster: "
                              "cluster.pod_cidr 10.244.0.0/16 holds 256 node blocks of /24, but "
                              "the cluster has 1,000 nodes")


def test_wider_pod_cidr_fixes_it(tmp_path):
    text = "name: big\ncluster:\n  nodes: 1000\n  pod_cidr: 10.244.0.0/14\n"
    loaded = parse_scenario(text, "big.yaml", tmp_path)
    assert node_addresses(loaded.scenario)[-1].pod_cidr == net("10.247.231.0/24")


def test_cluster_fields_read_from_yaml(tmp_path):
    text = ("name: x\ncluster:\n  provider: cloud\n  node_network: 10.10.0.0/16\n"
            "  pod_cidr: 10.128.0.0/14\n  node_cidr_mask: 23\n  service_cidr: 172.20.0.0/16\n")
    cluster = parse_scenario(text, "x.yaml", Path(tmp_path)).scenario.cluster
    assert (cluster.provider, cluster.node_network, cluster.pod_cidr, cluster.node_cidr_mask,
            cluster.service_cidr) == ("cloud", net("10.10.0.0/16"), net("10.128.0.0/14"), 23,
                                      net("172.20.0.0/16"))
