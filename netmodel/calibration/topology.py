"""The lab's small clusters, built from namespaces: nodes, Pods, bridges, veths, VXLAN.

A *node* is a namespace with a `cni0` bridge (its Pod CIDR's first address) and, for two
nodes, an underlay link `eth0` between them (a veth pair standing in for NIC, cable and
switch). A *Pod* is a namespace with `eth0`, the peer of a veth on its node's bridge, and a
default route to the bridge. Cross-node Pod traffic is routed natively (each node routes
the other's Pod CIDR via its underlay address) or through a `vxlan0` device (VNI 1,
dstport 8472 as flannel; Pod MTU 1450). `conntrack=True` makes a node track connections as
a Kubernetes node does: bridged traffic goes through netfilter
(`net.bridge.bridge-nf-call-iptables=1`, as kubelet requires) and kube-proxy's KUBE-FORWARD
INVALID-drop rule is in place. Every address is inside `netns.LAB_NETWORK`.

Variants for the data-path measurements (`DATAPATHS`): `loopback` (client and server in
one Pod over 127.0.0.1: the TCP stack alone), `veth` (two Pods joined by one veth pair),
`bridge` (two Pods on one node, no conntrack), `bridge-conntrack` (the same, tracked: the
model's same-node path), `node-to-node` (the two nodes' own addresses over the underlay),
`native` and `vxlan` (a Pod on each node).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netmodel.calibration.netns import Namespaces

UNDERLAY = "198.18.0.{}"
POD_NET = "198.18.{}.{}"
VXLAN_ID, VXLAN_PORT, VXLAN_MTU = "1", "8472", "1450"
DATAPATHS = ("loopback", "veth", "bridge", "bridge-conntrack", "node-to-node", "native", "vxlan")


@dataclass
class Endpoint:
    """Where a probe runs: a namespace and the address it serves or is reached on."""

    ns: str
    ip: str


@dataclass
class Cluster:
    """A lab cluster: the client and server endpoints of a measurement, and its nodes."""

    client: Endpoint
    server: Endpoint
    nodes: list[str] = field(default_factory=list)


def _node(ns: Namespaces, name: str, index: int, conntrack: bool, forward_rule: bool = True) -> str:
    node = ns.add(name)
    ns.exec(node, "ip", "link", "add", "cni0", "type", "bridge")
    ns.exec(node, "ip", "addr", "add", f"{POD_NET.format(index, 1)}/24", "dev", "cni0")
    ns.exec(node, "ip", "link", "set", "cni0", "up")
    ns.exec(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    ns.exec(node, "sysctl", "-qw", f"net.bridge.bridge-nf-call-iptables={int(conntrack)}")
    if conntrack and forward_rule:
        ns.exec(node, "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID",
                "-j", "DROP")
    return node


def _pod(ns: Namespaces, node: str, name: str, index: int, host: int, mtu: str = "1500") -> Endpoint:
    """A Pod namespace on `node`'s bridge at 198.18.<index>.<host>."""
    pod = ns.add(name)
    veth = f"veth-{name}"[:15]  # unique within its node
    ns.exec(node, "ip", "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", "eth0",
            "netns", pod)
    ns.exec(node, "ip", "link", "set", veth, "master", "cni0", "up")
    ip = POD_NET.format(index, host)
    ns.exec(pod, "ip", "link", "set", "eth0", "mtu", mtu, "up")
    ns.exec(pod, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    ns.exec(pod, "ip", "route", "add", "default", "via", POD_NET.format(index, 1))
    return Endpoint(pod, ip)


def one_node(ns: Namespaces, conntrack: bool = True, forward_rule: bool = True, tag: str = "") -> Cluster:
    """Two Pods on one node (client 198.18.1.2, server 198.18.1.3); `forward_rule` False
    leaves the INVALID-drop rule to the kube-proxy table the caller restores; `tag` tells
    apart the namespaces of several such clusters alive at once."""
    node = _node(ns, f"node{tag}", 1, conntrack, forward_rule)
    client = _pod(ns, node, f"client{tag}", 1, 2)
    server = _pod(ns, node, f"server{tag}", 1, 3)
    return Cluster(client, server, [node])


def loopback(ns: Namespaces) -> Cluster:
    """Client and server in one Pod namespace, over 127.0.0.1."""
    pod = ns.add("pod")
    return Cluster(Endpoint(pod, "127.0.0.1"), Endpoint(pod, "127.0.0.1"))


def veth_pair(ns: Namespaces) -> Cluster:
    """Two Pod namespaces joined by one veth pair (198.18.9.1 and .2)."""
    a, b = ns.add("client"), ns.add("server")
    ns.exec(a, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
    for pod, host in ((a, 1), (b, 2)):
        ns.exec(pod, "ip", "addr", "add", f"{POD_NET.format(9, host)}/24", "dev", "eth0")
        ns.exec(pod, "ip", "link", "set", "eth0", "up")
    return Cluster(Endpoint(a, POD_NET.format(9, 1)), Endpoint(b, POD_NET.format(9, 2)))


def two_nodes(ns: Namespaces, datapath: str) -> Cluster:
    """Nodes A and B (Pod CIDRs 198.18.1.0/24, 198.18.2.0/24, underlay 198.18.0.1 and .2),
    tracked, a Pod on each; `datapath` native, vxlan or node-to-node (the nodes' own
    addresses talk)."""
    a, b = _node(ns, "node-a", 1, True), _node(ns, "node-b", 2, True)
    ns.exec(a, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
    for node, i in ((a, 1), (b, 2)):
        ns.exec(node, "ip", "addr", "add", f"{UNDERLAY.format(i)}/24", "dev", "eth0")
        ns.exec(node, "ip", "link", "set", "eth0", "up")
    if datapath == "node-to-node":
        return Cluster(Endpoint(a, UNDERLAY.format(1)), Endpoint(b, UNDERLAY.format(2)), [a, b])
    mtu = VXLAN_MTU if datapath == "vxlan" else "1500"
    for node, i, other in ((a, 1, 2), (b, 2, 1)):
        via = UNDERLAY.format(other)
        if datapath == "vxlan":
            ns.exec(node, "ip", "link", "add", "vxlan0", "type", "vxlan", "id", VXLAN_ID, "local",
                    UNDERLAY.format(i), "remote", via, "dstport", VXLAN_PORT, "dev", "eth0")
            ns.exec(node, "ip", "addr", "add", f"{POD_NET.format(250, i)}/24", "dev", "vxlan0")
            ns.exec(node, "ip", "link", "set", "vxlan0", "up")
            via = POD_NET.format(250, other)
        ns.exec(node, "ip", "route", "add", f"{POD_NET.format(other, 0)}/24", "via", via)
    client = _pod(ns, a, "client", 1, 2, mtu)
    server = _pod(ns, b, "server", 2, 2, mtu)
    return Cluster(client, server, [a, b])


def datapath(ns: Namespaces, name: str) -> Cluster:
    """The lab cluster of data-path variant `name` (one of DATAPATHS)."""
    if name == "loopback":
        return loopback(ns)
    if name == "veth":
        return veth_pair(ns)
    if name in ("bridge", "bridge-conntrack"):
        return one_node(ns, conntrack=name == "bridge-conntrack")
    return two_nodes(ns, name)
