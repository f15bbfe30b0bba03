"""What a scenario is: the pydantic schema of a scenario YAML file.

Every field has a Kubernetes-flavoured name, a default a platform engineer would
expect, and a unit; quantities are stored as SI floats (seconds, bytes, bit/s,
1/s). Unknown keys are rejected everywhere.
"""

from __future__ import annotations

import math
import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from netmodel.units import parse_quantity
from netmodel.vocabulary import TRAFFIC_KINDS, KubeProxyMode, TrafficKind


def _quantity(dimension: str):
    return BeforeValidator(lambda v: parse_quantity(v, dimension))


Duration = Annotated[float, _quantity("time"), Field(ge=0)]
"""Seconds; YAML accepts '1.5ms', '200us', '10s'."""
Size = Annotated[float, _quantity("size"), Field(ge=0)]
"""Bytes; YAML accepts '1KiB', '64KiB', '1500B'."""
BitRate = Annotated[float, _quantity("bitrate"), Field(gt=0)]
"""Bits per second; YAML accepts '10Gbps', '25Gbps'."""
Rate = Annotated[float, _quantity("rate"), Field(gt=0)]
"""Events per second; YAML accepts '1000/s', '2k/s' or a plain number."""

MAX_WEIGHT = 1e9
"""Largest weight of a traffic kind in workload.mix (weights are relative; their sum must
stay far from overflowing)."""
DAY = 86_400.0
"""Upper bound of control-plane times (event times, grace periods): the sync loop simulates
every periodic sync up to the last change, so a far-off event would cost minutes of run time."""


def _version_text(value: Any) -> Any:
    """A kernel version must be written as text: YAML reads 5.10 as the number 5.1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"quote the kernel version, e.g. \"5.10\": YAML reads {value!r} as a "
                         "number (5.10 becomes 5.1)")
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,5})?", value):
        raise ValueError(f"expected a kernel version major.minor[.patch] such as \"5.15\", got {value!r}")
    return value


def _version(text: str) -> tuple[int, ...]:
    """'5.10.0' -> (5, 10, 0): a kernel version that compares as one."""
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (3 - len(parts))


class _SectionError(ValueError):
    """A check on the whole scenario that belongs to one field: the loader reports it at
    `location` (as `AllocationError` does for the address ranges)."""

    def __init__(self, message: str, location: tuple):
        super().__init__(message)
        self.location = location


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Cluster(_Strict):
    """Node network and Pod network of the cluster."""

    nodes: int = Field(3, ge=1, le=100_000, description="number of nodes")
    pods_per_node: int = Field(110, ge=1, le=10_000,
                               description="kubelet maxPods: Pods a node can hold")
    nic_speed: BitRate = Field(10e9, description="NIC line rate, bit/s")
    mtu: int = Field(1500, ge=1280, le=9216, description="node (underlay) MTU, bytes")
    cni_datapath: Literal["vxlan", "native"] = Field(
        "vxlan", description="cross-node Pod traffic: VXLAN overlay or native routing")
    offloads: bool = Field(True, description="GSO/GRO/TSO: per-packet CPU is paid per "
                                             "offload segment instead of per MTU packet")
    softirq_cores: int = Field(2, ge=1, le=1024,
                               description="cores of a node that run network softirq")
    provider: Literal["bare-metal", "cloud"] = Field(
        "bare-metal", description="bare metal: nodes have no ExternalIP and no LoadBalancer "
                                  "provider unless one is configured; cloud: both are set")
    node_network: IPv4Network = Field(IPv4Network("192.168.0.0/16"),
                                      description="where nodes' InternalIPs come from")
    pod_cidr: IPv4Network = Field(IPv4Network("10.244.0.0/16"),
                                  description="cluster Pod CIDR, split into one block per node")
    node_cidr_mask: int = Field(24, ge=8, le=30, description="prefix length of each node's Pod CIDR")
    service_cidr: IPv4Network = Field(IPv4Network("10.96.0.0/12"),
                                      description="where ClusterIPs come from")
    conntrack_max: int = Field(131_072, ge=1, le=100_000_000,
                               description="nf_conntrack_max of a node: kube-proxy sets "
                                           "max(32,768 x CPUs, 131,072)")
    conntrack_time_wait: Duration = Field(120.0, description="nf_conntrack_tcp_timeout_time_wait: "
                                                             "a closed connection's entry stays "
                                                             "this long, s")
    netdev_max_backlog: int = Field(1000, ge=1, le=10_000_000, description="net.core.netdev_max_"
                                    "backlog: packets a softirq core's backlog holds; a message that "
                                    "finds every core busy and this many per core waiting is dropped")
    nic_rx_ring: int = Field(1024, ge=1, le=1_000_000, description="receive descriptors of a NIC "
                             "port (ethtool -g): a message that finds this many waiting is dropped")
    tcp_syn_retries: int = Field(6, ge=0, le=127, description="net.ipv4.tcp_syn_retries: a dropped "
                                 "set-up packet is sent again after 1 s, 2 s, 4 s ... this many times")
    tcp_retries2: int = Field(15, ge=0, le=127, description="net.ipv4.tcp_retries2: a dropped data "
                              "packet is sent again after tcp_rto_min, doubling, this many times")
    tcp_rto_min: Duration = Field(0.2, gt=0, le=60, description="TCP's minimum retransmission "
                                  "timeout (Linux TCP_RTO_MIN, 200 ms), s")
    kernel: Annotated[str, BeforeValidator(_version_text)] = Field(
        "6.1",
                        description="the nodes' Linux kernel, major.minor[.patch] (kubectl: "
                                    "nodeInfo.kernelVersion): what the eBPF data plane may use")

    def kernel_at_least(self, version: str) -> bool:
        """Whether the nodes' kernel is `version` or newer."""
        return _version(self.kernel) >= _version(version)


ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]


