"""Where each connection goes and what its set-up walks, decided before any engine runs.

A connection's *roles* (`client`, `entry`, `proxy`, `server`, `dns`) are put on nodes from
its uniform draws, the moment it arrives: the Service proxy of the client's node (or of
the entry node for external traffic) picks an endpoint among those in its rules at that
moment (all of the Service's without a control plane), an Ingress controller or CoreDNS
replica is drawn, and failed nodes are avoided. From the roles follow the route's
`Placement` (which roles share a node) and the rule walks of the set-up (`RuleWalk`):
KUBE-SERVICES for a ClusterIP, KUBE-NODEPORTS after the whole of KUBE-SERVICES for a node
port. One function per way in; `netmodel trace` builds its connection with the same
`Placer.connect`, so the hops it prints cost what the engines charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from netmodel.cluster.rules import iptables_nodeport_rules_walked, iptables_rules_walked
from netmodel.cluster.topology import Topology
from netmodel.controlplane.churn import ProgrammedEndpoints
from netmodel.costs.model import LOOKUPS, CostModel
from netmodel.paths import EXTERNAL_CLIENT, Placement, Route, dns_queries, route
from netmodel.paths.dataplane import dataplane_of
from netmodel.paths.reachability import load_balancer_provider
from netmodel.scenario.schema import Scenario
from netmodel.vocabulary import NO_ENDPOINTS, NO_LOCAL_ENDPOINT, STALE_ENDPOINT

CONTROL_PLANE = -1
"""Node index of the control-plane node that runs the API server."""


class RuleWalk(NamedTuple):
    """One lookup of a new connection's first packet in a Service proxy's rules.

    iptables walks `rank` rules of `chain` until the Service matches (a node port's packet
    first passes all `length` rules of KUBE-SERVICES), then the Service's own chain to the
    endpoint at 0-based `position`; the other modes look up once.
    """

    component: str
    """The hop it costs: 'rule-lookup', 'dns-rule-lookup' or 'nodeport-lookup'."""
    chain: str
    """'KUBE-SERVICES' or 'KUBE-NODEPORTS'."""
    rank: int
    """1-based position of the Service's rule in `chain`."""
    position: int
    """0-based endpoint index in the Service's own chain."""
    length: int
    """Rules in KUBE-SERVICES."""
    note: str = ""
    """Why `rank` is what it is, where it is taken rather than placed."""

    def rules_walked(self) -> int:
        """iptables rules this walk visits."""
        if self.chain == "KUBE-NODEPORTS":
            return iptables_nodeport_rules_walked(self.length, self.rank, self.position)
        return iptables_rules_walked(self.rank, self.position)

    def seconds(self, costs: CostModel) -> float:
        """CPU seconds of the walk under the scenario's kube-proxy mode."""
        if self.chain == "KUBE-NODEPORTS":
            return float(costs.nodeport_lookup_seconds(self.length, self.rank, self.position))
        return float(costs.rule_lookup_seconds(self.rank, self.position))

    def describe(self, mode: str) -> str:
        """What the walk does, in kube-proxy's words."""
        if mode != "iptables":
            return f"one {'BPF map' if mode == 'ebpf' else mode} lookup"
        if self.chain == "KUBE-NODEPORTS":
            where = f"all {self.length:,} of KUBE-SERVICES, then rank {self.rank:,} in KUBE-NODEPORTS"
        else:
            where = f"rank {self.rank:,} of {self.length:,} in KUBE-SERVICES"
        return f"{self.rules_walked():,} rules walked: {where}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Connection:
    """One placed connection: node of each role (None: outside the cluster; CONTROL_PLANE:
    the API server's node), the endpoint it reaches and its index in the Service's rules,
    the replica of its proxy (Ingress controller or CoreDNS), the route's placement and the
    rule walks of its set-up."""

    kind: str
    service: int
    nodes: dict[str, int | None]
    endpoint: int
    position: int
    replica: int
    placement: Placement
    walks: tuple[RuleWalk, ...]
    lookup: dict[str, float]
    """Seconds of each walk, by component."""


