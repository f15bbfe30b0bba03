"""What each node does to a packet: the Service proxy's mode and, under eBPF, the data
plane's settings, resolved once per scenario point (`dataplane_of`) for the routes, the
costs and the conntrack table.

Under iptables, IPVS and nftables (and eBPF with legacy host routing) every packet of a
Pod crosses the node's host stack: the veth pair, routing or the cni0 bridge, the
netfilter hooks with kube-proxy's chains for established packets, and a netfilter
conntrack lookup. With eBPF host routing a tc program looks the packet up in the BPF
conntrack map and redirects it straight to the NIC or into the Pod's network namespace
(bpf_redirect_neigh / bpf_redirect_peer): no netfilter, no bridge, no veth backlog on the
way in. `dataplane_problem` says which combinations a kernel or a CNI cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netmodel.scenario.schema import Scenario

BPF_HOST_ROUTING_KERNEL = "5.10"
"""eBPF host routing needs bpf_redirect_peer and bpf_redirect_neigh (Linux 5.10)."""
KERNEL_NEEDED = {"cilium": "4.19.57", "calico": "5.3"}
"""The oldest kernel each eBPF data plane runs on."""
LB_MODES = {"cilium": ("snat", "dsr", "hybrid"), "calico": ("tunnel", "dsr")}
"""External-traffic modes of each implementation (the first is its default)."""

ExternalMode = Literal["snat", "dsr", "tunnel"]
ConntrackTable = Literal["nf_conntrack", "bpf-ct"]


@dataclass(frozen=True)
class Dataplane:
    """The resolved data plane of one scenario point."""

    proxy: str
    """kube_proxy.mode: iptables, ipvs, nftables or ebpf."""
    cni: str
    """cluster.cni_datapath: vxlan or native."""
    bpf_host_routing: bool = False
    """Pod packets bypass netfilter and the upper host stack (eBPF host routing)."""
    socket_lb: bool = False
    """eBPF: ClusterIP translated at connect(); false under eBPF: per packet at tc."""
    external: ExternalMode = "snat"
    """NodePort traffic to a backend on another node: replies back through the entry node
    (snat), straight from the backend's node (dsr), or tunnelled both ways (tunnel)."""
    xdp: bool = False
    """NodePort packets for other nodes handled at XDP in the NIC driver."""
    maglev: bool = False
    """NodePort backends chosen by Maglev consistent hashing."""
    peer_redirect: bool = False
    """eBPF host routing enters a Pod with bpf_redirect_peer (Cilium), not through the
    veth's backlog (Calico: the Cilium CNI benchmark's flame graphs show its extra veth pass)."""
    implementation: str = ""
    """cilium or calico under eBPF, else empty."""

    @property
    def ebpf(self) -> bool:
        return self.proxy == "ebpf"

    @property
    def conntrack_table(self) -> ConntrackTable:
        """The table a connection's entries live in: the BPF map when its packets bypass
        netfilter, else the kernel's netfilter conntrack."""
        return "bpf-ct" if self.bpf_host_routing else "nf_conntrack"

    @property
    def name(self) -> str:
        """A short name that tells data planes apart in a table or a legend: the proxy mode,
        or under eBPF the implementation, its host routing and what differs from its
        defaults ('cilium eBPF, BPF host routing, XDP')."""
        if not self.ebpf:
            return self.proxy
        parts = [f"{self.implementation} eBPF", "BPF host routing" if self.bpf_host_routing else "legacy host routing"]
        parts += [label for on, label in ((not self.socket_lb, "tc LB"), (self.xdp, "XDP"),
                                          (self.external == "dsr", "DSR"), (self.maglev, "Maglev")) if on]
        return ", ".join(parts)

    def describe(self) -> str:
        """One line in the words of the data plane's own settings."""
        if not self.ebpf:
            return f"kube-proxy {self.proxy}, netfilter conntrack, {self.cni} Pod network"
        routing = "eBPF host routing" if self.bpf_host_routing else "legacy host routing"
        lb = "socket LB" if self.socket_lb else "per-packet LB at tc"
        extra = [("XDP" if self.xdp else "tc") + " NodePort", self.external]
        if self.maglev:
            extra.append("Maglev")
        return f"{self.implementation} eBPF: {routing}, {lb}, {', '.join(extra)}, {self.cni} Pod network"


