"""Placement of every connection at once, in numpy, for a cluster without churn.

Without a control plane, a Service's endpoints and every node's rules are the topology's
for the whole run, so `Placer.place` (placement.py, the reference, one connection at a
time) depends on a connection's time only through IPVS round robin, which carries state
from one connection to the next in arrival order: here it is ranked per (node, Service).
The rules are `Placer`'s, kind by kind, as array expressions; the rule walks' seconds come
from the same `CostModel` functions; tests/test_placement.py checks that both give the
same `Connections` on random clusters of every kind.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from netmodel.cluster.topology import Topology
from netmodel.connections.placement import ABSENT, CONTROL_PLANE, ROLES, Connections, node_table
from netmodel.connections.workload import Demand
from netmodel.costs.model import LOOKUPS, CostModel
from netmodel.paths import Placement, dns_queries
from netmodel.paths.reachability import load_balancer_provider
from netmodel.scenario.schema import Scenario
from netmodel.vocabulary import NO_ENDPOINTS, NO_LOCAL_ENDPOINT, TRAFFIC_KINDS

_ROLE = {role: i for i, role in enumerate(ROLES)}
_RULE, _NODEPORT, _DNS = (LOOKUPS.index(w) for w in ("rule-lookup", "nodeport-lookup", "dns-rule-lookup"))


class _Placed:
    """The Connections arrays being filled, kind by kind."""

    def __init__(self, n: int, nodes: int):
        self.drop = np.zeros(n, dtype=np.int8)
        self.node = node_table(n, nodes)
        self.endpoint = np.full(n, -1, dtype=np.int32)
        self.position = np.zeros(n, dtype=np.int32)
        self.replica = np.zeros(n, dtype=np.int32)
        self.upstream = np.zeros(n, dtype=bool)
        self.lookup = np.zeros((n, len(LOOKUPS)))
        self.flags = np.zeros((n, 7), dtype=np.int8)
        """Placement's fields per connection, in its order, but dns_upstream (`upstream`)."""

    def refuse(self, where: np.ndarray, code: int) -> None:
        self.drop[where] = code


def place_static(scenario: Scenario, costs: CostModel, topology: Topology, demand: Demand) -> Connections:
    """Every connection of `demand` placed as `Placer.place` places it when the cluster does
    not change during the run (no control plane)."""
    placed = _Placed(demand.connections, topology.nodes)
    ctx = _Context(scenario, costs, topology, demand)
    for i, kind in enumerate(TRAFFIC_KINDS):
        mine = np.flatnonzero(demand.kind == i)
        for lo in range(0, mine.size, _BLOCK):  # the rules' temporaries stay small
            _KINDS[kind](ctx, placed, mine[lo:lo + _BLOCK], kind)
    ctx.round_robin(placed)
    return _connections(placed, demand)


_BLOCK = 1 << 14
"""Connections placed at once: each is placed on its own (round robin aside, settled after
every block), so blocks bound the arrays the rules make on the way (~130 B a connection of
the block)."""