class Placer:
    """Places the connections of one replication, in arrival order (IPVS round robin
    carries state from one connection to the next)."""

    def __init__(self, scenario: Scenario, costs: CostModel, topology: Topology,
                 programmed: ProgrammedEndpoints | None = None):
        self.scenario = scenario
        self.costs = costs
        self.topology = topology
        self.programmed = programmed
        self.mode = scenario.kube_proxy.mode
        self._endpoint_node = programmed.churn.node if programmed else topology.endpoint_node
        self._failed_at = programmed.churn.failed_at if programmed else np.empty(0)
        self._ipvs_next: dict[tuple[int, int], int] = {}
        self._lb_provider = load_balancer_provider(scenario)
        dns = scenario.dns
        self._dns_queries = dns_queries(dns.name, dns.ndots, dns.host_search_domains) if dns.enabled else 0
        self._roles = {"pod-pod-same-node": self._pod_to_pod, "pod-pod-cross-node": self._pod_to_pod,
                       "pod-clusterip": self._clusterip, "external-nodeport": self._external_service,
                       "external-loadbalancer": self._external_service,
                       "external-ingress": self._ingress, "kubectl-proxy": self._kubectl,
                       "kubectl-port-forward": self._kubectl}

    # -- the whole connection ------------------------------------------------------------
    def place(self, kind: str, s: int, u: dict[str, float], now: float) -> Connection | int:
        """The connection of `kind` to Service `s` arriving at `now` with uniform draws `u`
        (PLACEMENT_DRAWS), or the drop code of a connection that goes nowhere."""
        roles = self._roles[kind](kind, s, u, now)
        if isinstance(roles, int):
            return roles
        conn = self.connect(kind, s, *roles)
        if self.programmed is not None and not self.programmed.serving(conn.endpoint, now):
            return STALE_ENDPOINT
        return conn

    def connect(self, kind: str, s: int, nodes: dict[str, int | None], endpoint: int,
                position: int, replica: int = 0, dns_upstream: bool = False) -> Connection:
        """The connection of `kind` to Service `s` with its roles on `nodes`, reaching
        `endpoint` at `position` in its Service's rules, through proxy `replica`."""
        placement = self._placement(kind, s, nodes, dns_upstream)
        walks = self._walks(kind, s, position, replica)
        return Connection(kind, s, nodes, endpoint, position, replica, placement, walks,
                          {w.component: w.seconds(self.costs) for w in walks})

    def _placement(self, kind: str, s: int, n: dict, dns_upstream: bool) -> Placement:
        """What shapes the route: which roles share a node, masquerading, DNS lookups."""
        if kind in ("external-nodeport", "external-loadbalancer"):
            return Placement(entry_is_server=n["entry"] == n["server"],
                             snat=not self.topology.local_policy[s])
        if kind == "external-ingress":
            return Placement(entry_is_proxy=n["entry"] == n["proxy"],
                             proxy_is_server=n["proxy"] == n["server"], snat=True)
        if kind in ("kubectl-proxy", "kubectl-port-forward"):
            return Placement()
        if "dns" not in n:
            return Placement(same_node=n["client"] == n["server"])
        return Placement(same_node=n["client"] == n["server"], dns_queries=self._dns_queries,
                         dns_same_node=n["dns"] == n["client"], dns_upstream=dns_upstream)

    def _walks(self, kind: str, s: int, position: int, replica: int) -> tuple[RuleWalk, ...]:
        """The rule walks of the connection's set-up, in the order its packets make them."""
        topo = self.topology
        rules = int(topo.rules_in_kube_services)
        if kind == "pod-clusterip":
            walks = () if topo.headless[s] else (
                RuleWalk("rule-lookup", "KUBE-SERVICES", int(topo.kube_services_rank[s]), position, rules),)
            if self._dns_queries:
                walks += (RuleWalk("dns-rule-lookup", "KUBE-SERVICES", (rules + 1) // 2, replica, rules,
                                   note="kube-dns, taken to sit mid-way"),)
            return walks
        if kind in ("external-nodeport", "external-loadbalancer"):
            return (RuleWalk("nodeport-lookup", "KUBE-NODEPORTS", int(topo.nodeport_rank[s]),
                             position, rules),)
        if kind == "external-ingress":
            # The controller's own Service: one more KUBE-SERVICES rule, taken to sit in the
            # middle of KUBE-NODEPORTS.
            middle = (int(topo.nodeport_rank.max()) + 2) // 2
            return (RuleWalk("nodeport-lookup", "KUBE-NODEPORTS", middle, replica, rules + 1,
                             note="the Ingress controller's Service, taken to sit mid-way"),)
        return ()

    # -- roles, one function per way in ----------------------------------------------------
    def _pod_to_pod(self, kind, s, u, now):
        ids = self.endpoints(s, now)
        if len(ids) == 0:
            return NO_ENDPOINTS
        drawn = int(u["endpoint"] * len(ids))
        ep = int(ids[drawn])
        dst = self.node_of(ep)
        nodes = self.topology.nodes
        src = dst if kind == "pod-pod-same-node" else \
            self.up((dst + 1 + int(u["client-node"] * (nodes - 1))) % nodes, now)
        return {"client": src, "server": dst}, ep, drawn

    def _clusterip(self, kind, s, u, now):
        topo = self.topology
        src = self.up(int(u["client-node"] * topo.nodes), now)
        ids = self.endpoints(s, now, None if topo.headless[s] else src)
        if len(ids) == 0:
            return NO_ENDPOINTS
        drawn = int(u["endpoint"] * len(ids))
        # headless: DNS answers with Pod IPs, straight to a Pod; else the node's proxy picks
        i = drawn if topo.headless[s] else self._pick_endpoint(src, s, drawn, len(ids))
        ep = int(ids[i])
        where = {"client": src, "server": self.node_of(ep)}
        if not self._dns_queries:
            return where, ep, i
        dns = self.scenario.dns
        replica = int(u["proxy"] * dns.coredns_replicas)
        where["dns"] = replica * topo.nodes // dns.coredns_replicas
        upstream = dns.name == "external" and u["entry-node"] >= dns.cache_hit_ratio
        return where, ep, i, replica, upstream

    def _external_service(self, kind, s, u, now):
        topo = self.topology
        local = bool(topo.local_policy[s])
        entry = self._entry(kind, s, u, now, local)
        if entry is None:
            return NO_ENDPOINTS
        ids = self.endpoints(s, now, entry)
        if len(ids) == 0:
            return NO_ENDPOINTS
        if local:
            here = np.flatnonzero(self._endpoint_node[ids] == entry)
            if len(here) == 0:
                return NO_LOCAL_ENDPOINT
            position = int(u["endpoint"] * len(here))
            i = int(here[position])
        else:
            i = self._pick_endpoint(entry, s, int(u["endpoint"] * len(ids)), len(ids))
            position = i
        ep = int(ids[i])
        return {EXTERNAL_CLIENT: None, "entry": entry, "server": self.node_of(ep)}, ep, position

    def _entry(self, kind, s, u, now, local) -> int | None:
        """The node an external connection enters: any node's IP for a NodePort; for a
        LoadBalancer, a node the load balancer sends it to (None: no healthy node)."""
        nodes = self.topology.nodes
        if kind == "external-nodeport":
            return self.up(int(u["entry-node"] * nodes), now)  # the client picks any node's IP
        listed = self.endpoints(s, now)
        if len(listed) == 0:
            return None
        healthy = np.unique(self._endpoint_node[listed]) if local else np.arange(nodes)
        if self._metallb_l2():
            return self.up(int(healthy[s % len(healthy)]), now)  # one announcing node per Service
        return self.up(int(healthy[int(u["entry-node"] * len(healthy))]), now)  # cloud LB or BGP ECMP

    def _ingress(self, kind, s, u, now):
        nodes, ing = self.topology.nodes, self.scenario.external.ingress
        ids = self.endpoints(s, now)
        if len(ids) == 0:
            return NO_ENDPOINTS
        drawn = int(u["endpoint"] * len(ids))
        if ing.service_type == "LoadBalancer" and self._metallb_l2():
            entry = self.up(0, now)  # the announcing node of the controller's Service
        else:
            entry = self.up(int(u["entry-node"] * nodes), now)
        replica = int(u["proxy"] * ing.replicas)
        proxy = replica * nodes // ing.replicas  # replicas spread evenly over the nodes
        ep = int(ids[drawn])
        return ({EXTERNAL_CLIENT: None, "entry": entry, "proxy": proxy, "server": self.node_of(ep)},
                ep, drawn, replica)

    def _kubectl(self, kind, s, u, now):
        """Through the API server on the control-plane node, which reads the EndpointSlice."""
        ids = self.endpoints(s, now)
        if len(ids) == 0:
            return NO_ENDPOINTS
        drawn = int(u["endpoint"] * len(ids))
        ep = int(ids[drawn])
        return {EXTERNAL_CLIENT: None, "proxy": CONTROL_PLANE, "server": self.node_of(ep)}, ep, drawn

    # -- what the cluster looks like at `now` ---------------------------------------------
    def endpoints(self, s: int, now: float, rules_of: int | None = None) -> np.ndarray:
        """Endpoint ids a new connection to Service `s` can reach at `now`: those in node
        `rules_of`'s kube-proxy rules, or (None) those its EndpointSlice lists, for clients
        that read it themselves (Pod IPs, headless DNS, Ingress controller, API server).
        Without a control plane both are the topology's endpoints."""
        if self.programmed is not None:
            ids = (self.programmed.listed(s, now) if rules_of is None
                   else self.programmed.in_rules(s, rules_of, now))
            if ids is not None:
                return ids
        offsets = self.topology.endpoint_offsets
        return np.arange(offsets[s], offsets[s + 1])

    def up(self, node: int, now: float) -> int:
        """`node`, or the next node that has not failed by `now`: a failed node's client Pods
        send nothing, and clients and load balancers stop using a failed node's IP at once
        (health checks taken as instant). Every node failed: `node`."""
        failed = self._failed_at
        if failed.size == 0 or failed[node] > now:
            return node
        up = np.flatnonzero(np.roll(failed, -node) > now)
        return int((node + up[0]) % failed.size) if up.size else node

    def node_of(self, endpoint: int) -> int:
        """Node the endpoint's Pod runs on."""
        return int(self._endpoint_node[endpoint])

    def _metallb_l2(self) -> bool:
        return (self._lb_provider == "metallb"
                and self.scenario.external.load_balancer.metallb_mode == "l2")

    def _pick_endpoint(self, node: int, service: int, drawn: int, endpoints: int) -> int:
        """Endpoint index chosen by the node's proxy: IPVS round robin, else the random draw
        (iptables `statistic`, nftables `numgen random`, Cilium's random backend)."""
        if self.mode != "ipvs":
            return drawn
        key = (node, service)
        i = self._ipvs_next.get(key, drawn) % endpoints  # each node's rr starts at random
        self._ipvs_next[key] = i + 1
        return i


