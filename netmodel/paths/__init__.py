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

from netmodel.paths.dataplane import Dataplane

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
def pod_to_pod(src: str, dst: str, same_node: bool, dp: Dataplane, wakeup: bool = True,
               nat_at: str | None = None) -> tuple[Hop, ...]:
    """Hops of one message from a Pod on role `src`'s node to a Pod on role `dst`'s node;
    `nat_at`: the role whose node translates a ClusterIP flow's every packet (IPVS, or eBPF
    without socket LB), if any."""
    out = _out_of_pod(src, dp, nat_at == src)
    if same_node:
        return out + _local_delivery(src, dp, wakeup)
    return out + _node_to_node(src, dst, dp) + _into_pod(dst, dp, wakeup, nat_at == dst)


def _out_of_pod(at: str, dp: Dataplane, nat: bool = False) -> tuple[Hop, ...]:
    """A Pod's message from its socket to where the node sends it on."""
    return (Hop("pod", "tcp-stack-tx", at, "softirq", "socket write, TCP/IP transmit"),
            Hop("pod", "veth", at, "softirq", "leave the Pod netns through its veth pair")
            ) + _egress(at, dp, nat)


def _egress(at: str, dp: Dataplane, nat: bool) -> tuple[Hop, ...]:
    """The node's work on a packet leaving a Pod."""
    hops = _service_nat(at, dp) if nat else ()
    if dp.ebpf:
        hops += (Hop("service", "bpf-ct", at, "softirq", "tc at the Pod's veth: BPF conntrack map lookup"),)
    if dp.bpf_host_routing:
        return hops + (Hop("pod", "bpf-redirect", at, "softirq", "eBPF host routing: FIB lookup, "
                           "bpf_redirect_neigh to the NIC (or _peer to a Pod here), no netfilter"),)
    return hops + _host_stack(at, dp)


def _host_stack(at: str, dp: Dataplane) -> tuple[Hop, ...]:
    """Routing and netfilter in the node's host netns (every mode but eBPF host routing)."""
    return (Hop("pod", "bridge", at, "softirq", "cni0 bridge / host routing"),
            Hop("service", "netfilter", at, "softirq",
                f"netfilter hooks: {_NETFILTER_CHAINS[dp.proxy]}"),
            Hop("service", "conntrack", at, "softirq", "netfilter conntrack: established hit"))


_NETFILTER_CHAINS = {
    "iptables": "kube-proxy's filter chains for established packets (KUBE-FORWARD)",
    "nftables": "kube-proxy's nftables base chains for established packets",
    "ipvs": "kube-proxy's filter chains (KUBE-FORWARD, ipset matches)",
    "ebpf": "the CNI's iptables chains (legacy host routing)",
}


def _service_nat(at: str, dp: Dataplane) -> tuple[Hop, ...]:
    """Per-packet translation of a ClusterIP flow where no connect()-time LB did it."""
    if dp.proxy == "ipvs":
        return (Hop("service", "ipvs-conn", at, "softirq", "IPVS connection table: translate"),)
    if dp.ebpf:
        return (Hop("service", "bpf-lb", at, "softirq", "tc: service map lookup, DNAT / reverse NAT"),)
    return ()


def _node_to_node(src: str, dst: str, dp: Dataplane, tunnel: bool = False,
                  xdp: bool = False) -> tuple[Hop, ...]:
    """From one node's host side onto the wire and to another node's driver (`xdp`: whose
    XDP program takes the packet before an skb exists)."""
    vxlan = tunnel or dp.cni == "vxlan"
    receive = _xdp(dst) if xdp else \
        Hop("node", "nic-rx", dst, "softirq", "NIC driver receive, NAPI poll, GRO, IP receive")
    return ((Hop("pod", "vxlan-encap", src, "softirq", "VXLAN encapsulation (+50 B)"),) if vxlan else ()) + (
        Hop("node", "wire", src, "nic", "NIC transmit, link and switch port, at line rate", to=dst),
        receive) + ((Hop("pod", "vxlan-decap", dst, "softirq", "VXLAN decapsulation"),) if vxlan else ())


