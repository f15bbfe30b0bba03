"""The reference engine: connections as SimPy processes walking their plans.

Each connection of a `Replication` (placed on arrival, `netmodel.connections`) starts a
process when it arrives: its set-up plan once, then per request (keep-alive) the request
plan. Every CPU step queues for its node's softirq cores, every message on the node network
for the sender's NIC and the receiver's switch port, every work step for its station's
servers (the endpoint Pod's workers, a load balancer, an Ingress controller, CoreDNS, the
API server, a kubelet).

Nodes and Pods get stations lazily when traffic first touches them, so a cluster of 5,000
nodes and 100,000 endpoints costs only what the sampled requests touch.
"""

from __future__ import annotations

import simpy

from netmodel.connections.conntrack import ConntrackTables
from netmodel.connections.records import Records
from netmodel.connections.replication import Replication
from netmodel.costs.model import LOOKUPS, Step
from netmodel.stations import Station
from netmodel.vocabulary import (
    APISERVER_THROTTLED,
    COMPLETED,
    PACKET_DROPS,
    RETRIES_EXHAUSTED,
    SERVER_QUEUE_FULL,
    STALE_ENDPOINT,
    TIMEOUT,
)

BACKLOG_FULL, RING_FULL, CONNTRACK_FULL = range(len(PACKET_DROPS))
"""Columns of Records.packet_drops (PACKET_DROPS' order)."""
SYN_RTO = 1.0
"""TCP's initial retransmission timeout, s (RFC 6298, Linux TCP_TIMEOUT_INIT): a dropped
set-up packet is sent again after 1 s, then 2 s, 4 s, ..."""


class SimPyEngine:
    """Walks a replication as SimPy processes: the reference every other engine matches."""

    name = "simpy"

    def unsupported(self, scenario) -> str | None:
        """None: the reference engine runs everything."""
        return None

    def run(self, replication: Replication) -> Records:
        return _Run(replication).run()


class _Node:
    __slots__ = ("softirq", "nic_tx", "nic_rx")

    def __init__(self, env: simpy.Environment, index: int, cores: int):
        self.softirq = Station(env, cores, f"node-{index}/softirq")
        self.nic_tx = Station(env, 1, f"node-{index}/nic-tx")
        self.nic_rx = Station(env, 1, f"node-{index}/nic-rx")


