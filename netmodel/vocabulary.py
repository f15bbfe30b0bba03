"""The words netmodel is made of, each written once: traffic kinds, kube-proxy modes, and
what can become of a request.

A leaf module: it imports nothing from netmodel, so the schema, the paths, the engines
and the results all take their words from here.
"""

from __future__ import annotations

from typing import Literal, get_args

TrafficKind = Literal[
    "pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip", "external-nodeport",
    "external-loadbalancer", "external-ingress", "kubectl-proxy", "kubectl-port-forward"]
TRAFFIC_KINDS: tuple[str, ...] = get_args(TrafficKind)
"""Ways a request reaches a Pod; the position of a kind is its code in per-request records."""

KubeProxyMode = Literal["iptables", "ipvs", "nftables", "ebpf"]
KUBE_PROXY_MODES: tuple[str, ...] = get_args(KubeProxyMode)
"""The Service proxy's modes (ebpf: Cilium-style socket load balancing)."""

IN_FLIGHT, COMPLETED = 0, 1
"""Request states in per-request records; a dropped request has its drop code."""

DROP_REASONS: tuple[str, ...] = (
    "no-endpoints", "server-queue-full", "timeout", "no-local-endpoint", "apiserver-throttled",
    "stale-endpoint", "retries-exhausted")
"""Why a request was dropped; its status code is 2 + the position here. Append only.
stale-endpoint: sent to an endpoint still in the rules (or EndpointSlice) whose Pod no
longer serves. retries-exhausted: TCP gave up on a packet dropped again and again (a full
softirq backlog, NIC ring or conntrack table) after tcp_syn_retries (set-up) or
tcp_retries2 (data) retransmissions."""

(NO_ENDPOINTS, SERVER_QUEUE_FULL, TIMEOUT, NO_LOCAL_ENDPOINT, APISERVER_THROTTLED,
 STALE_ENDPOINT, RETRIES_EXHAUSTED) = range(2, 2 + len(DROP_REASONS))

PACKET_DROPS: tuple[str, ...] = ("softirq-backlog-full", "nic-ring-full", "conntrack-full")
"""Where a packet is dropped before TCP sends it again: a node's softirq backlog
(netdev_max_backlog per core), a NIC port's receive ring, a node's conntrack table (a new
connection's SYN when nf_conntrack_max entries are held)."""
PACKET_DROP_COLUMNS: tuple[str, ...] = tuple(f"packets_dropped_{p.replace('-', '_')}" for p in PACKET_DROPS)
"""The summary's count column of each packet drop point, in the same order."""

DROP_COLUMNS: tuple[str, ...] = tuple(f"dropped_{r.replace('-', '_')}" for r in DROP_REASONS)
"""The summary's count column of each drop reason, in the same order."""