class Services(_Strict):
    """The Services and their endpoints."""

    count: int = Field(10, ge=1, le=1_000_000, description="number of Services (one port each)")
    endpoints_per_service: int = Field(3, ge=0, le=100_000,
                                       description="ready endpoints (Pods) behind each Service")
    popularity: Literal["uniform", "zipf"] = Field(
        "uniform", description="how clients pick the Service they call")
    zipf_exponent: float = Field(1.0, gt=0, le=10,
                                 description="exponent s of Zipf popularity: P(rank k) ~ 1/k^s")
    endpoints_max: int | None = Field(
        None, ge=1, le=100_000, description="spread the endpoints as real clusters do: Service 0 "
        "has this many and the others fewer by rank (down to 1), all together count x "
        "endpoints_per_service; unset: every Service has endpoints_per_service")
    type: ServiceType | dict[ServiceType, Annotated[float, Field(ge=0)]] = Field(
        "ClusterIP", description="Service type of the generated Services, or shares by type "
                                 "({ClusterIP: 90, NodePort: 5, LoadBalancer: 5}) drawn per Service")
    external_traffic_policy: Literal["Cluster", "Local"] = Field(
        "Cluster", description="NodePort/LoadBalancer: Cluster (any node, SNAT) or Local "
                               "(only nodes with an endpoint, client IP kept)")


    @model_validator(mode="after")
    def _spread(self) -> "Services":
        if isinstance(self.type, dict) and sum(self.type.values()) <= 0:
            raise _SectionError("the shares need a positive weight on at least one type", ("type",))
        if self.endpoints_max is None:
            return self
        if self.endpoints_max < self.endpoints_per_service:
            raise _SectionError(f"endpoints_max {self.endpoints_max} is below the mean, "
                                f"endpoints_per_service {self.endpoints_per_service}",
                                ("endpoints_max",))
        if self.endpoints_per_service < 1:
            raise _SectionError("a spread needs endpoints_per_service >= 1 (every Service keeps one)",
                                ("endpoints_max",))
        return self

    def types(self) -> set[str]:
        """The types the generated Services have."""
        if isinstance(self.type, str):
            return {self.type}
        return {t for t, share in self.type.items() if share > 0}


class ServicePort(_Strict):
    """One port of an inventory Service (`spec.ports[]`)."""

    name: str | None = None
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    node_port: int | None = Field(None, ge=1, le=65535)


class InventoryEndpoint(_Strict):
    """A ready endpoint of an inventory Service: a Pod IP on a node."""

    ip: IPv4Address
    node: str = Field(description="name of the node the Pod runs on")


class InventoryService(_Strict):
    """One Service as kubectl shows it, with its endpoints placed on nodes."""

    namespace: str = "default"
    name: str
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    cluster_ip: IPv4Address | Literal["None"] | None = Field(
        None, description="'None' for a headless Service; empty: allocated from service_cidr")
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)
    external_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    endpoints: list[InventoryEndpoint] = Field(default_factory=list)

    @property
    def headless(self) -> bool:
        """True for `clusterIP: None`: DNS answers with Pod IPs, no proxy rules."""
        return self.cluster_ip == "None"


