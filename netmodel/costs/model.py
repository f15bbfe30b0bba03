"""Per-hop times for one scenario point: pure functions of (profile, scenario).

The engine asks for *plans*: the steps of a route's legs, already merged so that
consecutive CPU work of one role's node is one hold of that node's softirq cores.
A step's cost is fixed by the profile, plus named per-connection parts the engine
adds at run time (`variable`: the Service proxy's rule lookups, the app time). All
times in seconds, sizes in bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterator, Literal, Mapping

import numpy as np

from netmodel.cluster.rules import iptables_nodeport_rules_walked, iptables_rules_walked
from netmodel.costs.profile import Profile
from netmodel.paths import EXTERNAL_CLIENT, Hop, Leg, Route
from netmodel.paths.dataplane import dataplane_of
from netmodel.scenario.schema import Scenario

_PER_SEGMENT_CPU = {
    "tcp-stack-tx": "tcp_stack_tx", "tcp-stack-rx": "tcp_stack_rx", "nic-rx": "nic_rx",
    "veth": "veth", "bridge": "bridge", "conntrack": "conntrack_established",
    "vxlan-encap": "vxlan_encap", "vxlan-decap": "vxlan_decap",
    "netfilter": "netfilter_established", "ipvs-conn": "ipvs_established",
    "bpf-ct": "bpf_ct_lookup", "bpf-redirect": "bpf_redirect", "bpf-lb": "bpf_lb_packet",
}
"""Path component -> profile parameter charged once per offload segment."""
_PER_PACKET_CPU = {"xdp-rx": "xdp_rx"}
"""Path component -> profile parameter charged once per MTU packet (XDP runs before GRO)."""

_PER_MESSAGE = {
    "wakeup": "rx_wakeup", "connection-setup": "connection_setup", "snat": "snat_setup",
    "cloud-lb-latency": "cloud_lb_latency", "cloud-lb": "cloud_lb_per_message",
    "tls-handshake": "tls_handshake", "ingress-proxy": "ingress_request",
    "apiserver-proxy": "apiserver_proxy", "apiserver-stream": "port_forward_stream",
    "kubelet-stream": "kubelet_stream", "coredns-query": "coredns_query",
    "dns-upstream": "dns_upstream_latency",
}
"""Path component -> profile parameter charged once per message or connection."""

LOOKUPS = ("rule-lookup", "nodeport-lookup", "dns-rule-lookup")
"""The Service proxy's rule walks on a new connection's first packet: their cost differs
per connection (which Service, which endpoint)."""
VARIABLE = LOOKUPS + ("app",)
"""Components whose cost differs per connection or request; the engine supplies them."""

WORK_STATIONS = {
    "app": "app", "cloud-lb": "lb", "tls-handshake": "ingress", "ingress-proxy": "ingress",
    "apiserver-proxy": "apiserver", "apiserver-stream": "port-forward-stream",
    "kubelet-stream": "kubelet", "coredns-query": "dns",
}
"""Work component -> the station that does it (resolved per connection by the engine)."""

_LOOKUP = {"ipvs": "ipvs_lookup", "nftables": "nftables_lookup", "ebpf": "ebpf_lookup"}
_PAYLOAD = {"empty": lambda w: 0.0, "request": lambda w: w.request_size,
            "response": lambda w: w.response_size}


@dataclass(frozen=True)
class Step:
    """One scheduled step of a plan.

    kind 'cpu': `seconds` (+ `variable` parts) on the softirq cores of role `at`'s node.
    kind 'wire': serialization `seconds` at line rate on `at`'s NIC and `to`'s port; the
    receiver starts `first_packet` + `delay` (link latency) after the sender, so long
    messages pipeline. kind 'delay': `seconds` that queue nowhere. kind 'work': `seconds`
    (+ `variable`) at the work station `station` (a Pod's workers, the LB, ...).
    """

    kind: Literal["cpu", "wire", "delay", "work"]
    at: str = "client"
    seconds: float = 0.0
    to: str | None = None
    first_packet: float = 0.0
    delay: float = 0.0
    variable: tuple[str, ...] = ()
    station: str | None = None
    vxlan: bool = False
    """A wire step's message is VXLAN-encapsulated."""


class CostModel:
    """Hop times of one scenario point under one profile."""

    def __init__(self, profile: Profile, scenario: Scenario):
        self.profile = profile
        self.scenario = scenario
        self.mode = scenario.kube_proxy.mode
        self.dataplane = dataplane_of(scenario)

    # -- packets ---------------------------------------------------------------------
    def mss(self) -> float:
        """TCP payload bytes per packet: Pod MTU less IP/TCP headers (the Pod MTU shrinks
        by the VXLAN overhead when the CNI encapsulates)."""
        p, c = self.profile, self.scenario.cluster
        pod_mtu = c.mtu - (p["vxlan_overhead"] if c.cni_datapath == "vxlan" else 0.0)
        return pod_mtu - p["ip_tcp_header"]

    def packets(self, payload: float) -> int:
        """Packets on the wire for `payload` bytes (at least one: a SYN or bare ACK)."""
        return max(1, math.ceil(payload / self.mss()))

    def cpu_segments(self, payload: float) -> int:
        """Units of per-packet CPU work: offload segments with GSO/GRO, else packets."""
        if self.scenario.cluster.offloads:
            return max(1, math.ceil(payload / self.profile["gso_max_size"]))
        return self.packets(payload)

    def wire_bytes(self, payload: float, encapsulated: bool) -> float:
        """Bytes a message puts on a link, headers, framing and VXLAN (if any) included."""
        p = self.profile
        per_packet = p["ip_tcp_header"] + p["ethernet_framing"] + (
            p["vxlan_overhead"] if encapsulated else 0.0)
        return payload + self.packets(payload) * per_packet

    # -- hops and plans --------------------------------------------------------------
    def hop_seconds(self, hop: Hop, payload: float) -> float:
        """Fixed cost of one non-wire hop for a message of `payload` bytes (CPU, work or
        delay seconds); the per-connection parts (`VARIABLE`) are 0 here."""
        if hop.component in _PER_SEGMENT_CPU:
            return self.cpu_segments(payload) * self.profile[_PER_SEGMENT_CPU[hop.component]]
        if hop.component in _PER_PACKET_CPU:
            return self.packets(payload) * self.profile[_PER_PACKET_CPU[hop.component]]
        if hop.component in _PER_MESSAGE:
            return self.profile[_PER_MESSAGE[hop.component]]
        if hop.component == "internet":
            return self.scenario.external.client_latency
        if hop.component in VARIABLE:
            return 0.0
        raise KeyError(f"no cost for path component {hop.component!r}")

    def priced(self, legs: tuple[Leg, ...]) -> Iterator[tuple[Leg, Hop, Step]]:
        """Each hop of `legs` as a step of its own, with its leg: what `plan` merges and
        `netmodel trace` prints."""
        for leg in legs:
            payload = self.payload(leg)
            encapsulated = False
            for hop in leg.hops:
                if hop.component == "vxlan-encap":
                    encapsulated = True
                if hop.station == "nic":
                    yield leg, hop, self.wire_step(hop, payload, encapsulated)
                    encapsulated = False
                    continue
                seconds = self.hop_seconds(hop, payload)
                variable = (hop.component,) if hop.component in VARIABLE else ()
                if hop.station == "work":
                    yield leg, hop, Step("work", hop.at, seconds, variable=variable,
                                         station=WORK_STATIONS[hop.component])
                else:
                    yield leg, hop, Step("cpu" if hop.station == "softirq" else "delay", hop.at,
                                         seconds, variable=variable)

    def plan(self, legs: tuple[Leg, ...]) -> tuple[Step, ...]:
        """Steps of `legs`, consecutive CPU of one role merged into one hold (and
        consecutive delays into one)."""
        steps: list[Step] = []
        for _, _, step in self.priced(legs):
            last = steps[-1] if steps else None
            if (last is not None and step.kind in ("cpu", "delay") and last.kind == step.kind
                    and (step.kind == "delay" or last.at == step.at)):
                steps[-1] = replace(last, seconds=last.seconds + step.seconds,
                                    variable=last.variable + step.variable)
            else:
                steps.append(step)
        return tuple(steps)

    def payload(self, leg: Leg) -> float:
        """Bytes the leg's message carries."""
        return _PAYLOAD[leg.payload](self.scenario.workload)

    def route_plans(self, route: Route) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
        """(connection set-up steps, per-request steps) of a route."""
        return self.plan(route.connect), self.plan(route.request)

    def wire_step(self, hop: Hop, payload: float, encapsulated: bool) -> Step:
        """The step of a message crossing a link (see `Step`)."""
        c = self.scenario.cluster
        total = self.wire_bytes(payload, encapsulated) * 8 / c.nic_speed
        internal = EXTERNAL_CLIENT not in (hop.at, hop.to)
        return Step("wire", hop.at, total, to=hop.to, first_packet=total / self.packets(payload),
                    delay=self.profile["link_latency"] if internal else 0.0, vxlan=encapsulated)

    # -- the Service proxy -------------------------------------------------------------
    def rule_lookup_seconds(self, rank, endpoint_index):
        """CPU seconds the Service proxy spends on a NEW ClusterIP connection's first packet
        (a float for scalar arguments, an array for arrays)."""
        if self.mode == "iptables":
            return iptables_rules_walked(rank, endpoint_index) * self.profile["iptables_rule"]
        return self._flat(rank)

    def nodeport_lookup_seconds(self, rules_in_kube_services: int, nodeport_rank, endpoint_index):
        """CPU seconds for a NEW connection to a NodePort: iptables walks all of
        KUBE-SERVICES before KUBE-NODEPORTS; the other modes look up in O(1) (eBPF with
        Maglev: one more table lookup)."""
        if self.mode == "iptables":
            walked = iptables_nodeport_rules_walked(rules_in_kube_services, nodeport_rank,
                                                    endpoint_index)
            return walked * self.profile["iptables_rule"]
        if self.dataplane.maglev:
            return self._flat(nodeport_rank) + self.profile["ebpf_maglev_lookup"]
        return self._flat(nodeport_rank)

    def _flat(self, like):
        """The flat lookup cost of IPVS, nftables or eBPF, shaped like `like`."""
        cost = self.profile[_LOOKUP[self.mode]]
        return cost if np.ndim(like) == 0 else np.full(np.shape(like), cost)


def zero_load_seconds(plan: tuple[Step, ...], variable: Mapping[str, float] | None = None,
                      outside: frozenset[str] = frozenset({EXTERNAL_CLIENT})) -> float:
    """Time through `plan` with no queueing, the `variable` parts given; CPU of roles in
    `outside` (an external client) is not the cluster's and takes no time."""
    variable = variable or {}
    total = 0.0
    for s in plan:
        extra = sum(variable.get(v, 0.0) for v in s.variable)
        if s.kind == "wire":
            total += s.first_packet + s.delay + s.seconds if s.at not in outside and s.to not in outside \
                else s.seconds
        elif s.kind == "cpu" and s.at in outside:
            continue
        else:
            total += s.seconds + extra
    return total
