"""The reference engine: requests as SimPy processes walking their routes.

A *connection* arrives (Poisson or constant), carries `requests_per_connection`
requests one after another (keep-alive), and follows the `Route` of its traffic kind
(`netmodel.paths`): set-up legs once, then per request the request legs, the work of
the stations on the way (the endpoint's app, a load balancer, an Ingress controller,
the API server) and the response legs. Every CPU step queues for its node's softirq
cores, every message on the node network for the sender's NIC and the receiver's
switch port, every work step for its station's servers.

Nodes and Pods are created lazily when traffic first touches them, so a cluster of
5,000 nodes and 100,000 endpoints costs only what the sampled requests touch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import simpy

from netmodel.cluster.topology import Topology, build_topology
from netmodel.costs.model import CostModel, Step
from netmodel.costs.profile import Profile
from netmodel.paths import EXTERNAL_CLIENT, TRAFFIC_KINDS, Placement, dns_queries, route
from netmodel.paths.reachability import load_balancer_provider
from netmodel.scenario.schema import Scenario
from netmodel.sim.churn import ProgrammedEndpoints
from netmodel.sim.controlplane import ControlPlaneResult, couple
from netmodel.sim.random import streams
from netmodel.sim.stations import Station

IN_FLIGHT, COMPLETED = 0, 1
DROP_REASONS = ("no-endpoints", "server-queue-full", "timeout", "no-local-endpoint",
                "apiserver-throttled", "stale-endpoint")
"""Why a request was dropped; status code = 2 + position. Append only. stale-endpoint: sent
to an endpoint still in the rules (or EndpointSlice) whose Pod no longer serves."""
(NO_ENDPOINTS, SERVER_QUEUE_FULL, TIMEOUT, NO_LOCAL_ENDPOINT, APISERVER_THROTTLED,
 STALE_ENDPOINT) = range(2, 8)

CONTROL_PLANE = -1
"""Node index of the control-plane node that runs the API server."""

_KIND = {k: i for i, k in enumerate(TRAFFIC_KINDS)}


@dataclass(frozen=True)
class ReplicationResult:
    """Per-request records of one replication (arrays indexed by request id).

    `status` is IN_FLIGHT, COMPLETED or a drop code; `start`/`end` in seconds (NaN
    when not reached); `lookup_cpu`/`softirq_cpu` in CPU seconds charged to the
    request (a connection's set-up to its first request); `cross_node` says whether
    the request crossed the node network between nodes (a second node hop included);
    `kind` indexes TRAFFIC_KINDS; `endpoint` is the flat index of the endpoint served
    (-1: none), endpoints of Service s being `endpoint_offsets[s]:endpoint_offsets[s+1]`
    (Pods created by churn during the run have ids from `endpoint_offsets[-1]` on).
    """

    kind: np.ndarray
    status: np.ndarray
    start: np.ndarray
    end: np.ndarray
    lookup_cpu: np.ndarray
    softirq_cpu: np.ndarray
    cross_node: np.ndarray
    endpoint: np.ndarray
    endpoint_offsets: np.ndarray
    warmup: float
    last_arrival: float
    control: ControlPlaneResult | None = None
    """The replication's control-plane run, when `control_plane.enabled`."""
    conntrack_entries: float = float("nan")
    """Steady-state conntrack entries on the busiest node (`conntrack_entries`)."""


class _Node:
    __slots__ = ("softirq", "nic_tx", "nic_rx")

    def __init__(self, env: simpy.Environment, index: int, cores: int):
        self.softirq = Station(env, cores, f"node-{index}/softirq")
        self.nic_tx = Station(env, 1, f"node-{index}/nic-tx")
        self.nic_rx = Station(env, 1, f"node-{index}/nic-rx")


@dataclass(frozen=True)
class _Connection:
    """Where one connection's roles are: node indices (None: outside the cluster),
    the route's placement, the endpoint served, the replica of its proxy (Ingress
    controller or CoreDNS) and its per-connection costs."""

    kind: str
    placement: Placement
    nodes: dict
    endpoint: int
    proxy: int
    lookup: dict


class Engine:
    """One replication of one scenario point."""

    def __init__(self, scenario: Scenario, profile: Profile, replication: int):
        self.scenario = scenario
        self.env = simpy.Environment()
        self.costs = CostModel(profile, scenario)
        self.rng = streams(scenario.run.seed, replication)
        self.topology: Topology = build_topology(scenario, self.rng["placement"],
                                                 self.rng["rule-order"])
        ext = scenario.external
        self._nodes: dict[int, _Node] = {}
        self._pods: dict[int, Station] = {}
        self._kubelets: dict[int, Station] = {}
        self._ipvs_next: dict[tuple[int, int], int] = {}
        self.programmed: ProgrammedEndpoints | None = None
        self._endpoint_node = self.topology.endpoint_node
        self._failed_at = np.empty(0)
        self._plans: dict[tuple[str, Placement], tuple[tuple[Step, ...], tuple[Step, ...]]] = {}
        self._lb = Station(self.env, ext.load_balancer.instances, "cloud-lb")
        self._ingress = [Station(self.env, ext.ingress.workers, f"ingress-{r}")
                         for r in range(ext.ingress.replicas)]
        self._apiserver = Station(self.env, ext.kubectl.apiserver_cores, "apiserver")
        self._port_forward = Station(self.env, 1, "port-forward-stream")
        self._apiserver_inflight = 0
        self._lb_provider = load_balancer_provider(scenario)
        dns = scenario.dns
        self._dns_queries = dns_queries(dns.name, dns.ndots, dns.host_search_domains) if dns.enabled else 0
        self._coredns = [Station(self.env, dns.coredns_cores, f"coredns-{r}")
                         for r in range(dns.coredns_replicas)]

    def follow(self, programmed: ProgrammedEndpoints) -> None:
        """Route by the control plane's programmed rules and churned Pods from now on."""
        self.programmed = programmed
        self._endpoint_node = programmed.churn.node
        self._failed_at = programmed.churn.failed_at

    # -- workload -----------------------------------------------------------------
    def _connection_arrivals(self) -> np.ndarray:
        """Arrival times of connections, seconds."""
        run, w = self.scenario.run, self.scenario.workload
        k = w.requests_per_connection
        mean_gap = k / w.rate
        how, amount = run.length
        if how == "requests":
            return np.cumsum(self._gaps(int(-(-int(amount) // k)), mean_gap))
        times = np.cumsum(self._gaps(int(amount / mean_gap * 1.2) + 16, mean_gap))
        while times[-1] < amount:
            times = np.concatenate([times, times[-1] + np.cumsum(self._gaps(len(times), mean_gap))])
        return times[times < amount]

    def _gaps(self, n: int, mean_gap: float) -> np.ndarray:
        if self.scenario.workload.arrival == "constant":
            return np.full(n, mean_gap)
        return self.rng["arrivals"].standard_exponential(n) * mean_gap

    def run(self) -> ReplicationResult:
        """Simulate and return the per-request records."""
        sc, topo, rng = self.scenario, self.topology, self.rng
        w = sc.workload
        arrivals = self._connection_arrivals()
        n_conn = len(arrivals)
        k = w.requests_per_connection
        how, amount = sc.run.length
        per_conn = np.full(n_conn, k, dtype=np.int64)
        if how == "requests":
            per_conn[-1] = int(amount) - k * (n_conn - 1)
        first = np.concatenate([[0], np.cumsum(per_conn)[:-1]]).astype(np.int64)
        n_req = int(per_conn.sum())

        # Draws per connection, each from its own stream (common random numbers).
        mix = np.array([w.mix.get(kind, 0.0) for kind in TRAFFIC_KINDS])
        kind = np.searchsorted(np.cumsum(mix) / mix.sum(), rng["traffic-kind"].random(n_conn),
                               side="right").clip(max=len(mix) - 1)
        draws = {name: rng[name].random(n_conn) for name in
                 ("client-node", "service", "endpoint", "entry-node", "proxy")}
        per_connection = [dict(zip(draws, values)) for values in
                          zip(*(u.tolist() for u in draws.values()))]
        service = np.empty(n_conn, dtype=np.int64)
        for i, name in enumerate(TRAFFIC_KINDS):
            mine = kind == i
            if mine.any():
                service[mine] = topo.pick_services(draws["service"][mine], self._callable(name))
        app_mean = w.server.service_time
        if w.server.service_time_distribution == "exponential":
            self._app = rng["service-time"].standard_exponential(n_req) * app_mean
        else:
            self._app = np.full(n_req, app_mean)

        self.kind = np.repeat(kind, per_conn).astype(np.int8)
        self.status = np.zeros(n_req, dtype=np.int8)
        self.start = np.full(n_req, np.nan)
        self.end = np.full(n_req, np.nan)
        self.lookup_cpu = np.zeros(n_req)
        self.softirq_cpu = np.zeros(n_req)
        self.cross = np.zeros(n_req, dtype=bool)
        self.endpoint = np.full(n_req, -1, dtype=np.int64)

        self._ct_nodes: list[tuple[int, ...]] = []
        self._ct_open: list[float] = []
        self._ct_close: list[float] = []
        self.env.process(self._arrivals(arrivals.tolist(), kind.tolist(), service.tolist(),
                                        per_connection, first.tolist(), per_conn.tolist()))
        drain = sc.run.drain if sc.run.drain is not None else w.timeout
        last = float(arrivals[-1]) if n_conn else 0.0  # a short run may have no arrival
        stop = last + drain
        self.env.run(until=stop)
        started = ~np.isnan(self.start)
        late = (self.status == IN_FLIGHT) & started & (stop - self.start > w.timeout)
        self.status[late] = TIMEOUT
        return ReplicationResult(self.kind, self.status, self.start, self.end, self.lookup_cpu,
                                 self.softirq_cpu, self.cross, self.endpoint,
                                 topo.endpoint_offsets, sc.run.warmup, last,
                                 conntrack_entries=self.conntrack_entries(sc.run.warmup, last, stop))

    def conntrack_entries(self, since: float, until: float, stop: float) -> float:
        """Conntrack entries on the busiest node in steady state, by Little's law: per node,
        (connections opened in [since, until] through it per second) x (their mean
        lifetime, set-up to last reply, + `conntrack_time_wait`). A connection holds an entry
        on every cluster node on its path (client or entry, proxy, server; DNS lookups and
        kept-alive upstreams not counted); one still open at `stop` counts to `stop`. NaN
        for an empty window."""
        window = until - since
        if window <= 0 or not self._ct_open:
            return float("nan")
        opened = np.asarray(self._ct_open)
        closed = np.where(np.isnan(self._ct_close), stop, self._ct_close)
        mine = (opened >= since) & (opened <= until)
        rate: dict[int, int] = {}
        held: dict[int, float] = {}
        for c in np.flatnonzero(mine).tolist():
            for node in self._ct_nodes[c]:
                rate[node] = rate.get(node, 0) + 1
                held[node] = held.get(node, 0.0) + closed[c] - opened[c]
        if not rate:
            return float("nan")
        wait = self.scenario.cluster.conntrack_time_wait
        return max(n / window * (held[node] / n + wait) for node, n in rate.items())

    def _callable(self, kind: str) -> np.ndarray | None:
        """Services a kind may call: NodePort needs a node port, LoadBalancer its type."""
        if kind == "external-nodeport":
            return self.topology.node_port
        if kind == "external-loadbalancer":
            return self.topology.load_balancer
        return None

    def _arrivals(self, times, kind, service, draws, first, per_conn):
        env = self.env
        for c in range(len(times)):
            yield env.timeout(times[c] - env.now)
            r0, n = first[c], per_conn[c]
            conn = self._place(TRAFFIC_KINDS[kind[c]], service[c], draws[c])
            if isinstance(conn, int):  # dropped before any packet moved
                self.start[r0:r0 + n] = env.now
                self.end[r0:r0 + n] = env.now
                self.status[r0:r0 + n] = conn
                continue
            env.process(self._connection(r0, n, conn))

    # -- where a connection goes ----------------------------------------------------
    def _endpoints(self, s: int, rules_of: int | None = None) -> np.ndarray:
        """Endpoint ids a new connection to Service `s` can reach now: those in node
        `rules_of`'s kube-proxy rules, or (None) those its EndpointSlice lists, for clients
        that read it themselves (Pod IPs, headless DNS, Ingress controller, API server).
        Without a control plane both are the topology's endpoints."""
        if self.programmed is not None:
            now = self.env.now
            ids = (self.programmed.listed(s, now) if rules_of is None
                   else self.programmed.in_rules(s, rules_of, now))
            if ids is not None:
                return ids
        offsets = self.topology.endpoint_offsets
        return np.arange(offsets[s], offsets[s + 1])

    def _up(self, node: int) -> int:
        """`node`, or the next node that has not failed by now: a failed node's client Pods
        send nothing, and clients and load balancers stop using a failed node's IP at once
        (health checks taken as instant). Every node failed: `node`."""
        failed = self._failed_at
        if failed.size == 0 or failed[node] > self.env.now:
            return node
        up = np.flatnonzero(np.roll(failed, -node) > self.env.now)
        return int((node + up[0]) % failed.size) if up.size else node

    def _node_of(self, endpoint: int) -> int:
        """Node the endpoint's Pod runs on."""
        return int(self._endpoint_node[endpoint])

    def _place(self, kind: str, s: int, u: dict) -> _Connection | int:
        """Resolve the roles of one connection, or return the drop code if it has none."""
        conn = self._resolve(kind, s, u)
        if (self.programmed is not None and not isinstance(conn, int)
                and not self.programmed.serving(conn.endpoint, self.env.now)):
            return STALE_ENDPOINT
        return conn

    def _resolve(self, kind: str, s: int, u: dict) -> _Connection | int:
        topo, nodes = self.topology, self.topology.nodes
        if kind in ("external-nodeport", "external-loadbalancer"):
            return self._place_external(kind, s, u)
        if kind == "pod-clusterip":
            src = self._up(int(u["client-node"] * nodes))
            ids = self._endpoints(s, None if topo.headless[s] else src)
        else:
            ids = self._endpoints(s)
        if len(ids) == 0:
            return NO_ENDPOINTS
        drawn = int(u["endpoint"] * len(ids))
        if kind in ("pod-pod-same-node", "pod-pod-cross-node"):
            ep = int(ids[drawn])
            dst = self._node_of(ep)
            src = dst if kind == "pod-pod-same-node" else \
                self._up((dst + 1 + int(u["client-node"] * (nodes - 1))) % nodes)
            return _Connection(kind, Placement(same_node=src == dst), {"client": src, "server": dst},
                               ep, 0, {})
        if kind == "pod-clusterip":
            if topo.headless[s]:  # DNS answers with Pod IPs: straight to a Pod
                i, lookup = drawn, {}
            else:
                i = self._pick_endpoint(src, s, drawn, len(ids))
                lookup = {"rule-lookup": float(self.costs.rule_lookup_seconds(
                    int(topo.kube_services_rank[s]), i))}
            ep = int(ids[i])
            dst = self._node_of(ep)
            where = {"client": src, "server": dst}
            placement = Placement(same_node=src == dst)
            replica = 0
            if self._dns_queries:
                dns = self.scenario.dns
                replica = int(u["proxy"] * dns.coredns_replicas)
                where["dns"] = replica * nodes // dns.coredns_replicas
                upstream = dns.name == "external" and u["entry-node"] >= dns.cache_hit_ratio
                placement = Placement(same_node=src == dst, dns_queries=self._dns_queries,
                                      dns_same_node=where["dns"] == src, dns_upstream=upstream)
                # kube-dns is one more Service, taken to sit mid-way in KUBE-SERVICES
                lookup["dns-rule-lookup"] = float(self.costs.rule_lookup_seconds(
                    (topo.rules_in_kube_services + 1) // 2, replica))
            return _Connection(kind, placement, where, ep, replica, lookup)
        if kind == "external-ingress":
            return self._place_ingress(s, u, ids, drawn)
        # kubectl proxy / port-forward: through the API server on the control-plane node
        ep = int(ids[drawn])
        return _Connection(kind, Placement(), {EXTERNAL_CLIENT: None, "proxy": CONTROL_PLANE,
                                               "server": self._node_of(ep)}, ep, 0, {})

    def _place_external(self, kind, s, u):
        topo, nodes = self.topology, self.topology.nodes
        local = bool(topo.local_policy[s])
        if kind == "external-nodeport":
            entry = self._up(int(u["entry-node"] * nodes))  # the client picks any node's IP
        else:
            listed = self._endpoints(s)
            if len(listed) == 0:
                return NO_ENDPOINTS
            healthy = np.unique(self._endpoint_node[listed]) if local else np.arange(nodes)
            if self._lb_provider == "metallb" and self.scenario.external.load_balancer.metallb_mode == "l2":
                entry = self._up(int(healthy[s % len(healthy)]))  # one announcing node per Service
            else:  # cloud LB or BGP ECMP: per connection over healthy nodes
                entry = self._up(int(healthy[int(u["entry-node"] * len(healthy))]))
        ids = self._endpoints(s, entry)
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
        dst = self._node_of(ep)
        lookup = float(self.costs.nodeport_lookup_seconds(
            topo.rules_in_kube_services, int(topo.nodeport_rank[s]), position))
        return _Connection(kind, Placement(entry_is_server=entry == dst, snat=not local),
                           {EXTERNAL_CLIENT: None, "entry": entry, "server": dst}, ep, 0,
                           {"nodeport-lookup": lookup})

    def _place_ingress(self, s, u, ids, drawn):
        topo, nodes, ing = self.topology, self.topology.nodes, self.scenario.external.ingress
        if ing.service_type == "LoadBalancer" and self._lb_provider == "metallb" \
                and self.scenario.external.load_balancer.metallb_mode == "l2":
            entry = self._up(0)  # the announcing node of the controller's Service
        else:
            entry = self._up(int(u["entry-node"] * nodes))
        replica = int(u["proxy"] * ing.replicas)
        proxy = replica * nodes // ing.replicas  # replicas spread evenly over the nodes
        ep = int(ids[drawn])
        dst = self._node_of(ep)
        # The controller's own Service: one more KUBE-SERVICES rule, taken to sit in the
        # middle of KUBE-NODEPORTS.
        middle = (int(topo.nodeport_rank.max()) + 2) // 2
        lookup = float(self.costs.nodeport_lookup_seconds(
            topo.rules_in_kube_services + 1, middle, replica))
        return _Connection("external-ingress",
                           Placement(entry_is_proxy=entry == proxy, proxy_is_server=proxy == dst, snat=True),
                           {EXTERNAL_CLIENT: None, "entry": entry, "proxy": proxy, "server": dst},
                           ep, replica, {"nodeport-lookup": lookup})

    def _pick_endpoint(self, node: int, service: int, drawn: int, endpoints: int) -> int:
        """Endpoint index chosen by the node's proxy: IPVS round robin, else the random draw
        (iptables `statistic`, nftables `numgen random`, Cilium's random backend)."""
        if self.scenario.kube_proxy.mode != "ipvs":
            return drawn
        key = (node, service)
        i = self._ipvs_next.get(key, drawn) % endpoints  # each node's rr starts at random
        self._ipvs_next[key] = i + 1
        return i

    # -- one connection -----------------------------------------------------------
    def _connection(self, r0: int, n: int, conn: _Connection):
        env = self.env
        connect, request = self._route_plans(conn)
        where = {role: (None if i is None else self._node(i)) for role, i in conn.nodes.items()}
        stations = self._stations(conn)
        on_path = {i for role, i in conn.nodes.items() if i is not None and role != "dns"}
        self.cross[r0:r0 + n] = len(on_path) > 1
        self.endpoint[r0:r0 + n] = conn.endpoint
        self.start[r0] = env.now
        self.lookup_cpu[r0] = sum(conn.lookup.values())
        c = len(self._ct_open)  # a conntrack entry on every cluster node of the path
        self._ct_nodes.append(tuple(sorted(i for i in on_path if i >= 0)))
        self._ct_open.append(env.now)
        self._ct_close.append(float("nan"))
        yield from self._requests(r0, n, conn, connect, request, where, stations)
        self._ct_close[c] = env.now

    def _requests(self, r0, n, conn, connect, request, where, stations):
        """The connection's set-up, then its requests one after another."""
        env, w = self.env, self.scenario.workload
        if connect:
            dropped = yield from self._walk(connect, where, stations, conn.lookup, r0)
            if dropped:
                self._drop(r0, n, dropped)
                return
        timeout = w.timeout
        for r in range(r0, r0 + n):
            if r > r0:
                self.start[r] = env.now
                if self.programmed is not None and not self.programmed.serving(conn.endpoint, env.now):
                    self._drop(r, r0 + n - r, STALE_ENDPOINT)  # conntrack keeps the dead Pod
                    return
            dropped = yield from self._walk(request, where, stations, {"app": self._app[r]}, r)
            self.end[r] = env.now
            if dropped:
                self.status[r] = dropped
            else:
                self.status[r] = COMPLETED if env.now - self.start[r] <= timeout else TIMEOUT

    def _drop(self, r0: int, n: int, code: int) -> None:
        """A connection refused at set-up, or whose Pod is gone mid-way: its requests
        r0..r0+n-1 fail now."""
        self.start[r0:r0 + n] = np.where(np.isnan(self.start[r0:r0 + n]), self.env.now,
                                         self.start[r0:r0 + n])
        self.end[r0:r0 + n] = self.env.now
        self.status[r0:r0 + n] = code

    def _route_plans(self, conn: _Connection):
        key = (conn.kind, conn.placement)
        plans = self._plans.get(key)
        if plans is None:
            ext = self.scenario.external
            cloud_lb = self._lb_provider == "cloud" and (
                conn.kind == "external-loadbalancer"
                or (conn.kind == "external-ingress" and ext.ingress.service_type == "LoadBalancer"))
            plans = self._plans[key] = self.costs.route_plans(route(
                conn.kind, conn.placement, self.scenario.cluster.cni_datapath,
                tls=ext.ingress.tls, cloud_lb=cloud_lb))
        return plans

    def _stations(self, conn: _Connection) -> dict[str, Station]:
        """The work stations of this connection's route, by `Step.station` name."""
        pod = self._pods.get(conn.endpoint)
        if pod is None:
            pod = self._pods[conn.endpoint] = Station(
                self.env, self.scenario.workload.server.workers, f"pod-{conn.endpoint}")
        stations = {"app": pod, "lb": self._lb, "apiserver": self._apiserver,
                    "port-forward-stream": self._port_forward}
        if conn.kind == "external-ingress":
            stations["ingress"] = self._ingress[conn.proxy]
        elif conn.placement.dns_queries:
            stations["dns"] = self._coredns[conn.proxy]
        elif conn.kind == "kubectl-port-forward":
            server = conn.nodes["server"]
            kubelet = self._kubelets.get(server)
            if kubelet is None:
                kubelet = self._kubelets[server] = Station(self.env, 1, f"node-{server}/kubelet")
            stations["kubelet"] = kubelet
        return stations

    def _walk(self, plan: tuple[Step, ...], where: dict, stations: dict, variable: dict, r: int):
        """Run `plan`; charge softirq CPU to request `r`; return 0, or the drop code of a
        station that refused the request."""
        env = self.env
        queue_limit = self.scenario.workload.server.queue_limit
        inflight_limit = self.scenario.external.kubectl.max_requests_inflight
        in_apiserver = False
        cpu = 0.0
        try:
            for step in plan:
                kind = step.kind
                if kind == "cpu":
                    node = where[step.at]
                    if node is None:  # an external client's own CPU is not the cluster's
                        continue
                    seconds = step.seconds
                    for name in step.variable:
                        seconds += variable.get(name, 0.0)
                    cpu += seconds
                    yield from node.softirq.serve(seconds)
                elif kind == "wire":
                    src, dst = where[step.at], where[step.to]
                    if src is None:  # from outside: only the receiving port queues
                        yield from dst.nic_rx.serve(step.seconds)
                        continue
                    yield from src.nic_tx.acquire()
                    receive = env.process(self._receive(dst, step)) if dst is not None else None
                    yield env.timeout(step.seconds)
                    src.nic_tx.release()
                    if receive is not None:
                        yield receive
                elif kind == "delay":
                    yield env.timeout(step.seconds)
                else:
                    station = stations[step.station]
                    if step.station == "app" and station.waiting >= queue_limit:
                        return SERVER_QUEUE_FULL
                    if step.station == "apiserver" and not in_apiserver:
                        if self._apiserver_inflight >= inflight_limit:
                            return APISERVER_THROTTLED
                        self._apiserver_inflight += 1
                        in_apiserver = True
                    elif step.station == "apiserver":  # the response leaves the API server
                        self._apiserver_inflight -= 1
                        in_apiserver = False
                    seconds = step.seconds
                    for name in step.variable:
                        seconds += variable.get(name, 0.0)
                    yield from station.serve(seconds)
            return 0
        finally:
            self.softirq_cpu[r] += cpu
            if in_apiserver:
                self._apiserver_inflight -= 1

    def _receive(self, dst: _Node, step: Step):
        """The receiving switch port: its first bits arrive one packet and the link
        latency after the sender starts sending; then it is busy for the whole message."""
        yield self.env.timeout(step.first_packet + step.delay)
        yield from dst.nic_rx.serve(step.seconds)

    def _node(self, index: int) -> _Node:
        node = self._nodes.get(index)
        if node is None:
            node = self._nodes[index] = _Node(self.env, index, self.scenario.cluster.softirq_cores)
        return node


def simulate(scenario: Scenario, profile: Profile, replication: int) -> ReplicationResult:
    """Run one replication of one scenario point; with `control_plane.enabled` its churn
    and kube-proxies first, the data plane then routing by what they programmed."""
    engine = Engine(scenario, profile, replication)
    if not scenario.control_plane.enabled:
        return engine.run()
    control, programmed = couple(scenario, profile, engine.topology, replication)
    engine.follow(programmed)
    return dataclasses.replace(engine.run(), control=control)