class InventoryNode(_Strict):
    """One node with the addresses it reports (`status.addresses`) and its Pod CIDR."""

    name: str
    internal_ip: IPv4Address | None = None
    external_ip: IPv4Address | None = None
    hostname: str | None = None
    pod_cidr: IPv4Network | None = None


class Inventory(_Strict):
    """An explicit cluster (e.g. from `netmodel import kubectl`) instead of generated Services."""

    nodes: list[InventoryNode] = Field(min_length=1)
    services: list[InventoryService] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Inventory":
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        known = set(names)
        for svc in self.services:
            for ep in svc.endpoints:
                if ep.node not in known:
                    raise ValueError(f"Service {svc.namespace}/{svc.name}: endpoint {ep.ip} is on "
                                     f"node {ep.node!r}, which is not in inventory.nodes")
        return self


class Ebpf(_Strict):
    """The eBPF data plane of `kube_proxy.mode: ebpf`: Cilium's kube-proxy replacement or
    Calico's eBPF data plane, with their own settings' names and defaults."""

    implementation: Literal["cilium", "calico"] = Field(
        "cilium", description="cilium (kube-proxy replacement) or calico (eBPF data plane)")
    host_routing: Literal["auto", "bpf", "legacy"] = Field(
        "auto", description="bpf: eBPF host routing, Pod packets bypass netfilter and the "
        "upper host stack (kernel >= 5.10; Cilium also needs masquerade: bpf); legacy: through "
        "the host stack and iptables (Cilium bpf.hostLegacyRouting); auto: bpf where its "
        "requirements are met, as Cilium and Calico decide")
    masquerade: Literal["iptables", "bpf"] = Field(
        "iptables", description="Cilium bpf.masquerade (default false: iptables); eBPF host "
        "routing needs bpf")
    socket_lb: bool = Field(True, description="ClusterIP translated at connect(), no packet "
                            "NATed (Cilium socketLB.enabled; Calico bpfConnectTimeLoadBalancing); "
                            "false: every packet translated at the Pod's tc hook")
    load_balancer_mode: Literal["auto", "snat", "dsr", "hybrid", "tunnel"] = Field(
        "auto", description="NodePort/LoadBalancer to a backend on another node: Cilium "
        "loadBalancer.mode snat (replies back through the entry node), dsr (replies leave "
        "from the backend's node), hybrid (dsr for TCP); Calico bpfExternalServiceMode tunnel "
        "(VXLAN to the backend's node, client IP kept) or dsr; auto: snat (cilium), tunnel (calico)")
    acceleration: Literal["disabled", "native"] = Field(
        "disabled", description="Cilium loadBalancer.acceleration: native handles NodePort "
        "packets for other nodes at XDP in the NIC driver")
    algorithm: Literal["random", "maglev"] = Field(
        "random", description="Cilium loadBalancer.algorithm: backend choice for NodePort and "
        "LoadBalancer traffic (Maglev: consistent hashing, one more table lookup)")
    ct_map_size: int | None = Field(None, ge=1, le=100_000_000, description="TCP entries of "
                                    "the BPF conntrack map, an LRU map (a full one evicts its "
                                    "oldest entry); default: Cilium bpf-ct-global-tcp-max "
                                    "524,288, Calico BPFMapSizeConntrack 512,000")
    ct_close_timeout: Duration = Field(10.0, description="how long a closed connection's entry "
                                       "stays in the BPF conntrack map (Cilium "
                                       "bpf-ct-timeout-regular-tcp-fin), s")

    def ct_entries(self) -> int:
        """The BPF conntrack map's size: as set, else the implementation's default."""
        return self.ct_map_size or {"cilium": 524_288, "calico": 512_000}[self.implementation]


class KubeProxy(_Strict):
    """The Service proxy on every node."""

    mode: KubeProxyMode = Field("iptables", description="iptables, ipvs, nftables or ebpf "
                                                        "(Cilium or Calico eBPF, see ebpf)")
    ebpf: Ebpf = Field(default_factory=Ebpf, description="the eBPF data plane's settings "
                                                         "(mode: ebpf)")
    min_sync_period: Duration = Field(1.0, description="--iptables-min-sync-period: at most "
                                                       "one sync per this, after a burst (not "
                                                       "for ebpf: Cilium has none), s")
    sync_period: Duration = Field(30.0, gt=0, description="--iptables-sync-period: periodic "
                                                          "sync when nothing changes, s")
    burst_syncs: int = Field(2, ge=1, le=100, description="syncs allowed back to back")
    minimize_iptables_restore: bool = Field(
        True, description="iptables: partial restores of changed Services (KEP-3453)")