class _Run:
    """One replication in one SimPy environment."""

    def __init__(self, rep: Replication):
        self.rep = rep
        self.env = env = simpy.Environment()
        sc = rep.scenario
        self.rec = rep.recorder()
        self._nodes: dict[int, _Node] = {}
        self._pods: dict[int, Station] = {}
        self._kubelets: dict[int, Station] = {}
        ext = sc.external
        self._lb = Station(env, ext.load_balancer.instances, "cloud-lb")
        self._ingress = [Station(env, ext.ingress.workers, f"ingress-{r}")
                         for r in range(ext.ingress.replicas)]
        self._apiserver = Station(env, ext.kubectl.apiserver_cores, "apiserver")
        self._port_forward = Station(env, 1, "port-forward-stream")
        self._apiserver_inflight = 0
        self._coredns = [Station(env, sc.dns.coredns_cores, f"coredns-{r}")
                         for r in range(sc.dns.coredns_replicas)]
        self._first = rep.demand.first.tolist()
        self._requests_of = rep.demand.requests.tolist()
        cluster = sc.cluster
        self._backlog = cluster.netdev_max_backlog * cluster.softirq_cores
        self._tables = ConntrackTables(rep.conntrack_prefill, rep.conntrack)

    def run(self) -> Records:
        self.env.process(self._arrivals())
        self.env.run(until=self.rep.stop)
        return self.rep.finish(self.rec)

    def _arrivals(self):
        env, conns = self.env, self.rep.connections
        dropped = conns.drop.tolist()
        for c, t in enumerate(self.rep.demand.arrival.tolist()):
            yield env.timeout(max(t - env.now, 0.0))  # an arrival the clock rounded past: now
            if not dropped[c]:  # else no packet moved: recorded on arrival
                env.process(self._connection(c))

    # -- one connection -----------------------------------------------------------
    def _connection(self, c: int):
        rep, conns = self.rep, self.rep.connections
        route = int(conns.route[c])
        kind = conns.routes[route][0]
        connect, request = rep.plans[route]
        nodes = conns.nodes(c)
        where = {role: (None if i is None else self._node(i)) for role, i in nodes.items()}
        stations = self._stations(kind, c, nodes)
        r0, n = self._first[c], self._requests_of[c]
        lookup = dict(zip(LOOKUPS, conns.lookup[c].tolist())) if connect else {}
        tracked = sorted(i for i in conns.on_path(c) if i >= 0) if connect else []  # cluster nodes
        if tracked:  # a new connection needs an entry in each node's conntrack table
            dropped = yield from self._conntrack_insert(tracked, r0)
            if dropped:
                self.rec.drop(r0, n, dropped, self.env.now)
                return
        yield from self._requests(r0, n, int(conns.endpoint[c]), connect, request, where,
                                  stations, lookup)
        self._tables.close(tracked, self.env.now)

    def _conntrack_insert(self, nodes: list[int], r0: int):
        """SimPy generator: the SYN gets an entry in every node's table on its path, or is
        dropped where one is full and sent again after 1 s, 2 s, ... (tcp_syn_retries); a
        full LRU map (BPF conntrack) evicts its oldest entry instead."""
        tables, attempt = self._tables, 0
        while (full := tables.full(nodes, self.env.now)) and not tables.lru:
            self.rec.packet_drops[r0, CONNTRACK_FULL] += 1
            if attempt >= self.rep.scenario.cluster.tcp_syn_retries:
                return RETRIES_EXHAUSTED
            yield self.env.timeout(SYN_RTO * 2.0**attempt)
            attempt += 1
        for node in full:  # an LRU map evicts its oldest entry instead
            tables.evict(node, self.env.now)
        self.rec.ct_evictions[r0] += len(full)
        tables.insert(nodes)
        return 0

    def _requests(self, r0, n, endpoint, connect, request, where, stations, lookup):
        """The connection's set-up, then its requests one after another."""
        env, rec, rep = self.env, self.rec, self.rep
        if connect:
            dropped = yield from self._walk(connect, where, stations, lookup, r0, True)
            if dropped:
                rec.drop(r0, n, dropped, env.now)
                return
            rec.connected[r0] = env.now
        timeout = rep.scenario.workload.timeout
        app = rep.demand.app
        for r in range(r0, r0 + n):
            if r > r0:
                rec.start[r] = env.now
                if not rep.serving(endpoint, env.now):
                    rec.drop(r, r0 + n - r, STALE_ENDPOINT, env.now)  # conntrack keeps the dead Pod
                    return
            dropped = yield from self._walk(request, where, stations, {"app": app[r]}, r, False)
            rec.end[r] = env.now
            if dropped:
                rec.status[r] = dropped
            else:
                rec.status[r] = COMPLETED if env.now - rec.start[r] <= timeout else TIMEOUT

    def _stations(self, kind: str, c: int, nodes: dict) -> dict[str, Station]:
        """The work stations of this connection's route, by `Step.station` name."""
        conns = self.rep.connections
        endpoint, replica = int(conns.endpoint[c]), int(conns.replica[c])
        pod = self._pods.get(endpoint)
        if pod is None:
            pod = self._pods[endpoint] = Station(
                self.env, self.rep.scenario.workload.server.workers, f"pod-{endpoint}")
        stations = {"app": pod, "lb": self._lb, "apiserver": self._apiserver,
                    "port-forward-stream": self._port_forward}
        if kind == "external-ingress":
            stations["ingress"] = self._ingress[replica]
        elif "dns" in nodes:
            stations["dns"] = self._coredns[replica]
        elif kind == "kubectl-port-forward":
            server = nodes["server"]
            kubelet = self._kubelets.get(server)
            if kubelet is None:
                kubelet = self._kubelets[server] = Station(self.env, 1, f"node-{server}/kubelet")
            stations["kubelet"] = kubelet
        return stations

    def _walk(self, plan: tuple[Step, ...], where: dict, stations: dict, variable: dict, r: int,
              setup: bool):
        """Run `plan` (`setup`: a connection's set-up); charge its softirq CPU to request `r`
        when it ends; return 0, or the drop code of a station that refused the request (or
        of TCP giving up on a packet dropped again and again). A walk still going when the
        run stops charges nothing (its request is in flight)."""
        env = self.env
        in_apiserver = False
        cpu = 0.0
        for step in plan:
            kind = step.kind
            if kind == "cpu":
                node = where[step.at]
                if node is None:  # an external client's own CPU is not the cluster's
                    continue
                seconds = _seconds(step, variable)
                if not node.softirq.free and node.softirq.waiting >= self._backlog:
                    gave_up = yield from self._admitted(node.softirq, self._backlog, BACKLOG_FULL,
                                                        r, setup)
                    if gave_up:
                        return self._ended(r, cpu, in_apiserver, gave_up)
                cpu += seconds
                yield from node.softirq.serve(seconds)
            elif kind == "wire":
                gave_up = yield from self._wire(step, where, r, setup)
                if gave_up:
                    return self._ended(r, cpu, in_apiserver, gave_up)
            elif kind == "delay":
                yield env.timeout(step.seconds)
            else:
                station = stations[step.station]
                refused, in_apiserver = self._admit(step.station, station, in_apiserver)
                if refused:
                    return self._ended(r, cpu, in_apiserver, refused)
                yield from station.serve(_seconds(step, variable))
        return self._ended(r, cpu, False, 0)

    def _ended(self, r: int, cpu: float, in_apiserver: bool, code: int) -> int:
        """A walk ends (code: 0, or why it failed): its CPU is charged to request r, an API
        server slot it holds is given back."""
        self.rec.softirq_cpu[r] += cpu
        if in_apiserver:  # refused behind the API server
            self._apiserver_inflight -= 1
        return code

    def _wire(self, step: Step, where: dict, r: int, setup: bool):
        """A message over a link: the sender's NIC serialises it while the receiver's switch
        port, one packet and the link latency behind, takes it in (from outside: only the
        receiving port queues; to outside: only the sender's). A receive ring that is full
        drops it: it is sent again after the retransmission timeout. Returns 0, or
        RETRIES_EXHAUSTED."""
        src, dst = where[step.at], where[step.to]
        ring = self.rep.scenario.cluster.nic_rx_ring
        if src is None:
            gave_up = yield from self._admitted(dst.nic_rx, ring, RING_FULL, r, setup)
            if not gave_up:
                yield from dst.nic_rx.serve(step.seconds)
            return gave_up
        attempt = 0
        while True:
            yield from src.nic_tx.acquire()
            receive = self.env.process(self._receive(dst, step, ring)) if dst is not None else None
            yield self.env.timeout(step.seconds)
            src.nic_tx.release()
            if receive is None or not (yield receive):
                return 0
            self.rec.packet_drops[r, RING_FULL] += 1
            if attempt >= self._retries(setup):
                return RETRIES_EXHAUSTED
            yield self.env.timeout(self._rto(setup) * 2.0**attempt)
            attempt += 1

    def _admitted(self, station: Station, limit: int, where: int, r: int, setup: bool):
        """SimPy generator: 0 once `station` takes the message; while every server is busy
        and `limit` wait, it is dropped and sent again after the retransmission timeout
        (RETRIES_EXHAUSTED when TCP gives up)."""
        attempt = 0
        while not station.free and station.waiting >= limit:
            self.rec.packet_drops[r, where] += 1
            if attempt >= self._retries(setup):
                return RETRIES_EXHAUSTED
            yield self.env.timeout(self._rto(setup) * 2.0**attempt)
            attempt += 1
        return 0

    def _retries(self, setup: bool) -> int:
        cluster = self.rep.scenario.cluster
        return cluster.tcp_syn_retries if setup else cluster.tcp_retries2

    def _rto(self, setup: bool) -> float:
        """The first retransmission timeout: 1 s before the handshake gave an RTT, else
        tcp_rto_min (the RTTs here are far below it)."""
        return SYN_RTO if setup else self.rep.scenario.cluster.tcp_rto_min

    def _admit(self, name: str, station: Station, in_apiserver: bool) -> tuple[int, bool]:
        """Whether work station `name` takes the request: an endpoint Pod refuses it when
        every worker is busy and `queue_limit` requests already wait (0: a loss system), the
        API server beyond --max-requests-inflight. Returns (0 or the drop code, whether the
        request now holds an API-server slot)."""
        if name == "app":
            full = not station.free and station.waiting >= self.rep.scenario.workload.server.queue_limit
            return (SERVER_QUEUE_FULL if full else 0), in_apiserver
        if name != "apiserver":
            return 0, in_apiserver
        if in_apiserver:  # the response leaves the API server
            self._apiserver_inflight -= 1
            return 0, False
        if self._apiserver_inflight >= self.rep.scenario.external.kubectl.max_requests_inflight:
            return APISERVER_THROTTLED, False
        self._apiserver_inflight += 1
        return 0, True

    def _receive(self, dst: _Node, step: Step, ring: int):
        """The receiving switch port: its first bits arrive one packet and the link
        latency after the sender starts sending; then it is busy for the whole message.
        True when the port's receive ring was full and dropped it."""
        yield self.env.timeout(step.first_packet + step.delay)
        if not dst.nic_rx.free and dst.nic_rx.waiting >= ring:
            return True
        yield from dst.nic_rx.serve(step.seconds)
        return False

    def _node(self, index: int) -> _Node:
        node = self._nodes.get(index)
        if node is None:
            node = self._nodes[index] = _Node(self.env, index, self.rep.scenario.cluster.softirq_cores)
        return node


def _seconds(step: Step, variable: dict) -> float:
    """A step's time: its fixed part plus its per-connection parts (rule walks, app time)."""
    seconds = step.seconds
    for name in step.variable:
        seconds += variable.get(name, 0.0)
    return seconds