def _into_pod(at: str, dp: Dataplane, wakeup: bool, nat: bool = False) -> tuple[Hop, ...]:
    """From the node's driver into the Pod's socket."""
    if dp.bpf_host_routing:
        hops = (Hop("service", "bpf-ct", at, "softirq", "tc: BPF conntrack map lookup"),) + (
            _service_nat(at, dp) if nat else ())
        return hops + _redirect_in(at, dp) + _socket(at, wakeup)
    hops = (Hop("service", "netfilter", at, "softirq", f"netfilter hooks: {_NETFILTER_CHAINS[dp.proxy]}"),
            Hop("service", "conntrack", at, "softirq", "netfilter conntrack: established hit"))
    hops += _service_nat(at, dp) if nat else ()
    hops += (Hop("pod", "bridge", at, "softirq", "host routing / cni0 bridge"),)
    return hops + _local_delivery(at, dp, wakeup)


def _redirect_in(at: str, dp: Dataplane) -> tuple[Hop, ...]:
    """eBPF host routing hands a packet to a Pod: into its netns at once (Cilium's
    bpf_redirect_peer) or to its veth, through the veth's backlog (Calico)."""
    if dp.peer_redirect:
        return (Hop("pod", "bpf-redirect", at, "softirq", "bpf_redirect_peer: into the Pod's netns, "
                                                          "no veth backlog"),)
    return (Hop("pod", "bpf-redirect", at, "softirq", "bpf_redirect to the Pod's veth"),
            Hop("pod", "veth", at, "softirq", "enter the Pod netns through its veth pair"))


def _local_delivery(at: str, dp: Dataplane, wakeup: bool) -> tuple[Hop, ...]:
    """From the node's host side (the egress work done) into a Pod on the same node."""
    if dp.bpf_host_routing:
        veth = () if dp.peer_redirect else (
            Hop("pod", "veth", at, "softirq", "enter the Pod netns through its veth pair"),)
        return (Hop("service", "bpf-ct", at, "softirq", "the receiving Pod's BPF conntrack "
                                                        "lookup (ingress policy)"),) + veth + _socket(at, wakeup)
    ct = (Hop("service", "bpf-ct", at, "softirq", "tc at the Pod's veth: BPF conntrack map lookup"),
          ) if dp.ebpf else ()
    return ct + (Hop("pod", "veth", at, "softirq", "enter the Pod netns through its veth pair"),
                 ) + _socket(at, wakeup)


def _socket(at: str, wakeup: bool) -> tuple[Hop, ...]:
    return (Hop("pod", "tcp-stack-rx", at, "softirq", "TCP/IP receive, socket queue"),) + (
        (Hop("pod", "wakeup", at, "delay", "interrupt moderation and wake-up of the reader"),)
        if wakeup else ())


# -- the node network from and to the outside ----------------------------------------
def from_outside(entry: str, dp: Dataplane, forwarded: bool = False) -> tuple[Hop, ...]:
    """An external client's packet reaching the `entry` node and its first lookup there;
    `forwarded`: it goes on to another node (XDP handles those without an skb)."""
    hops = (Hop("external", "internet", EXTERNAL_CLIENT, "delay", "external client to the cluster edge"),
            Hop("node", "wire", EXTERNAL_CLIENT, "nic", "into the node's NIC at line rate", to=entry))
    return hops + _entry_receive(entry, dp, forwarded)