Z99 = 2.3263478740408408
"""Standard normal 99th percentile."""


class Server(_Strict):
    """The application inside each endpoint Pod."""

    workers: int = Field(4, ge=1, le=100_000, description="requests a Pod serves at once")
    service_time: Duration = Field(100e-6, description="mean app time per request, s")
    service_time_distribution: Literal["exponential", "constant", "lognormal", "empirical"] = Field(
        "exponential", description="exponential, constant, lognormal (mean service_time and "
                                   "p99 service_time_p99) or empirical (service_time_samples)")
    service_time_p99: Duration | None = Field(
        None, description="lognormal: the app time's 99th percentile, s")
    service_time_samples: list[Duration] | None = Field(
        None, max_length=1_000_000, description="empirical: measured app times, drawn one per "
        "request; or service_time_file")
    service_time_file: str | None = Field(
        None, description="empirical: a CSV of measured app times (one a line, seconds or with "
                          "a unit), relative to the scenario file; read into service_time_samples")
    queue_limit: int = Field(4096, ge=0, le=10**9, description="requests that may wait while every "
                                                     "worker is busy; one more is refused "
                                                     "(0: refused whenever all are busy)")

    @model_validator(mode="after")
    def _distribution(self) -> "Server":
        kind = self.service_time_distribution
        if kind == "lognormal":
            p99, mean = self.service_time_p99, self.service_time
            if p99 is None:
                raise _SectionError("a lognormal needs service_time_p99", ("service_time_p99",))
            if not mean < p99 <= mean * math.exp(Z99**2 / 2):
                raise _SectionError(f"a lognormal with mean {mean:g} s needs a p99 above it and at "
                                    f"most {math.exp(Z99**2 / 2):.2f} times it, got {p99:g} s",
                                    ("service_time_p99",))
        if kind == "empirical" and not self.service_time_samples and not self.service_time_file:
            raise _SectionError("empirical needs service_time_samples or service_time_file",
                                ("service_time_distribution",))
        return self

    def lognormal(self) -> tuple[float, float]:
        """(mu, sigma) of the lognormal with mean service_time and p99 service_time_p99."""
        ratio = math.log(self.service_time_p99 / self.service_time)
        sigma = Z99 - math.sqrt(Z99**2 - 2 * ratio)
        return math.log(self.service_time) - sigma**2 / 2, sigma

    @property
    def mean_service_time(self) -> float:
        """The app time's mean, s (an empirical one: its samples' mean)."""
        if self.service_time_distribution == "empirical" and self.service_time_samples:
            return sum(self.service_time_samples) / len(self.service_time_samples)
        return self.service_time


class LoadBalancer(_Strict):
    """What provides `type: LoadBalancer` Services."""

    provider: Literal["auto", "none", "cloud", "metallb"] = Field(
        "auto", description="auto: the cloud's LB on cluster.provider cloud, none on bare metal")
    metallb_mode: Literal["l2", "bgp"] = Field(
        "l2", description="MetalLB: l2 (one announcing node carries a Service) or bgp (ECMP)")
    instances: int = Field(2, ge=1, le=10_000, description="cloud LB capacity units in parallel")


class Ingress(_Strict):
    """The Ingress controller Deployment (an L7 proxy such as ingress-nginx)."""

    replicas: int = Field(2, ge=1, le=10_000)
    workers: int = Field(4, ge=1, le=1024, description="worker processes per replica")
    tls: bool = Field(True, description="clients speak TLS: a handshake per new connection")
    service_type: Literal["NodePort", "LoadBalancer"] = Field(
        "NodePort", description="how the controller itself is exposed")


class Kubectl(_Strict):
    """The API server path used by `kubectl proxy` and `kubectl port-forward`."""

    apiserver_cores: int = Field(4, ge=1, le=1024, description="API server CPU cores")
    max_requests_inflight: int = Field(
        400, ge=1, le=10**9, description="kube-apiserver --max-requests-inflight (default 400): more "
                               "are refused with 429")