class _Context:
    """What the rules read: the cluster, the draws, the scenario's settings."""

    def __init__(self, scenario: Scenario, costs: CostModel, topology: Topology, demand: Demand):
        self.scenario, self.costs, self.topo, self.demand = scenario, costs, topology, demand
        self.nodes = topology.nodes
        self.offsets = topology.endpoint_offsets
        self.count = np.diff(topology.endpoint_offsets)
        self.rules = int(topology.rules_in_kube_services)
        dns = scenario.dns
        self.dns_queries = dns_queries(dns.name, dns.ndots, dns.host_search_domains) if dns.enabled else 0
        self.metallb_l2 = (load_balancer_provider(scenario) == "metallb"
                           and scenario.external.load_balancer.metallb_mode == "l2")
        self.ipvs = scenario.kube_proxy.mode == "ipvs"
        self.rr: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """(connections, node whose proxy picks, drawn index) waiting for round robin."""

    @cached_property
    def endpoint_nodes_by_service(self) -> tuple[np.ndarray, np.ndarray]:
        """Each Service's nodes with an endpoint, ascending: nodes[first[s]:first[s+1]]."""
        pairs = np.unique(self._service_of_endpoint() * self.nodes + self.topo.endpoint_node)
        first = np.searchsorted(pairs // self.nodes, np.arange(self.topo.services + 1))
        return first, pairs % self.nodes

    @cached_property
    def endpoints_by_node(self) -> tuple[np.ndarray, np.ndarray]:
        """Endpoint ids sorted by (Service, node, id), and that key (Service x nodes + node)."""
        keys = self._service_of_endpoint() * self.nodes + self.topo.endpoint_node
        order = np.argsort(keys, kind="stable")
        return order, keys[order]

    def _service_of_endpoint(self) -> np.ndarray:
        return np.repeat(np.arange(self.topo.services, dtype=np.int64), self.count)

    def u(self, name: str, c: np.ndarray) -> np.ndarray:
        return self.demand.draws[name][c]

    def draw(self, name: str, c: np.ndarray, among: np.ndarray) -> np.ndarray:
        """int(u * among): an index drawn uniformly below `among` (as Python's int() does)."""
        return (self.u(name, c) * among).astype(np.int64)

    def pick(self, c: np.ndarray, node: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """The proxy's choice: the draw, or (IPVS) round robin, settled in `round_robin`."""
        if self.ipvs and c.size:
            self.rr.append((c, node, drawn))
        return drawn

    def round_robin(self, placed: _Placed) -> None:
        """IPVS round robin per (node, Service) in arrival order: each rotation starts at its
        first connection's draw and moves on by one per connection."""
        if not self.rr:
            return
        c = np.concatenate([r[0] for r in self.rr])
        node = np.concatenate([r[1] for r in self.rr])
        drawn = np.concatenate([r[2] for r in self.rr])
        s = self.demand.service[c]
        order = np.lexsort((c, s, node))
        c, node, drawn, s = c[order], node[order], drawn[order], s[order]
        new = np.ones(c.size, dtype=bool)
        new[1:] = (node[1:] != node[:-1]) | (s[1:] != s[:-1])
        group_start = np.maximum.accumulate(np.where(new, np.arange(c.size), 0))
        rank = np.arange(c.size) - group_start
        i = (drawn[group_start] + rank) % self.count[s]
        placed.position[c] = i
        self._settle(placed, c, s, i)

    def _settle(self, placed: _Placed, c: np.ndarray, s: np.ndarray, i: np.ndarray) -> None:
        """Endpoint, server node, same-node flags and rule walks of round-robin picks."""
        ep = self.offsets[s] + i
        placed.endpoint[c] = ep
        server = self.topo.endpoint_node[ep]
        placed.node[c, _ROLE["server"]] = server
        clusterip = self.demand.kind[c] == TRAFFIC_KINDS.index("pod-clusterip")
        cl, ex = c[clusterip], c[~clusterip]
        placed.flags[cl, 0] = placed.node[cl, _ROLE["client"]] == server[clusterip]
        placed.lookup[cl, _RULE] = self.costs.rule_lookup_seconds(self.topo.kube_services_rank[s[clusterip]],
                                                                  i[clusterip])
        placed.flags[ex, 1] = placed.node[ex, _ROLE["entry"]] == server[~clusterip]
        placed.lookup[ex, _NODEPORT] = self.costs.nodeport_lookup_seconds(
            self.rules, self.topo.nodeport_rank[s[~clusterip]], i[~clusterip])


def _listed(ctx: _Context, placed: _Placed, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connections whose Service has endpoints (the others drop: no-endpoints), their
    Service and its endpoint count."""
    s = ctx.demand.service[c]
    empty = ctx.count[s] == 0
    placed.refuse(c[empty], NO_ENDPOINTS)
    return c[~empty], s[~empty], ctx.count[s[~empty]]


def _pod_to_pod(ctx: _Context, placed: _Placed, c: np.ndarray, kind: str) -> None:
    c, s, count = _listed(ctx, placed, c)
    drawn = ctx.draw("endpoint", c, count)
    ep = ctx.offsets[s] + drawn
    dst = ctx.topo.endpoint_node[ep]
    n = ctx.nodes
    src = dst if kind == "pod-pod-same-node" else \
        (dst + 1 + (ctx.u("client-node", c) * (n - 1)).astype(np.int64)) % n
    placed.node[c, _ROLE["client"]], placed.node[c, _ROLE["server"]] = src, dst
    placed.endpoint[c], placed.position[c] = ep, drawn
    placed.flags[c, 0] = src == dst


def _clusterip(ctx: _Context, placed: _Placed, c: np.ndarray, kind: str) -> None:
    src_all = ctx.draw("client-node", c, ctx.nodes)
    s_all = ctx.demand.service[c]
    keep = ctx.count[s_all] > 0
    placed.refuse(c[~keep], NO_ENDPOINTS)
    c, src, s = c[keep], src_all[keep], s_all[keep]
    count = ctx.count[s]
    drawn = ctx.draw("endpoint", c, count)
    placed.node[c, _ROLE["client"]] = src
    placed.position[c] = drawn
    headless = ctx.topo.headless[s]
    if ctx.dns_queries:
        _dns(ctx, placed, c, src)
    direct = c[headless]  # DNS answers with Pod IPs: straight to a Pod
    ep = ctx.offsets[s[headless]] + drawn[headless]
    placed.endpoint[direct] = ep
    placed.node[direct, _ROLE["server"]] = ctx.topo.endpoint_node[ep]
    placed.flags[direct, 0] = src[headless] == ctx.topo.endpoint_node[ep]
    proxied = ~headless
    i = ctx.pick(c[proxied], src[proxied], drawn[proxied])
    if not ctx.ipvs:
        ctx._settle(placed, c[proxied], s[proxied], i)


def _dns(ctx: _Context, placed: _Placed, c: np.ndarray, src: np.ndarray) -> None:
    dns = ctx.scenario.dns
    replica = ctx.draw("proxy", c, dns.coredns_replicas)
    where = replica * ctx.nodes // dns.coredns_replicas
    placed.replica[c] = replica
    placed.node[c, _ROLE["dns"]] = where
    upstream = (dns.name == "external") & (ctx.u("entry-node", c) >= dns.cache_hit_ratio)
    placed.upstream[c] = upstream
    placed.flags[c, 5] = ctx.dns_queries
    placed.flags[c, 6] = where == src
    placed.lookup[c, _DNS] = ctx.costs.rule_lookup_seconds((ctx.rules + 1) // 2, replica)


def _external_service(ctx: _Context, placed: _Placed, c: np.ndarray, kind: str) -> None:
    s = ctx.demand.service[c]
    local = ctx.topo.local_policy[s]
    if kind == "external-nodeport":
        entry = ctx.draw("entry-node", c, ctx.nodes)  # the client picks any node's IP
    else:
        c, s, local, entry = _load_balanced(ctx, placed, c, s, local)
    keep = ctx.count[s] > 0
    placed.refuse(c[~keep], NO_ENDPOINTS)
    c, s, local, entry = c[keep], s[keep], local[keep], entry[keep]
    placed.node[c, _ROLE["entry"]] = entry
    placed.flags[c, 4] = ~local
    _local_endpoint(ctx, placed, c[local], s[local], entry[local])
    cluster = ~local
    drawn = ctx.draw("endpoint", c[cluster], ctx.count[s[cluster]])
    placed.position[c[cluster]] = drawn
    i = ctx.pick(c[cluster], entry[cluster], drawn)
    if not ctx.ipvs:
        ctx._settle(placed, c[cluster], s[cluster], i)


def _load_balanced(ctx: _Context, placed: _Placed, c, s, local):
    """Entry nodes of LoadBalancer connections: among the healthy nodes (policy Local: the
    nodes with an endpoint, ascending; else every node), MetalLB L2's one announcing node
    per Service or one per connection (cloud LB, BGP ECMP)."""
    keep = ctx.count[s] > 0
    placed.refuse(c[~keep], NO_ENDPOINTS)
    c, s, local = c[keep], s[keep], local[keep]
    first, nodes = ctx.endpoint_nodes_by_service
    healthy = np.where(local, first[s + 1] - first[s], ctx.nodes)
    index = s % healthy if ctx.metallb_l2 else ctx.draw("entry-node", c, healthy)
    entry = np.where(local, nodes[np.where(local, first[s] + index, 0)], index)
    return c, s, local, entry


def _local_endpoint(ctx: _Context, placed: _Placed, c, s, entry) -> None:
    """Policy Local: an endpoint on the entry node (the draw among the Service's endpoints
    there, in index order), or the drop no-local-endpoint."""
    order, keys = ctx.endpoints_by_node
    key = s.astype(np.int64) * ctx.nodes + entry
    low, high = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
    none = high == low
    placed.refuse(c[none], NO_LOCAL_ENDPOINT)
    c, s, entry, low, here = c[~none], s[~none], entry[~none], low[~none], (high - low)[~none]
    position = ctx.draw("endpoint", c, here)
    ep = order[low + position]
    server = ctx.topo.endpoint_node[ep]
    placed.endpoint[c], placed.position[c] = ep, position
    placed.node[c, _ROLE["server"]] = server
    placed.flags[c, 1] = entry == server
    placed.lookup[c, _NODEPORT] = ctx.costs.nodeport_lookup_seconds(
        ctx.rules, ctx.topo.nodeport_rank[s], position)


def _ingress(ctx: _Context, placed: _Placed, c: np.ndarray, kind: str) -> None:
    c, s, count = _listed(ctx, placed, c)
    ing = ctx.scenario.external.ingress
    drawn = ctx.draw("endpoint", c, count)
    if ing.service_type == "LoadBalancer" and ctx.metallb_l2:
        entry = np.zeros(c.size, dtype=np.int64)  # the announcing node of the controller's Service
    else:
        entry = ctx.draw("entry-node", c, ctx.nodes)
    replica = ctx.draw("proxy", c, ing.replicas)
    proxy = replica * ctx.nodes // ing.replicas  # replicas spread evenly over the nodes
    ep = ctx.offsets[s] + drawn
    server = ctx.topo.endpoint_node[ep]
    placed.node[c, _ROLE["entry"]], placed.node[c, _ROLE["proxy"]] = entry, proxy
    placed.node[c, _ROLE["server"]] = server
    placed.endpoint[c], placed.position[c], placed.replica[c] = ep, drawn, replica
    placed.flags[c, 2] = entry == proxy
    placed.flags[c, 3] = proxy == server
    placed.flags[c, 4] = 1
    middle = (int(ctx.topo.nodeport_rank.max()) + 2) // 2
    placed.lookup[c, _NODEPORT] = ctx.costs.nodeport_lookup_seconds(ctx.rules + 1, middle, replica)


def _kubectl(ctx: _Context, placed: _Placed, c: np.ndarray, kind: str) -> None:
    c, s, count = _listed(ctx, placed, c)
    drawn = ctx.draw("endpoint", c, count)
    ep = ctx.offsets[s] + drawn
    placed.node[c, _ROLE["proxy"]] = CONTROL_PLANE
    placed.node[c, _ROLE["server"]] = ctx.topo.endpoint_node[ep]
    placed.endpoint[c], placed.position[c] = ep, drawn


_KINDS = {"pod-pod-same-node": _pod_to_pod, "pod-pod-cross-node": _pod_to_pod,
          "pod-clusterip": _clusterip, "external-nodeport": _external_service,
          "external-loadbalancer": _external_service, "external-ingress": _ingress,
          "kubectl-proxy": _kubectl, "kubectl-port-forward": _kubectl}


def _connections(placed: _Placed, demand: Demand) -> Connections:
    """The arrays as Connections: a dropped connection keeps nothing but its code, routes
    are numbered in order of first appearance."""
    dropped = placed.drop != 0
    placed.node[dropped] = ABSENT
    placed.endpoint[dropped] = -1
    placed.position[dropped] = placed.replica[dropped] = 0
    placed.upstream[dropped] = False
    placed.lookup[dropped] = 0.0
    columns = [demand.kind, *placed.flags.T, placed.upstream]
    route = np.full(len(dropped), -1, dtype=np.int32)
    numbers: dict[int, int] = {}  # route key -> route, in order of first appearance
    for lo in range(0, len(dropped), _BLOCK):
        ok = lo + np.flatnonzero(~dropped[lo:lo + _BLOCK])
        key = np.zeros(ok.size, dtype=np.int64)  # one integer per (kind, placement): 4 bits a field
        for j, column in enumerate(columns):
            key |= column[ok].astype(np.int64) << (4 * j)
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        for k in unique[np.argsort(first)].tolist():
            numbers.setdefault(k, len(numbers))
        route[ok] = np.array([numbers[k] for k in unique.tolist()], dtype=np.int32)[inverse]
    fields = (np.array(list(numbers), dtype=np.int64)[:, None] >> (4 * np.arange(len(columns)))) & 15
    routes = tuple((TRAFFIC_KINDS[f[0]], Placement(
        same_node=bool(f[1]), entry_is_server=bool(f[2]), entry_is_proxy=bool(f[3]),
        proxy_is_server=bool(f[4]), snat=bool(f[5]), dns_queries=int(f[6]),
        dns_same_node=bool(f[7]), dns_upstream=bool(f[8]))) for f in fields.tolist())
    return Connections(placed.drop, route, routes, placed.node, placed.endpoint,
                       placed.position, placed.replica, placed.upstream, placed.lookup)
