"""Per-hop times for one scenario point: pure functions of (profile, scenario).

The engine asks for *plans*: the ordered steps of one message or connection set-up,
already merged so that consecutive CPU work on the same node is one hold of that
node's softirq cores. All times in seconds, sizes in bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from netmodel.cluster.rules import iptables_rules_walked
from netmodel.costs.profile import Profile
from netmodel.paths import Hop, accept_path, connect_path, message_path
from netmodel.scenario.schema import Scenario

_PER_SEGMENT_CPU = {
    "tcp-stack-tx": "tcp_stack_tx", "tcp-stack-rx": "tcp_stack_rx", "nic-rx": "nic_rx",
    "veth": "veth", "bridge": "bridge", "conntrack": "conntrack_established",
    "vxlan-encap": "vxlan_encap", "vxlan-decap": "vxlan_decap",
}
"""Path component -> profile parameter charged once per offload segment."""

_LOOKUP = {"ipvs": "ipvs_lookup", "nftables": "nftables_lookup", "ebpf": "ebpf_lookup"}


@dataclass(frozen=True)
class Step:
    """One scheduled step: CPU on a node's softirq cores, the wire, or a pure delay.

    kind 'cpu': `seconds` of softirq CPU on the `side` node.
    kind 'wire': serialization `seconds` at line rate on the sender's NIC and the
    receiver's switch port; the receiver starts after `first_packet` seconds plus
    `delay` (link latency), so a multi-packet message is pipelined.
    kind 'delay': `seconds` that queue nowhere.
    """

    kind: Literal["cpu", "wire", "delay"]
    side: Literal["src", "dst"] = "src"
    seconds: float = 0.0
    first_packet: float = 0.0
    delay: float = 0.0


class CostModel:
    """Hop times of one scenario point under one profile."""

    def __init__(self, profile: Profile, scenario: Scenario):
        self.profile = profile
        self.scenario = scenario
        self.mode = scenario.kube_proxy.mode

    def mss(self, same_node: bool) -> float:
        """TCP payload bytes per packet: Pod MTU less IP/TCP headers (Pod MTU shrinks by
        the VXLAN overhead when the CNI encapsulates)."""
        p, c = self.profile, self.scenario.cluster
        pod_mtu = c.mtu - (p["vxlan_overhead"] if c.cni_datapath == "vxlan" else 0.0)
        return pod_mtu - p["ip_tcp_header"]

    def packets(self, payload: float, same_node: bool) -> int:
        """Packets on the wire for `payload` bytes (at least one: a SYN or bare ACK)."""
        return max(1, math.ceil(payload / self.mss(same_node)))

    def cpu_segments(self, payload: float, same_node: bool) -> int:
        """Units of per-packet CPU work: offload segments with GSO/GRO, else packets."""
        if self.scenario.cluster.offloads:
            return max(1, math.ceil(payload / self.profile["gso_max_size"]))
        return self.packets(payload, same_node)

    def wire_bytes(self, payload: float) -> float:
        """Bytes a cross-node message puts on the wire, headers and framing included."""
        p, c = self.profile, self.scenario.cluster
        per_packet = p["ip_tcp_header"] + p["ethernet_framing"] + (
            p["vxlan_overhead"] if c.cni_datapath == "vxlan" else 0.0)
        return payload + self.packets(payload, same_node=False) * per_packet

    def hop_seconds(self, hop: Hop, payload: float, same_node: bool) -> float:
        """Cost of one hop for a message of `payload` bytes (CPU or delay seconds)."""
        p = self.profile
        if hop.component in _PER_SEGMENT_CPU:
            return self.cpu_segments(payload, same_node) * p[_PER_SEGMENT_CPU[hop.component]]
        if hop.component == "wakeup":
            return p["rx_wakeup"]
        if hop.component == "connection-setup":
            return p["connection_setup"]
        if hop.component == "rule-lookup":
            return 0.0  # per connection: see rule_lookup_seconds
        raise KeyError(f"no cost for path component {hop.component!r}")

    def message_plan(self, payload: float, same_node: bool, wakeup: bool = True) -> tuple[Step, ...]:
        """Steps of one message between Pods; without `wakeup` (a SYN) no reader is woken."""
        hops = [h for h in message_path(same_node, self.scenario.cluster.cni_datapath)
                if wakeup or h.component != "wakeup"]
        return self._plan(hops, payload, same_node)

    def connect_plan(self, same_node: bool, via_cluster_ip: bool) -> tuple[Step, ...]:
        """Steps of a connection's set-up up to the server: client CPU, SYN, server accept
        CPU. The SYN-ACK back is an empty `message_plan`.

        The rule lookup is per connection (it depends on the Service and endpoint), so
        the engine adds `rule_lookup_seconds` to the first CPU step itself.
        """
        syn = [h for h in message_path(same_node, self.scenario.cluster.cni_datapath)
               if h.component != "wakeup"]
        return self._plan(list(connect_path(via_cluster_ip)) + syn + list(accept_path()), 0.0,
                          same_node)

    def rule_lookup_seconds(self, rank: np.ndarray, endpoint_index: np.ndarray) -> np.ndarray:
        """CPU seconds the Service proxy spends on a NEW connection's first packet."""
        if self.mode == "iptables":
            walked = iptables_rules_walked(rank, endpoint_index)
            return walked * self.profile["iptables_rule"]
        return np.full(np.shape(rank), self.profile[_LOOKUP[self.mode]], dtype=float)

    def _plan(self, hops: list[Hop], payload: float, same_node: bool) -> tuple[Step, ...]:
        steps: list[Step] = []
        for hop in hops:
            if hop.station == "nic":
                steps.append(self._wire_step(payload))
                continue
            seconds = self.hop_seconds(hop, payload, same_node)
            kind = "cpu" if hop.station == "softirq" else "delay"
            side = "src" if same_node else hop.side  # one node: one softirq pass
            last = steps[-1] if steps else None
            if last is not None and last.kind == kind and (kind == "delay" or last.side == side):
                steps[-1] = Step(kind, last.side, last.seconds + seconds)
            else:
                steps.append(Step(kind, side, seconds))
        return tuple(steps)

    def _wire_step(self, payload: float) -> Step:
        p, c = self.profile, self.scenario.cluster
        total = self.wire_bytes(payload) * 8 / c.nic_speed
        packets = self.packets(payload, same_node=False)
        return Step("wire", "src", total, first_packet=total / packets, delay=p["link_latency"])

    def zero_load_seconds(self, plan: tuple[Step, ...]) -> float:
        """Time through `plan` with no queueing: what a lone request would see."""
        return sum(s.seconds + (s.first_packet + s.delay if s.kind == "wire" else 0.0) for s in plan)