class External(_Strict):
    """Clients outside the cluster and what stands between them and the Pods."""

    client_latency: Duration = Field(1e-3, description="one way, external client to the "
                                                        "cluster edge, s")
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    ingress: Ingress = Field(default_factory=Ingress)
    kubectl: Kubectl = Field(default_factory=Kubectl)


class Dns(_Strict):
    """Name lookups through CoreDNS before each new connection to a ClusterIP Service."""

    enabled: bool = Field(False, description="look the Service name up before connecting")
    name: Literal["short", "namespaced", "fqdn", "external"] = Field(
        "short", description="what the client resolves: 'web', 'web.prod', "
                             "'web.prod.svc.cluster.local.', or an external name")
    ndots: int = Field(5, ge=0, le=15, description="resolv.conf ndots (kubelet sets 5)")
    host_search_domains: int = Field(0, ge=0, le=3, description="search domains the node adds "
                                                               "after the three cluster ones")
    coredns_replicas: int = Field(2, ge=1, le=1000)
    coredns_cores: int = Field(1, ge=1, le=64, description="cores of each CoreDNS Pod")
    cache_hit_ratio: float = Field(0.9, ge=0, le=1, description="external names answered "
                                                               "from CoreDNS's cache")


def _surge(text: str, most: int | None):
    """A Deployment's maxSurge / maxUnavailable: a Pod count or a percentage of replicas
    (at most `most` percent)."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise ValueError(f"{text} is a Pod count or a percentage such as '25%'")
        if isinstance(v, str):
            number = v[:-1] if v.endswith("%") else ""
            if not number.isdigit() or (most is not None and int(number) > most):
                upto = f" from '0%' to '{most}%'" if most is not None else " such as '25%'"
                raise ValueError(f"{text} is a Pod count or a percentage{upto}, not {v!r}")
        elif v < 0:
            raise ValueError(f"{text} must not be negative")
        return v
    return BeforeValidator(check)


class RollingUpdate(_Strict):
    """A Deployment rollout: every Pod of one Service replaced, maxSurge / maxUnavailable
    at a time (Kubernetes defaults 25% / 25%)."""

    service: int = Field(0, ge=0, description="index of the Service whose Pods roll "
                                              "(generated Services: 0 is the most popular)")
    at: Duration = Field(0.0, le=DAY, description="when the rollout starts, s")
    max_surge: Annotated[int | str, _surge("max_surge", None)] = Field(
        "25%", description="Pods above replicas during the rollout (count or %, rounded up)")
    max_unavailable: Annotated[int | str, _surge("max_unavailable", 100)] = Field(
        "25%", description="Pods below replicas during the rollout (count or %, rounded down)")

    def pods(self, replicas: int) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) in Pods for `replicas`, rounded as the Deployment
        controller does (surge up, unavailable down); both 0 becomes unavailable 1."""
        def count(v, up):
            if isinstance(v, int):
                return v
            share = int(v[:-1]) * replicas
            return -(-share // 100) if up else share // 100
        surge, unavailable = count(self.max_surge, True), count(self.max_unavailable, False)
        return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


class Scale(_Strict):
    """A Deployment scaled to a new replica count."""

    service: int = Field(0, ge=0, description="index of the Service whose Deployment scales")
    at: Duration = Field(0.0, le=DAY, description="when, s")
    replicas: int = Field(ge=0, le=100_000, description="the new replica count")


class NodeFailure(_Strict):
    """A node stops: its Pods stop serving at once; the node lifecycle controller marks
    them not ready after node_monitor_grace_period and evicts them after eviction_timeout."""

    node: int = Field(0, ge=0, description="index of the node that fails")
    at: Duration = Field(0.0, le=DAY, description="when, s")


class ChurnEvent(_Strict):
    """One discrete event: exactly one of rolling_update, scale, node_failure."""

    rolling_update: RollingUpdate | None = None
    scale: Scale | None = None
    node_failure: NodeFailure | None = None

    @model_validator(mode="after")
    def _one(self) -> "ChurnEvent":
        given = [k for k in ("rolling_update", "scale", "node_failure") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an event is exactly one of rolling_update, scale, node_failure")
        return self

    @property
    def what(self) -> RollingUpdate | Scale | NodeFailure:
        return self.rolling_update or self.scale or self.node_failure


class ControlPlane(_Strict):
    """Endpoint churn and how fast every node's kube-proxy programs it. With it enabled,
    the data plane's proxies route by the rules each node has programmed."""

    enabled: bool = Field(False, description="also simulate the control plane for this point")
    churn_rate: Annotated[float, _quantity("rate"), Field(ge=0)] = Field(
        1.0, description="steady churn: Pods replaced per second, whole cluster (0: none)")
    duration: Duration = Field(120.0, gt=0, le=DAY, description="steady churn lasts this long, s")
    events: list[ChurnEvent] = Field(default_factory=list, description="rollouts, scaling, "
                                                                      "node failures")
    sampled_nodes: int = Field(50, ge=1, le=100_000, description="kube-proxies simulated; the "
                                                                  "watch fan-out pays for all nodes")
    endpointslice_batch_period: Duration = Field(
        0.0, le=DAY, description="kube-controller-manager --endpointslice-updates-batch-period: "
                         "changes of one Service within it go out in one update, s")
    readiness_delay: Duration = Field(
        0.0, le=DAY, description="container started -> Ready (readiness probe initialDelaySeconds, "
                         "app warm-up), s")
    pre_stop: Duration = Field(
        0.0, le=DAY, description="a deleted Pod keeps serving this long after its endpoint is "
                         "removed (preStop sleep); 0: the app exits at SIGTERM, s")
    node_monitor_grace_period: Duration = Field(
        50.0, le=DAY, description="kube-controller-manager --node-monitor-grace-period: a failed "
                          "node's Pods are marked not ready after this, s")
    eviction_timeout: Duration = Field(
        300.0, le=DAY, description="not-ready/unreachable tolerationSeconds: a failed node's Pods are "
                           "replaced this long after the node is marked, s")


class Workload(_Strict):
    """What the clients do."""

    arrival: Literal["poisson", "constant"] = Field(
        "poisson", description="arrival process of new connections")
    rate: Rate = Field(1000.0, description="offered requests per second, whole cluster")
    request_size: Size = Field(100.0, description="request payload, bytes")
    response_size: Size = Field(1024.0, description="response payload, bytes")
    requests_per_connection: int = Field(
        1, ge=1, le=1_000_000, description="keep-alive: requests sent one after another "
                                           "on one connection (1 = a new connection each)")
    timeout: Duration = Field(10.0, gt=0, description="client gives up after this, s")
    protocol: Literal["http", "tcp"] = Field("http", description="application protocol; "
                                                                 "kubectl proxy carries HTTP only")
    mix: dict[TrafficKind, Annotated[float, Field(ge=0, le=MAX_WEIGHT)]] = Field(
        default_factory=lambda: {"pod-clusterip": 1.0},
        description="relative weight of each traffic kind")
    server: Server = Field(default_factory=Server)

    @model_validator(mode="after")
    def _mix_has_weight(self) -> "Workload":
        if sum(self.mix.values()) <= 0:
            raise ValueError(f"mix needs a positive weight on at least one of {', '.join(TRAFFIC_KINDS)}")
        return self


class Run(_Strict):
    """How long to run and how to repeat."""

    requests: int | None = Field(None, ge=1, le=2**63 - 1, description="requests to generate")
    duration: Duration | None = Field(None, description="or: generate arrivals for this long, s")
    warmup: Duration = Field(0.0, description="requests started before this are not measured, s")
    drain: Duration | None = Field(None, description="time after the last arrival before the "
                                                     "run stops (default: workload timeout), s")
    seed: int = Field(1, ge=0, le=2**63 - 1)
    replications: int = Field(1, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_length(self) -> "Run":
        if self.requests is not None and self.duration is not None:
            raise ValueError("give either requests or duration, not both")
        return self

    @property
    def length(self) -> tuple[str, float]:
        """('requests', n) or ('duration', seconds); 10,000 requests if neither is set."""
        if self.duration is not None:
            return ("duration", self.duration)
        return ("requests", float(self.requests if self.requests is not None else 10_000))


class Range(_Strict):
    """A generated sweep axis: `log` or `linear` from..to with `num` values (or `step`)."""

    log: tuple[Any, Any] | None = None
    linear: tuple[Any, Any] | None = None
    num: int | None = Field(None, ge=2, le=10_000)
    step: Any = None

    @model_validator(mode="after")
    def _shape(self) -> "Range":
        if (self.log is None) == (self.linear is None):
            raise ValueError("a range needs exactly one of 'log: [from, to]' or 'linear: [from, to]'")
        if self.log is not None and self.num is None:
            raise ValueError("a log range needs 'num' (number of values)")
        if self.linear is not None and (self.num is None) == (self.step is None):
            raise ValueError("a linear range needs exactly one of 'num' or 'step'")
        if self.log is not None and self.step is not None:
            raise ValueError("'step' only applies to linear ranges")
        return self


class Sweep(_Strict):
    """Axes over scenario fields by dotted path; the grid product, with zipped groups."""

    axes: dict[str, list[Any] | Range] = Field(default_factory=dict)
    zip: list[list[str]] = Field(default_factory=list,
                                 description="groups of axes that vary together")


class Scenario(_Strict):
    """A whole scenario file (one sweep point once the sweep is applied)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="short name; default output folder results/<name>")
    description: str = ""
    profile: str = Field("default", description="cost profile: a shipped name or a YAML "
                                                "path relative to the scenario file")
    costs: dict[str, Any] = Field(default_factory=dict,
                                  description="overrides of profile parameters")
    cluster: Cluster = Field(default_factory=Cluster)
    services: Services = Field(default_factory=Services)
    kube_proxy: KubeProxy = Field(default_factory=KubeProxy)
    workload: Workload = Field(default_factory=Workload)
    external: External = Field(default_factory=External)
    dns: Dns = Field(default_factory=Dns)
    control_plane: ControlPlane = Field(default_factory=ControlPlane)
    run: Run = Field(default_factory=Run)
    inventory: Inventory | None = Field(
        None, description="explicit nodes and Services; replaces services.count and "
                          "endpoints_per_service, and sets cluster.nodes")
    sweep: Sweep | None = None

    @property
    def node_count(self) -> int:
        """Nodes in the cluster: the inventory's when there is one, else cluster.nodes."""
        return len(self.inventory.nodes) if self.inventory is not None else self.cluster.nodes

    @property
    def service_count(self) -> int:
        """Services: the inventory's when there is one, else services.count."""
        return len(self.inventory.services) if self.inventory is not None else self.services.count

    @model_validator(mode="after")
    def _fits(self) -> "Scenario":
        if self.inventory is not None:
            if "nodes" in self.cluster.model_fields_set and self.cluster.nodes != len(self.inventory.nodes):
                raise ValueError(f"cluster.nodes = {self.cluster.nodes} but the inventory lists "
                                 f"{len(self.inventory.nodes)} nodes (leave cluster.nodes out)")
            given = self.services.model_fields_set & {"count", "endpoints_per_service"}
            if given:
                raise ValueError(f"services.{sorted(given)[0]} does not apply with an inventory: "
                                 "its Services and endpoints are listed")
            has_pods = any(svc.endpoints for svc in self.inventory.services)
            if all(svc.type == "ExternalName" for svc in self.inventory.services):
                raise _SectionError("every listed Service is type ExternalName (a DNS CNAME with "
                                    "no ClusterIP and no endpoints): no Service a client could "
                                    "call; list at least one other Service",
                                    ("inventory", "services"))
        else:
            pods = self.services.count * self.services.endpoints_per_service
            room = self.cluster.nodes * self.cluster.pods_per_node
            if pods > room:
                raise ValueError(
                    f"services.count x endpoints_per_service = {pods:,} endpoint Pods do not fit "
                    f"on cluster.nodes x pods_per_node = {room:,}")
            has_pods = pods > 0
        for i, event in enumerate(self.control_plane.events):
            what, kind = event.what, next(k for k in ChurnEvent.model_fields if getattr(event, k))
            if isinstance(what, NodeFailure) and what.node >= self.node_count:
                raise _SectionError(f"the cluster has nodes 0..{self.node_count - 1}",
                                    ("control_plane", "events", i, kind, "node"))
            if not isinstance(what, NodeFailure) and what.service >= self.service_count:
                raise _SectionError(f"the Services are 0..{self.service_count - 1}",
                                    ("control_plane", "events", i, kind, "service"))
        mix = self.workload.mix
        if self.node_count < 2 and mix.get("pod-pod-cross-node", 0) > 0:
            raise ValueError("traffic kind pod-pod-cross-node needs at least 2 nodes")
        pod_to_pod = [k for k in ("pod-pod-same-node", "pod-pod-cross-node") if mix.get(k, 0) > 0]
        if pod_to_pod and not has_pods:
            raise ValueError(f"traffic kind {pod_to_pod[0]} needs server Pods: "
                             "services.endpoints_per_service >= 1")
        return self