def _entry_receive(entry: str, dp: Dataplane, forwarded: bool) -> tuple[Hop, ...]:
    """The entry node's receive of a packet of a NodePort flow."""
    if not dp.ebpf:
        return (Hop("node", "nic-rx", entry, "softirq", "NIC driver receive, NAPI poll, IP receive"),
                Hop("service", "netfilter", entry, "softirq", f"netfilter hooks: {_NETFILTER_CHAINS[dp.proxy]}"),
                Hop("service", "conntrack", entry, "softirq", "netfilter conntrack")) + (
            (Hop("service", "ipvs-conn", entry, "softirq", "IPVS connection table: translate"),)
            if dp.proxy == "ipvs" else ())
    if dp.xdp and forwarded:
        return (_xdp(entry),)
    return (Hop("node", "nic-rx", entry, "softirq", "NIC driver receive, NAPI poll"),
            Hop("service", "bpf-ct", entry, "softirq", "tc at the NIC: BPF conntrack / NAT map lookup"))


def _xdp(at: str) -> Hop:
    """A NodePort packet for another node (or its reply), handled whole at XDP."""
    return Hop("node", "xdp-rx", at, "softirq", "XDP in the NIC driver, before an skb exists: "
               "BPF conntrack/NAT map lookup, rewrite, XDP_TX out of the same NIC")


def _entry_send(entry: str, dp: Dataplane, to: str) -> tuple[Hop, ...]:
    """The entry node sends a translated packet on (to another node or the client)."""
    if not dp.ebpf:
        return (Hop("pod", "bridge", entry, "softirq", "route to the endpoint's Pod CIDR")
                if to != EXTERNAL_CLIENT else Hop("pod", "bridge", entry, "softirq", "route to the client"),)
    if dp.xdp:
        return ()  # XDP_TX: out of the NIC it came in on, in the driver
    return (Hop("pod", "bpf-redirect", entry, "softirq", "tc: bpf_redirect_neigh out of the NIC"),)


def to_outside(exit_: str) -> tuple[Hop, ...]:
    """A reply leaving node `exit_` for the external client."""
    return (Hop("node", "wire", exit_, "nic", "NIC transmit at line rate", to=EXTERNAL_CLIENT),
            Hop("external", "internet", EXTERNAL_CLIENT, "delay", "cluster edge to the external client"))


def entry_to_pod(entry: str, dst: str, local: bool, dp: Dataplane,
                 wakeup: bool = True) -> tuple[Hop, ...]:
    """After the entry node's translation: into a Pod on the same node, or on to the
    endpoint's node (the second node hop; through a VXLAN tunnel under Calico's tunnel mode)."""
    if local:
        return _local_entry(entry, dp, wakeup)
    return _entry_send(entry, dp, dst) + _node_to_node(entry, dst, dp, _tunnel(dp)) + \
        _into_pod(dst, dp, wakeup)


def _local_entry(at: str, dp: Dataplane, wakeup: bool) -> tuple[Hop, ...]:
    """From the entry node's receive into a Pod on the same node."""
    if dp.bpf_host_routing:
        return _redirect_in(at, dp) + _socket(at, wakeup)
    if dp.ebpf:  # legacy host routing: up the host stack to the Pod's veth
        return _host_stack(at, dp) + _local_delivery(at, dp, wakeup)
    return (Hop("pod", "bridge", at, "softirq", "route to the endpoint's Pod CIDR"),
            ) + _local_delivery(at, dp, wakeup)


def pod_to_client(src: str, entry: str, local: bool, dp: Dataplane) -> tuple[Hop, ...]:
    """A reply from the endpoint Pod to the external client: back through the entry node,
    whose conntrack (or BPF NAT map) un-translates it, or straight out under DSR."""
    out = _out_of_pod(src, dp)
    if local or dp.external == "dsr":
        return out + to_outside(src)
    xdp = dp.ebpf and dp.xdp
    back = out + _node_to_node(src, entry, dp, _tunnel(dp), xdp)
    if xdp:
        undo = ()  # the XDP program un-translates and sends it back in the driver
    elif dp.ebpf:
        undo = (Hop("service", "bpf-ct", entry, "softirq", "BPF NAT map: reverse NAT of the reply"),
                ) + _entry_send(entry, dp, EXTERNAL_CLIENT)
    else:
        undo = (Hop("service", "netfilter", entry, "softirq", f"netfilter hooks: {_NETFILTER_CHAINS[dp.proxy]}"),
                Hop("service", "conntrack", entry, "softirq", "conntrack: reverse NAT of the reply")) + (
            (Hop("service", "ipvs-conn", entry, "softirq", "IPVS connection table: reverse NAT"),)
            if dp.proxy == "ipvs" else ())
    return back + undo + to_outside(entry)