def dataplane_of(scenario: Scenario) -> Dataplane:
    """The data plane of `scenario`, its `auto` settings resolved as the CNI resolves them."""
    kp, cluster = scenario.kube_proxy, scenario.cluster
    if kp.mode != "ebpf":
        return Dataplane(kp.mode, cluster.cni_datapath)
    e = kp.ebpf
    routing = e.host_routing
    if routing == "auto":
        routing = "bpf" if _host_routing_possible(scenario) else "legacy"
    mode = LB_MODES[e.implementation][0] if e.load_balancer_mode == "auto" else e.load_balancer_mode
    cilium = e.implementation == "cilium"
    return Dataplane("ebpf", cluster.cni_datapath, bpf_host_routing=routing == "bpf",
                     socket_lb=e.socket_lb, external="dsr" if mode == "hybrid" else mode,
                     xdp=e.acceleration == "native", maglev=e.algorithm == "maglev",
                     peer_redirect=cilium and routing == "bpf", implementation=e.implementation)


def _host_routing_possible(scenario: Scenario) -> bool:
    """eBPF host routing's requirements: kernel 5.10, and for Cilium eBPF masquerading
    (its kube-proxy replacement is what mode ebpf is)."""
    e = scenario.kube_proxy.ebpf
    return scenario.cluster.kernel_at_least(BPF_HOST_ROUTING_KERNEL) and (
        e.implementation == "calico" or e.masquerade == "bpf")


def dataplane_problem(scenario: Scenario) -> tuple[str, tuple] | None:
    """Why the scenario's eBPF settings cannot run (message, field), or None."""
    kp, cluster = scenario.kube_proxy, scenario.cluster
    e = kp.ebpf
    if kp.mode != "ebpf":
        return None  # the eBPF settings wait for mode ebpf (a sweep or compare over modes)
    where = ("kube_proxy", "ebpf")
    needed = KERNEL_NEEDED[e.implementation]
    if not cluster.kernel_at_least(needed):
        return (f"{e.implementation}'s eBPF data plane needs kernel >= {needed}, the nodes run "
                f"{cluster.kernel}", ("cluster", "kernel"))
    if e.host_routing == "bpf" and not cluster.kernel_at_least(BPF_HOST_ROUTING_KERNEL):
        return (f"eBPF host routing needs kernel >= {BPF_HOST_ROUTING_KERNEL} (bpf_redirect_peer, "
                f"bpf_redirect_neigh), the nodes run {cluster.kernel}; use host_routing: legacy",
                where + ("host_routing",))
    if e.host_routing == "bpf" and e.implementation == "cilium" and e.masquerade != "bpf":
        return ("Cilium's eBPF host routing needs eBPF masquerading (bpf.masquerade=true): set "
                "masquerade: bpf, or host_routing: legacy", where + ("host_routing",))
    mode = e.load_balancer_mode
    if mode != "auto" and mode not in LB_MODES[e.implementation]:
        return (f"{e.implementation} has no load_balancer_mode {mode}; expected one of "
                f"{', '.join(LB_MODES[e.implementation])}", where + ("load_balancer_mode",))
    if mode in ("dsr", "hybrid") and e.implementation == "cilium" and cluster.cni_datapath == "vxlan":
        return ("Cilium's DSR needs native routing (cluster.cni_datapath: native): a VXLAN "
                "tunnel cannot carry the service address to the backend", where + ("load_balancer_mode",))
    if e.implementation == "calico":
        for name, default in (("acceleration", "disabled"), ("algorithm", "random"),
                              ("masquerade", "iptables")):
            if getattr(e, name) != default:
                return (f"{name} is a Cilium setting; Calico's eBPF data plane has no {name}: "
                        f"{getattr(e, name)}", where + (name,))
    return None