ROLES = ("client", "entry", "proxy", "server", "dns")
"""Roles a connection puts on cluster nodes (an outside client's is implied by its kind)."""
ABSENT = -2
"""Node index of a role that is not on a connection's route."""
PATH_ROLES = ROLES.index("dns")
"""The roles before it (all but DNS) put a connection's requests on a node: its path."""
OUTSIDE_KINDS = frozenset({"external-nodeport", "external-loadbalancer", "external-ingress",
                           "kubectl-proxy", "kubectl-port-forward"})
"""Kinds whose client is outside the cluster."""


@dataclass(frozen=True)
class Connections:
    """Every connection of one replication as placed on arrival, in arrays (one row per
    connection): what an engine walks."""

    drop: np.ndarray
    """0, or the drop code of a connection that goes nowhere (no packet moves)."""
    route: np.ndarray
    """Index into `routes` (-1 when dropped)."""
    routes: tuple[tuple[str, Placement], ...]
    """The distinct (traffic kind, placement) pairs: each is one pair of plans."""
    node: np.ndarray
    """(connections, ROLES) node of each role; ABSENT, or CONTROL_PLANE for the API server's
    (`node_table`: int16 up to 32,767 nodes)."""
    endpoint: np.ndarray
    """Endpoint id reached (-1 when dropped)."""
    position: np.ndarray
    """The endpoint's 0-based index in its Service's rules, as the proxy picked it."""
    replica: np.ndarray
    """Replica of the connection's Ingress controller or CoreDNS Pod."""
    dns_upstream: np.ndarray
    """Whether its DNS lookup missed CoreDNS's cache and went upstream."""
    lookup: np.ndarray
    """(connections, LOOKUPS) seconds of each rule walk of its set-up."""

    def __len__(self) -> int:
        return len(self.drop)

    @property
    def lookup_cpu(self) -> np.ndarray:
        """Seconds of all its rule walks, summed in walk order (LOOKUPS': rule, node port,
        DNS), as the engines charge them."""
        total = np.zeros(len(self))
        for w in range(self.lookup.shape[1]):
            total = total + self.lookup[:, w]
        return total

    def nodes(self, c: int) -> dict[str, int | None]:
        """Role -> node of connection `c` (an outside client: None)."""
        kind = self.routes[self.route[c]][0]
        roles = {EXTERNAL_CLIENT: None} if kind in OUTSIDE_KINDS else {}
        roles.update((role, int(i)) for role, i in zip(ROLES, self.node[c].tolist()) if i != ABSENT)
        return roles

    def on_path(self, c: int) -> set[int]:
        """Cluster nodes (and CONTROL_PLANE) the requests of connection `c` cross, DNS aside."""
        return {int(i) for i in self.node[c, :PATH_ROLES].tolist() if i != ABSENT}