def _tunnel(dp: Dataplane) -> bool:
    """Whether NodePort traffic between nodes rides a VXLAN tunnel whatever the Pod network."""
    return dp.external == "tunnel"


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


def _dns(p: Placement, dp: Dataplane) -> tuple[Leg, ...]:
    legs: list[Leg] = []
    nat = "client" if _nat_per_packet(dp) else None
    for i in range(p.dns_queries):
        query = (Hop("service", "dns-rule-lookup", "client", "softirq",
                     f"{_LOOKUP_ACTION[_lookup_kind(dp)]}: kube-dns ClusterIP -> CoreDNS Pod "
                     "(a new UDP flow)"),
                 ) + pod_to_pod("client", "dns", p.dns_same_node, dp, nat_at=nat)
        answer = (Hop("service", "coredns-query", "dns", "work",
                      "CoreDNS answers (A and AAAA; NXDOMAIN for a wrong search domain)"),)
        if p.dns_upstream and i == p.dns_queries - 1:
            answer += (Hop("external", "dns-upstream", "dns", "delay",
                           "cache miss: forwarded to the upstream resolver"),)
        legs += [Leg("empty", query), Leg("empty", answer),
                 Leg("empty", pod_to_pod("dns", "client", p.dns_same_node, dp, nat_at=nat))]
    return tuple(legs)


# -- routes ----------------------------------------------------------------------------
def route(kind: str, p: Placement, dp: Dataplane, *, tls: bool = False,
          cloud_lb: bool = False) -> Route:
    """The route of one connection of `kind` for the placement `p` on data plane `dp`."""
    if kind in ("pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"):
        return _in_cluster(kind, p, dp)
    if kind in ("external-nodeport", "external-loadbalancer"):
        return _external_service(kind, p, dp, cloud_lb and kind == "external-loadbalancer")
    if kind == "external-ingress":
        return _ingress(p, dp, tls, cloud_lb)
    if kind in ("kubectl-proxy", "kubectl-port-forward"):
        return _kubectl(kind, p, dp)
    raise ValueError(f"unknown traffic kind {kind!r}")


_LOOKUP_ACTION = {
    "iptables": "kube-proxy's iptables rules", "ipvs": "IPVS virtual server lookup",
    "nftables": "kube-proxy's nftables verdict maps",
    "socket-lb": "socket LB at connect(): service and backend map lookups, no packet NATed",
    "tc-lb": "tc at the Pod's veth: service and backend map lookups (first packet)",
}


def _lookup_kind(dp: Dataplane) -> str:
    if not dp.ebpf:
        return dp.proxy
    return "socket-lb" if dp.socket_lb else "tc-lb"


def _nat_per_packet(dp: Dataplane) -> bool:
    """Whether a ClusterIP flow's every packet is translated at the client's node by
    something other than netfilter conntrack (IPVS, or eBPF without socket LB)."""
    return dp.proxy == "ipvs" or (dp.ebpf and not dp.socket_lb)


def _in_cluster(kind: str, p: Placement, dp: Dataplane) -> Route:
    setup = [Hop("pod", "connection-setup", "client", "softirq",
                 "socket, SYN, conntrack entry insert (client side)")]
    nat = None
    if kind == "pod-clusterip":
        setup.append(Hop("service", "rule-lookup", "client", "softirq",
                         f"{_LOOKUP_ACTION[_lookup_kind(dp)]}: ClusterIP -> endpoint"))
        nat = "client" if _nat_per_packet(dp) else None
    there = pod_to_pod("client", "server", p.same_node, dp, nat_at=nat)
    back = pod_to_pod("server", "client", p.same_node, dp, nat_at=nat)
    syn = tuple(setup) + pod_to_pod("client", "server", p.same_node, dp, wakeup=False, nat_at=nat) + (
        Hop("pod", "connection-setup", "server", "softirq", "SYN receive, accept (server side)"),)
    return Route(kind, _dns(p, dp) + (Leg("empty", syn), Leg("empty", back)),
                 (Leg("request", there), _app(), Leg("response", back)))


