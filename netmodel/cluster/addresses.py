"""The three kinds of IP in a cluster: node addresses, Pod CIDRs and ClusterIPs.

A node reports up to three addresses (`status.addresses`): its InternalIP on the node
network, an ExternalIP that only a cloud provider fills in (on bare metal kubectl shows
`EXTERNAL-IP <none>`), and its Hostname. Each node gets one block of the cluster's Pod
CIDR for its Pods (`spec.podCIDR`). Every Service that is not headless or ExternalName
gets a ClusterIP from the Service CIDR; the first address of that range belongs to the
`kubernetes` Service (the API server), as kube-apiserver allocates it.

Everything here is arithmetic on `ipaddress` objects: nothing is contacted. Cloud
ExternalIPs are labels taken from ranges reserved for documentation (RFC 5737) and,
beyond their 762 addresses, benchmarking (RFC 2544), so they can never be mistaken for
a real address.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, Iterator

from netmodel.units import format_count

if TYPE_CHECKING:
    from netmodel.scenario.schema import Scenario

CLOUD_EXTERNAL_RANGES: tuple[IPv4Network, ...] = (
    IPv4Network("203.0.113.0/24"),   # TEST-NET-3, RFC 5737
    IPv4Network("198.51.100.0/24"),  # TEST-NET-2, RFC 5737
    IPv4Network("192.0.2.0/24"),     # TEST-NET-1, RFC 5737
    IPv4Network("198.18.0.0/15"),    # benchmarking, RFC 2544
)
"""Where `provider: cloud` ExternalIPs come from, in order: node i gets the i-th host
address of these ranges taken one after another (labels only, never contacted)."""
KUBERNETES_SERVICE_OFFSET = 1
"""The `kubernetes` Service takes the first address after the network address of the
Service CIDR (10.96.0.1 in 10.96.0.0/12); other Services get addresses after it."""


class AllocationError(ValueError):
    """An address range too small for what the scenario puts in it.

    `location` is the scenario section the error belongs to; the scenario loader
    reports the error at that section's line.
    """

    location: tuple[str, ...] = ("cluster",)


@dataclass(frozen=True)
class NodeAddresses:
    """What `kubectl get node -o wide` shows of a node's addresses, and its Pod CIDR."""

    name: str
    internal_ip: IPv4Address
    """InternalIP: reachable only inside the cluster (the node network)."""
    external_ip: IPv4Address | None
    """ExternalIP: set by a cloud provider; None on bare metal (kubectl: <none>)."""
    hostname: str
    pod_cidr: IPv4Network
    """The node's block of the cluster Pod CIDR: its Pods' IPs come from here."""


def node_addresses(scenario: "Scenario") -> list[NodeAddresses]:
    """Return the addresses of every node, in node order.

    From the inventory when there is one: its values are kept and a missing InternalIP
    or Pod CIDR is allocated from what the other nodes leave free. Otherwise node i is
    `node-{i}` (also its hostname), with the i-th host address of `cluster.node_network`
    and the i-th `/node_cidr_mask` block of `cluster.pod_cidr`. ExternalIPs of generated
    nodes are set only on `provider: cloud` (see `CLOUD_EXTERNAL_RANGES`); inventory
    nodes keep what they list.
    """
    cluster = scenario.cluster
    if scenario.inventory is None:
        cloud = cluster.provider == "cloud"
        return [NodeAddresses(name=f"node-{i}", internal_ip=_host(cluster.node_network, i),
                              external_ip=_cloud_external_ip(i) if cloud else None,
                              hostname=f"node-{i}",
                              pod_cidr=_block(cluster.pod_cidr, cluster.node_cidr_mask, i))
                for i in range(cluster.nodes)]
    nodes = scenario.inventory.nodes
    free_hosts = _free_hosts(cluster.node_network,
                             {n.internal_ip for n in nodes if n.internal_ip is not None})
    free_blocks = _free_blocks(cluster.pod_cidr, cluster.node_cidr_mask,
                               [n.pod_cidr for n in nodes if n.pod_cidr is not None])
    return [NodeAddresses(name=n.name,
                          internal_ip=n.internal_ip if n.internal_ip is not None
                          else _take(free_hosts, "cluster.node_network"),
                          external_ip=n.external_ip,
                          hostname=n.hostname if n.hostname is not None else n.name,
                          pod_cidr=n.pod_cidr if n.pod_cidr is not None
                          else _take(free_blocks, "cluster.pod_cidr"))
            for n in nodes]


