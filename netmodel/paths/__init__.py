"""Which hops a request takes through the four network layers, and why.

A `Route` is what one connection of a traffic kind does: the legs of its set-up and
the legs of each request (request message, work at stations, response message).
A `Leg` is an ordered tuple of `Hop`s carrying one payload. Hops name *where* they
happen by role — `client`, `entry` (the node external traffic enters), `proxy` (an
Ingress controller Pod or the API server), `server` (the endpoint Pod's node) — so
the same route serves every placement; the engine maps roles to nodes and stations
per connection (`external-client` is a client outside the cluster). `netmodel.costs` says what each hop costs; `netmodel.engines` schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layer = Literal["node", "pod", "service", "external"]
Role = Literal["client", "external-client", "entry", "proxy", "server", "lb", "dns"]
EXTERNAL_CLIENT = "external-client"
"""The role of a client outside the cluster: its own CPU and NIC are not modelled."""
Station = Literal["softirq", "nic", "delay", "work"]
"""A node's softirq cores, the NIC ports of a link, no queue, or a work station
(a Pod's workers, a load balancer, an Ingress controller, the API server, a kubelet)."""
Payload = Literal["empty", "request", "response"]


@dataclass(frozen=True)
class Hop:
    """One step: `component` is its cost key (see `netmodel.costs.model`), `at` the role
    whose station it waits in; a wire hop goes from `at` to `to`."""

    layer: Layer
    component: str
    at: Role
    station: Station
    action: str
    to: Role | None = None


@dataclass(frozen=True)
class Leg:
    """Hops that carry one payload (a message, or work done at stations)."""

    payload: Payload
    hops: tuple[Hop, ...]


@dataclass(frozen=True)
class Route:
    """A connection of one traffic kind: `connect` once, then `request` per request."""

    kind: str
    connect: tuple[Leg, ...]
    request: tuple[Leg, ...]


@dataclass(frozen=True)
class Placement:
    """What decides the shape of a route: which roles share a node.

    `entry_is_server`: an external packet enters on the endpoint's node (no second hop);
    `proxy_is_server` / `entry_is_proxy`: the proxy Pod shares a node with the endpoint /
    the entry node; `same_node`: in-cluster client and server on one node; `snat`: the
    entry node masquerades (externalTrafficPolicy Cluster). `dns_queries`: sequential
    DNS queries before connecting (0: none), to a CoreDNS Pod on the client's node or not,
    the last one forwarded upstream when `dns_upstream`.
    """

    same_node: bool = False
    entry_is_server: bool = False
    entry_is_proxy: bool = False
    proxy_is_server: bool = False
    snat: bool = False
    dns_queries: int = 0
    dns_same_node: bool = False
    dns_upstream: bool = False


# -- messages between Pods ----------------------------------------------------------
def pod_to_pod(src: str, dst: str, same_node: bool, cni_datapath: str,
               wakeup: bool = True) -> tuple[Hop, ...]:
    """Hops of one message from a Pod on role `src`'s node to a Pod on role `dst`'s node."""
    out = (Hop("pod", "tcp-stack-tx", src, "softirq", "socket write, TCP/IP transmit"),
           Hop("pod", "veth", src, "softirq", "leave the Pod netns through its veth pair"),
           Hop("pod", "bridge", src, "softirq", "cni0 bridge / host routing"),
           Hop("service", "conntrack", src, "softirq", "netfilter conntrack: established hit"))
    if same_node:
        return out + _into_pod(src, wakeup)
    return out + _node_to_node(src, dst, cni_datapath) + _into_pod(dst, wakeup)


def _node_to_node(src: str, dst: str, cni_datapath: str) -> tuple[Hop, ...]:
    """From one node's host netns to another node's, over the Pod network."""
    vxlan = cni_datapath == "vxlan"
    return ((Hop("pod", "vxlan-encap", src, "softirq", "VXLAN encapsulation (+50 B)"),) if vxlan else ()) + (
        Hop("node", "wire", src, "nic", "NIC transmit, link and switch port, at line rate", to=dst),
        Hop("node", "nic-rx", dst, "softirq", "NIC driver receive, NAPI poll, GRO, IP receive"),
    ) + ((Hop("pod", "vxlan-decap", dst, "softirq", "VXLAN decapsulation"),) if vxlan else ()) + (
        Hop("service", "conntrack", dst, "softirq", "netfilter conntrack: established hit"),
        Hop("pod", "bridge", dst, "softirq", "host routing / cni0 bridge"))


def _into_pod(at: str, wakeup: bool) -> tuple[Hop, ...]:
    return (Hop("pod", "veth", at, "softirq", "enter the Pod netns through its veth pair"),
            Hop("pod", "tcp-stack-rx", at, "softirq", "TCP/IP receive, socket queue")) + (
        (Hop("pod", "wakeup", at, "delay", "interrupt moderation and wake-up of the reader"),)
        if wakeup else ())


def _out_of_pod(at: str) -> tuple[Hop, ...]:
    return (Hop("pod", "tcp-stack-tx", at, "softirq", "socket write, TCP/IP transmit"),
            Hop("pod", "veth", at, "softirq", "leave the Pod netns through its veth pair"),
            Hop("pod", "bridge", at, "softirq", "cni0 bridge / host routing"),
            Hop("service", "conntrack", at, "softirq", "netfilter conntrack: established hit"))


# -- the node network from and to the outside ----------------------------------------
def from_outside(entry: str) -> tuple[Hop, ...]:
    """An external client's packet reaching the `entry` node's NIC."""
    return (Hop("external", "internet", EXTERNAL_CLIENT, "delay", "external client to the cluster edge"),
            Hop("node", "wire", EXTERNAL_CLIENT, "nic", "into the node's NIC at line rate", to=entry),
            Hop("node", "nic-rx", entry, "softirq", "NIC driver receive, NAPI poll, IP receive"),
            Hop("service", "conntrack", entry, "softirq", "netfilter conntrack"))


def to_outside(exit_: str) -> tuple[Hop, ...]:
    """A reply leaving node `exit_` for the external client."""
    return (Hop("service", "conntrack", exit_, "softirq", "conntrack: reverse NAT of the reply"),
            Hop("node", "wire", exit_, "nic", "NIC transmit at line rate", to=EXTERNAL_CLIENT),
            Hop("external", "internet", EXTERNAL_CLIENT, "delay", "cluster edge to the external client"))


def entry_to_pod(entry: str, dst: str, local: bool, cni_datapath: str,
                 wakeup: bool = True) -> tuple[Hop, ...]:
    """After DNAT on the entry node: into a Pod on the same node, or over the Pod network
    to the endpoint's node (the second node hop)."""
    routed = (Hop("pod", "bridge", entry, "softirq", "route to the endpoint's Pod CIDR"),)
    if local:
        return routed + _into_pod(entry, wakeup)
    return routed + _node_to_node(entry, dst, cni_datapath) + _into_pod(dst, wakeup)


def pod_to_entry(src: str, entry: str, local: bool, cni_datapath: str) -> tuple[Hop, ...]:
    """A reply from the endpoint Pod back to the entry node (conntrack un-NATs it there)."""
    if local:
        return _out_of_pod(src)
    return _out_of_pod(src) + _node_to_node(src, entry, cni_datapath)


# -- DNS -------------------------------------------------------------------------------
CLUSTER_SEARCH_DOMAINS = 3
"""<namespace>.svc.cluster.local, svc.cluster.local, cluster.local (kubelet's resolv.conf)."""
_DOTS = {"short": 0, "namespaced": 1, "external": 2}
"""Dots in the name a client resolves: 'web', 'web.prod', 'api.example.com'."""


def dns_queries(name: str, ndots: int, host_search_domains: int) -> int:
    """Sequential queries (each an A and AAAA pair) until a name resolves.

    A name with a trailing dot is absolute: one query. Otherwise, with fewer than
    `ndots` dots, resolv.conf's search list is tried first: a Service's short name
    resolves at the first domain, 'name.namespace' at the second, and an external name
    only after every search domain answered NXDOMAIN, as itself.
    """
    if name == "fqdn" or _DOTS[name] >= ndots:
        return 1
    found_at = {"short": 1, "namespaced": 2}  # <ns>.svc.cluster.local, then svc.cluster.local
    return found_at.get(name, CLUSTER_SEARCH_DOMAINS + host_search_domains + 1)


def _dns(p: Placement, dp: str) -> tuple[Leg, ...]:
    legs: list[Leg] = []
    for i in range(p.dns_queries):
        query = (Hop("service", "dns-rule-lookup", "client", "softirq",
                     "kube-proxy rules: kube-dns ClusterIP -> CoreDNS Pod (a new UDP flow)"),
                 ) + pod_to_pod("client", "dns", p.dns_same_node, dp)
        answer = (Hop("service", "coredns-query", "dns", "work",
                      "CoreDNS answers (A and AAAA; NXDOMAIN for a wrong search domain)"),)
        if p.dns_upstream and i == p.dns_queries - 1:
            answer += (Hop("external", "dns-upstream", "dns", "delay",
                           "cache miss: forwarded to the upstream resolver"),)
        legs += [Leg("empty", query), Leg("empty", answer),
                 Leg("empty", pod_to_pod("dns", "client", p.dns_same_node, dp))]
    return tuple(legs)


# -- routes ----------------------------------------------------------------------------
def route(kind: str, p: Placement, cni_datapath: str, *, tls: bool = False,
          cloud_lb: bool = False) -> Route:
    """The route of one connection of `kind` for the placement `p`."""
    if kind in ("pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"):
        return _in_cluster(kind, p, cni_datapath)
    if kind in ("external-nodeport", "external-loadbalancer"):
        return _external_service(kind, p, cni_datapath, cloud_lb and kind == "external-loadbalancer")
    if kind == "external-ingress":
        return _ingress(p, cni_datapath, tls, cloud_lb)
    if kind in ("kubectl-proxy", "kubectl-port-forward"):
        return _kubectl(kind, p, cni_datapath)
    raise ValueError(f"unknown traffic kind {kind!r}")


def _in_cluster(kind: str, p: Placement, dp: str) -> Route:
    setup = [Hop("pod", "connection-setup", "client", "softirq",
                 "socket, SYN, conntrack entry insert (client side)")]
    if kind == "pod-clusterip":
        setup.append(Hop("service", "rule-lookup", "client", "softirq",
                         "kube-proxy rules: ClusterIP -> endpoint (DNAT)"))
    syn = tuple(setup) + pod_to_pod("client", "server", p.same_node, dp, wakeup=False) + (
        Hop("pod", "connection-setup", "server", "softirq", "SYN receive, accept (server side)"),)
    return Route(kind, _dns(p, dp) + (Leg("empty", syn),
                                      Leg("empty", pod_to_pod("server", "client", p.same_node, dp))),
                 (Leg("request", pod_to_pod("client", "server", p.same_node, dp)), _app(),
                  Leg("response", pod_to_pod("server", "client", p.same_node, dp))))


def _app() -> Leg:
    return Leg("request", (Hop("pod", "app", "server", "work", "the endpoint Pod's app serves the request"),))


def _cloud_lb(present: bool) -> tuple[tuple[Hop, ...], tuple[Hop, ...]]:
    """Hops through a cloud load balancer in front of the node ports, in and out."""
    if not present:
        return (), ()
    return ((Hop("external", "cloud-lb", "lb", "work", "cloud load balancer: pick a healthy node"),
             Hop("external", "cloud-lb-latency", "lb", "delay", "load balancer forwarding latency")),
            (Hop("external", "cloud-lb-latency", "lb", "delay", "back through the load balancer"),))


def _nodeport_in(p: Placement, dp: str, dst: str, local: bool, syn: bool) -> tuple[Hop, ...]:
    """On the entry node: a SYN walks the NodePort rules (and is masqueraded under policy
    Cluster); later packets are translated by their conntrack entry."""
    hops: tuple[Hop, ...] = ()
    if syn:
        hops = (Hop("service", "nodeport-lookup", "entry", "softirq",
                    "kube-proxy rules: NodePort -> endpoint (DNAT)"),)
        if p.snat:
            hops += (Hop("service", "snat", "entry", "softirq",
                         "masquerade (externalTrafficPolicy Cluster): client IP lost"),)
    return hops + entry_to_pod("entry", dst, local, dp, wakeup=not syn)


def _via_node_port(p: Placement, dp: str, target: str, local: bool, cloud_lb: bool):
    """Between an outside client and a Pod on role `target` through a node port (behind a
    cloud LB if any): `inbound(syn)` hops and the `outbound` hops of a reply."""
    lb_in, lb_out = _cloud_lb(cloud_lb)

    def inbound(syn: bool) -> tuple[Hop, ...]:
        return lb_in + from_outside("entry") + _nodeport_in(p, dp, target, local, syn)

    return inbound, pod_to_entry(target, "entry", local, dp) + to_outside("entry") + lb_out


def _external_service(kind: str, p: Placement, dp: str, cloud_lb: bool) -> Route:
    inbound, outbound = _via_node_port(p, dp, "server", p.entry_is_server, cloud_lb)
    syn = inbound(True) + (Hop("pod", "connection-setup", "server", "softirq",
                                "SYN receive, accept (server side)"),)
    return Route(kind, (Leg("empty", syn), Leg("empty", outbound)),
                 (Leg("request", inbound(False)), _app(), Leg("response", outbound)))


def _ingress(p: Placement, dp: str, tls: bool, cloud_lb: bool) -> Route:
    inbound, outbound = _via_node_port(p, dp, "proxy", p.entry_is_proxy, cloud_lb)
    accept = (Hop("pod", "connection-setup", "proxy", "softirq", "SYN receive, accept (Ingress controller)"),)
    connect = [Leg("empty", inbound(True) + accept), Leg("empty", outbound)]
    if tls:
        connect += [Leg("empty", inbound(False) + (
            Hop("pod", "tls-handshake", "proxy", "work", "TLS handshake: key exchange, certificate"),)),
            Leg("empty", outbound)]
    upstream = pod_to_pod("proxy", "server", p.proxy_is_server, dp)
    back = pod_to_pod("server", "proxy", p.proxy_is_server, dp)
    return Route("external-ingress", tuple(connect), (
        Leg("request", inbound(False)),
        Leg("request", (Hop("pod", "ingress-proxy", "proxy", "work",
                            "L7 proxy: parse, route by host and path, pick an endpoint"),)),
        Leg("request", upstream), _app(), Leg("response", back), Leg("response", outbound)))


def _kubectl(kind: str, p: Placement, dp: str) -> Route:
    """kubectl proxy: HTTP through the API server to the Pod. kubectl port-forward: one
    TCP stream client -> API server -> kubelet on the Pod's node -> the Pod."""
    to_api = (Hop("external", "internet", EXTERNAL_CLIENT, "delay", "kubectl to the API server"),
              Hop("node", "wire", EXTERNAL_CLIENT, "nic", "into the control-plane node's NIC", to="proxy"),
              Hop("node", "nic-rx", "proxy", "softirq", "NIC driver receive"),
              Hop("pod", "tcp-stack-rx", "proxy", "softirq", "API server socket receive"))
    from_api = (Hop("pod", "tcp-stack-tx", "proxy", "softirq", "API server socket write"),
                Hop("node", "wire", "proxy", "nic", "NIC transmit", to=EXTERNAL_CLIENT),
                Hop("external", "internet", EXTERNAL_CLIENT, "delay", "API server to kubectl"))
    if kind == "kubectl-proxy":
        api = Hop("service", "apiserver-proxy", "proxy", "work",
                  "API server: authn/authz, services/proxy subresource, pick an endpoint")
        onward = pod_to_pod("proxy", "server", False, dp)
        back = pod_to_pod("server", "proxy", False, dp)
    else:
        api = Hop("service", "apiserver-stream", "proxy", "work",
                  "API server relays the port-forward stream (SPDY/WebSocket)")
        onward = (Hop("pod", "tcp-stack-tx", "proxy", "softirq", "API server to kubelet stream"),
                  Hop("node", "wire", "proxy", "nic", "control-plane node to the Pod's node", to="server"),
                  Hop("node", "nic-rx", "server", "softirq", "NIC driver receive"),
                  Hop("pod", "kubelet-stream", "server", "work",
                      "kubelet copies the stream into the Pod's netns (port-forward)"),
                  Hop("pod", "veth", "server", "softirq", "into the Pod over loopback in its netns"),
                  Hop("pod", "tcp-stack-rx", "server", "softirq", "TCP receive in the Pod"))
        back = (Hop("pod", "tcp-stack-tx", "server", "softirq", "Pod's reply into the stream"),
                Hop("pod", "kubelet-stream", "server", "work", "kubelet relays the reply"),
                Hop("node", "wire", "server", "nic", "the Pod's node to the control-plane node", to="proxy"),
                Hop("node", "nic-rx", "proxy", "softirq", "NIC driver receive"))
    # kubectl keeps one TLS connection to the API server; a client's connection to
    # kubectl on its own machine costs the cluster nothing, so there is no set-up leg.
    request = (Leg("request", to_api), Leg("request", (api,)), Leg("request", onward), _app(),
               Leg("response", back), Leg("response", (api,)), Leg("response", from_api))
    return Route(kind, (), request)
