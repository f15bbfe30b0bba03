"""Which hops a request takes through the four network layers, and why.

A path is a tuple of `Hop`s for one message (or one connection set-up) from a
source Pod to a destination Pod. Paths say *what happens where* (layer, component,
which node's station); `netmodel.costs` says *what it costs*; `netmodel.sim`
schedules it. Later traffic kinds (NodePort, LoadBalancer, Ingress, kubectl) add
paths here without touching the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TrafficKind = Literal["pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"]
TRAFFIC_KINDS: tuple[str, ...] = get_args(TrafficKind)

Layer = Literal["node", "pod", "service"]
Side = Literal["src", "dst"]
Station = Literal["softirq", "nic", "delay"]
"""A node's softirq cores, the NIC ports of a link (transmit and receive), or no queue."""


@dataclass(frozen=True)
class Hop:
    """One step of a path.

    `component` is the cost key family (see `netmodel.costs.model`); `side` says
    on which node's station it is paid (the sender's or the receiver's);
    `station` is the queue it waits in: a node's softirq cores, its NIC
    transmit queue, or a pure delay that queues nowhere.
    """

    layer: Layer
    component: str
    side: Side
    station: Station
    action: str


def message_path(same_node: bool, cni_datapath: str) -> tuple[Hop, ...]:
    """Hops of one message (request or response) from a sending Pod to a receiving Pod."""
    src_out = (
        Hop("pod", "tcp-stack-tx", "src", "softirq", "socket write, TCP/IP transmit"),
        Hop("pod", "veth", "src", "softirq", "leave the Pod netns through its veth pair"),
        Hop("pod", "bridge", "src", "softirq", "cni0 bridge / host routing"),
        Hop("service", "conntrack", "src", "softirq", "netfilter conntrack: established hit"),
    )
    dst_in = (
        Hop("pod", "veth", "dst", "softirq", "enter the Pod netns through its veth pair"),
        Hop("pod", "tcp-stack-rx", "dst", "softirq", "TCP/IP receive, socket queue"),
        Hop("pod", "wakeup", "dst", "delay", "interrupt moderation and wake-up of the reader"),
    )
    if same_node:
        return src_out + dst_in
    encap = (Hop("pod", "vxlan-encap", "src", "softirq", "VXLAN encapsulation (+50 B)"),) \
        if cni_datapath == "vxlan" else ()
    decap = (Hop("pod", "vxlan-decap", "dst", "softirq", "VXLAN decapsulation"),) \
        if cni_datapath == "vxlan" else ()
    wire = (
        Hop("node", "wire", "src", "nic", "NIC transmit queue, link and switch port to the "
                                          "receiving NIC, each at line rate"),
        Hop("node", "nic-rx", "dst", "softirq", "NIC driver receive, NAPI poll, GRO, IP receive"),
    )
    return src_out + encap + wire + decap + (
        Hop("service", "conntrack", "dst", "softirq", "netfilter conntrack: established hit"),
        Hop("pod", "bridge", "dst", "softirq", "host routing / cni0 bridge"),
    ) + dst_in


def connect_path(via_cluster_ip: bool) -> tuple[Hop, ...]:
    """Extra hops of a NEW connection, paid before its SYN leaves the client's node.

    Through a ClusterIP the first packet walks the Service proxy's rules on the
    client's node (DNAT to one endpoint); conntrack then carries every later packet.
    """
    hops = [Hop("pod", "connection-setup", "src", "softirq",
                "socket, SYN, conntrack entry insert (client side)")]
    if via_cluster_ip:
        hops.append(Hop("service", "rule-lookup", "src", "softirq",
                        "kube-proxy rules: ClusterIP -> endpoint (DNAT)"))
    return tuple(hops)


def accept_path() -> tuple[Hop, ...]:
    """Hops a NEW connection costs on the server's node (SYN receive, accept)."""
    return (Hop("pod", "connection-setup", "dst", "softirq",
                "SYN receive, conntrack entry, accept (server side)"),)