def cluster_ips(scenario: "Scenario") -> list[IPv4Address | None]:
    """Return the ClusterIP of every Service, in Service order; None where there is none.

    Generated Services (`services.count`) take consecutive addresses of
    `cluster.service_cidr` after the `kubernetes` Service's (10.96.0.2, 10.96.0.3, ...
    in 10.96.0.0/12). Inventory Services keep the ClusterIP they list, inside the
    Service CIDR or not; headless Services (`cluster_ip: 'None'`) and ExternalName
    Services have none; a missing one is allocated from what the others leave free.
    """
    cidr = scenario.cluster.service_cidr
    if scenario.inventory is None:
        first = int(cidr.network_address) + KUBERNETES_SERVICE_OFFSET + 1
        return [IPv4Address(first + i) for i in range(scenario.services.count)]
    services = scenario.inventory.services
    taken = {_kubernetes_ip(cidr)} | {s.cluster_ip for s in services
                                      if isinstance(s.cluster_ip, IPv4Address)}
    free = _free_hosts(cidr, taken)
    ips: list[IPv4Address | None] = []
    for svc in services:
        if svc.type == "ExternalName" or svc.headless:
            ips.append(None)
        elif isinstance(svc.cluster_ip, IPv4Address):
            ips.append(svc.cluster_ip)
        else:
            ips.append(_take(free, "cluster.service_cidr"))
    return ips


def check_allocation(scenario: "Scenario") -> None:
    """Raise AllocationError (a ValueError) when an address range cannot hold what the
    scenario puts in it: node blocks in the Pod CIDR, Pods in a node block, nodes on the
    node network, Services (and the `kubernetes` Service) in the Service CIDR.

    Addresses an inventory lists are accepted as they are, inside the ranges or not;
    only what is left to allocate is checked against what they leave free. Arithmetic
    only, so it is cheap for any cluster size.
    """
    cluster, inventory = scenario.cluster, scenario.inventory
    pod_cidr, mask = cluster.pod_cidr, cluster.node_cidr_mask
    node_network, service_cidr = cluster.node_network, cluster.service_cidr
    if mask < pod_cidr.prefixlen:
        raise AllocationError(
            f"cluster.node_cidr_mask /{mask} is shorter than the prefix of cluster.pod_cidr "
            f"{pod_cidr}: a node's Pod block must fit inside the Pod CIDR")
    pod_ips = _host_count(IPv4Network((0, mask)))
    if cluster.pods_per_node > pod_ips:
        raise AllocationError(
            f"a /{mask} node block (cluster.node_cidr_mask) holds {pod_ips:,} Pod IPs, but "
            f"cluster.pods_per_node is {cluster.pods_per_node:,}")
    blocks = 1 << (mask - pod_cidr.prefixlen)
    hosts = _host_count(node_network)
    cluster_ips_free = _host_count(service_cidr) - KUBERNETES_SERVICE_OFFSET
    if inventory is None:
        need_blocks = need_hosts = cluster.nodes
        need_ips = scenario.services.count
        nodes_text = f"the cluster has {cluster.nodes:,} nodes"
        services_text = f"services.count is {need_ips:,}"
        free = "holds"
    else:
        given_cidrs = [n.pod_cidr for n in inventory.nodes if n.pod_cidr is not None]
        blocks -= len(blocks_taken(pod_cidr, mask, given_cidrs))
        need_blocks = len(inventory.nodes) - len(given_cidrs)
        hosts -= len({n.internal_ip for n in inventory.nodes
                      if n.internal_ip is not None and n.internal_ip in node_network})
        need_hosts = sum(n.internal_ip is None for n in inventory.nodes)
        given_ips = {s.cluster_ip for s in inventory.services
                     if isinstance(s.cluster_ip, IPv4Address) and s.cluster_ip in service_cidr}
        cluster_ips_free -= len(given_ips - {_kubernetes_ip(service_cidr)})
        need_ips = sum(s.cluster_ip is None and s.type != "ExternalName"
                       for s in inventory.services)
        nodes_text = "{:,} inventory nodes have no {}"
        services_text = f"{need_ips:,} inventory Services have no cluster_ip"
        free = "has room for"
    if need_blocks > blocks:
        what = nodes_text.format(need_blocks, "pod_cidr") if inventory else nodes_text
        raise AllocationError(f"cluster.pod_cidr {pod_cidr} {free} "
                              f"{format_count(blocks, 'node block')} of /{mask}, but {what}")
    if need_hosts > hosts:
        what = nodes_text.format(need_hosts, "internal_ip") if inventory else nodes_text
        raise AllocationError(f"cluster.node_network {node_network} {free} "
                              f"{format_count(hosts, 'node address', 'es')}, but {what}")
    if need_ips > cluster_ips_free:
        raise AllocationError(
            f"cluster.service_cidr {service_cidr} {free} {format_count(cluster_ips_free, 'ClusterIP')} "
            f"besides the kubernetes Service's, but {services_text}")