def node_table(connections: int, nodes: int) -> np.ndarray:
    """A node table of `connections` rows, every role ABSENT, in the smallest integers
    that hold the cluster's node ids (int16 up to 32,767 nodes: 10 B a connection)."""
    dtype = np.int16 if nodes <= np.iinfo(np.int16).max else np.int32
    return np.full((connections, len(ROLES)), ABSENT, dtype=dtype)


def path_nodes(node: np.ndarray) -> np.ndarray:
    """(rows of a node table, PATH_ROLES) the distinct nodes each connection's requests
    cross, in role order, ABSENT in the other places (a node a role before has)."""
    nodes = node[:, :PATH_ROLES].copy()
    for k in range(1, PATH_ROLES):
        for j in range(k):
            nodes[nodes[:, k] == node[:, j], k] = ABSENT
    return nodes


def place_connections(placer: Placer, kinds: list[str], service: np.ndarray,
                      draws: dict[str, np.ndarray], clock: np.ndarray) -> Connections:
    """Place every connection on arrival (at `clock[c]`), in arrival order."""
    n = len(clock)
    drop = np.zeros(n, dtype=np.int8)
    route = np.full(n, -1, dtype=np.int32)
    node = node_table(n, placer.topology.nodes)
    endpoint = np.full(n, -1, dtype=np.int32)
    position = np.zeros(n, dtype=np.int32)
    replica = np.zeros(n, dtype=np.int32)
    upstream = np.zeros(n, dtype=bool)
    lookup = np.zeros((n, len(LOOKUPS)))
    routes: dict[tuple[str, Placement], int] = {}
    column = {role: i for i, role in enumerate(ROLES)}
    names = list(draws)
    for c, (kind, s, now, u) in enumerate(zip(kinds, service.tolist(), clock.tolist(),
                                               zip(*(draws[k].tolist() for k in names)))):
        conn = placer.place(kind, s, dict(zip(names, u)), now)
        if isinstance(conn, int):
            drop[c] = conn
            continue
        route[c] = routes.setdefault((kind, conn.placement), len(routes))
        for role, i in conn.nodes.items():
            if role in column:
                node[c, column[role]] = i
        endpoint[c], position[c], replica[c] = conn.endpoint, conn.position, conn.replica
        upstream[c] = conn.placement.dns_upstream
        for w in conn.walks:
            lookup[c, LOOKUPS.index(w.component)] = conn.lookup[w.component]
    return Connections(drop, route, tuple(routes), node, endpoint, position, replica, upstream,
                       lookup)


def route_of(scenario: Scenario, kind: str, placement: Placement) -> Route:
    """The route of a connection of `kind` with `placement` in this scenario: its data
    plane (`dataplane_of`), TLS at the Ingress controller, and a cloud load balancer where one stands in front
    of the node ports (a LoadBalancer Service, or an Ingress controller exposed as one)."""
    ext = scenario.external
    behind_lb = kind == "external-loadbalancer" or (
        kind == "external-ingress" and ext.ingress.service_type == "LoadBalancer")
    return route(kind, placement, dataplane_of(scenario), tls=ext.ingress.tls,
                 cloud_lb=behind_lb and load_balancer_provider(scenario) == "cloud")