def _app() -> Leg:
    return Leg("request", (Hop("pod", "app", "server", "work", "the endpoint Pod's app serves the request"),))


def _cloud_lb(present: bool) -> tuple[tuple[Hop, ...], tuple[Hop, ...]]:
    """Hops through a cloud load balancer in front of the node ports, in and out."""
    if not present:
        return (), ()
    return ((Hop("external", "cloud-lb", "lb", "work", "cloud load balancer: pick a healthy node"),
             Hop("external", "cloud-lb-latency", "lb", "delay", "load balancer forwarding latency")),
            (Hop("external", "cloud-lb-latency", "lb", "delay", "back through the load balancer"),))


_NODEPORT_ACTION = {
    "iptables": "kube-proxy's iptables rules: NodePort -> endpoint (DNAT)",
    "ipvs": "IPVS virtual server of the node IP: NodePort -> endpoint",
    "nftables": "kube-proxy's nftables verdict maps: NodePort -> endpoint (DNAT)",
}


def _nodeport_in(p: Placement, dp: Dataplane, dst: str, local: bool, syn: bool) -> tuple[Hop, ...]:
    """On the entry node: a SYN is looked up in the NodePort rules (and masqueraded under
    policy Cluster where the data plane SNATs); later packets are translated by their
    conntrack entry."""
    hops: tuple[Hop, ...] = ()
    if syn:
        hops = (Hop("service", "nodeport-lookup", "entry", "softirq", _nodeport_action(dp)),)
        if p.snat and dp.external == "snat":
            hops += (Hop("service", "snat", "entry", "softirq",
                         "masquerade (externalTrafficPolicy Cluster): client IP lost"),)
    return hops + entry_to_pod("entry", dst, local, dp, wakeup=not syn)


def _nodeport_action(dp: Dataplane) -> str:
    if not dp.ebpf:
        return _NODEPORT_ACTION[dp.proxy]
    where = "XDP" if dp.xdp else "tc at the NIC"
    pick = "Maglev table" if dp.maglev else "random backend"
    return f"{where}: service map lookup, {pick}: NodePort -> endpoint"


def _via_node_port(p: Placement, dp: Dataplane, target: str, local: bool, cloud_lb: bool):
    """Between an outside client and a Pod on role `target` through a node port (behind a
    cloud LB if any): `inbound(syn)` hops and the `outbound` hops of a reply."""
    lb_in, lb_out = _cloud_lb(cloud_lb)

    def inbound(syn: bool) -> tuple[Hop, ...]:
        return lb_in + from_outside("entry", dp, forwarded=not local) + \
            _nodeport_in(p, dp, target, local, syn)

    return inbound, pod_to_client(target, "entry", local, dp) + lb_out


def _external_service(kind: str, p: Placement, dp: Dataplane, cloud_lb: bool) -> Route:
    inbound, outbound = _via_node_port(p, dp, "server", p.entry_is_server, cloud_lb)
    syn = inbound(True) + (Hop("pod", "connection-setup", "server", "softirq",
                                "SYN receive, accept (server side)"),)
    return Route(kind, (Leg("empty", syn), Leg("empty", outbound)),
                 (Leg("request", inbound(False)), _app(), Leg("response", outbound)))


def _ingress(p: Placement, dp: Dataplane, tls: bool, cloud_lb: bool) -> Route:
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


def _kubectl(kind: str, p: Placement, dp: Dataplane) -> Route:
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