# --- helpers -------------------------------------------------------------------------

def _host_count(network: IPv4Network) -> int:
    """Usable host addresses: all but the network and broadcast addresses (/31, /32: all)."""
    return network.num_addresses - 2 if network.prefixlen < 31 else network.num_addresses


def _host(network: IPv4Network, index: int) -> IPv4Address:
    """The index-th (0-based) usable host address of `network`."""
    first = int(network.network_address) + (1 if network.prefixlen < 31 else 0)
    return IPv4Address(first + index)


def _block(network: IPv4Network, prefix: int, index: int) -> IPv4Network:
    """The index-th (0-based) /prefix subnet of `network`."""
    return IPv4Network((int(network.network_address) + (index << (32 - prefix)), prefix))


def _kubernetes_ip(service_cidr: IPv4Network) -> IPv4Address:
    return IPv4Address(int(service_cidr.network_address) + KUBERNETES_SERVICE_OFFSET)


def _take(free: Iterator[Any], where: str) -> Any:
    """The next free address or block; check_allocation makes sure there is one."""
    for item in free:
        return item
    raise AllocationError(f"{where} is full")


def _cloud_external_ip(index: int) -> IPv4Address:
    for network in CLOUD_EXTERNAL_RANGES:
        if index < _host_count(network):
            return _host(network, index)
        index -= _host_count(network)
    raise AllocationError("more cloud nodes than documentation and benchmarking addresses")


def _free_hosts(network: IPv4Network, taken: set[IPv4Address]) -> Iterator[IPv4Address]:
    """The usable host addresses of `network` not in `taken`, in order."""
    return (ip for ip in (_host(network, i) for i in range(_host_count(network)))
            if ip not in taken)


def blocks_taken(network: IPv4Network, prefix: int,
                 given: list[IPv4Network]) -> set[int]:
    """Indices of the /prefix blocks of `network` that the `given` networks overlap."""
    base, size = int(network.network_address), 1 << (32 - prefix)
    taken: set[int] = set()
    for net in given:
        if net.overlaps(network):
            low = max(int(net.network_address), base) - base
            high = min(int(net.broadcast_address), int(network.broadcast_address)) - base
            taken.update(range(low // size, high // size + 1))
    return taken


def _free_blocks(network: IPv4Network, prefix: int,
                 given: list[IPv4Network]) -> Iterator[IPv4Network]:
    """The /prefix blocks of `network` that none of `given` overlaps, in order."""
    taken = blocks_taken(network, prefix, given)
    return (_block(network, prefix, i) for i in range(1 << (prefix - network.prefixlen))
            if i not in taken)
