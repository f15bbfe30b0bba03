"""The reference engine: in-cluster requests as SimPy processes.

A *connection* arrives (Poisson or constant), carries `requests_per_connection`
requests one after another (keep-alive), and each request is: connection set-up if
it is the connection's first (client CPU with the Service proxy's rule lookup, SYN,
server accept, SYN-ACK), request bytes, the server Pod's app time, response bytes.
Every CPU step queues for its node's softirq cores, every cross-node message for the
sender's NIC and the receiver's switch port, every app step for the Pod's workers.

Nodes and Pods are created lazily when traffic first touches them, so a cluster of
5,000 nodes and 100,000 endpoints costs only what the sampled requests touch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from netmodel.cluster.topology import Topology, build_topology
from netmodel.costs.model import CostModel, Step
from netmodel.costs.profile import Profile
from netmodel.paths import TRAFFIC_KINDS
from netmodel.scenario.schema import Scenario
from netmodel.sim.random import streams
from netmodel.sim.stations import Station

IN_FLIGHT, COMPLETED = 0, 1
DROP_REASONS = ("no-endpoints", "server-queue-full", "timeout")
"""Why a request was dropped; status code = 2 + position."""
NO_ENDPOINTS, SERVER_QUEUE_FULL, TIMEOUT = 2, 3, 4

_SAME_NODE, _CROSS_NODE, _CLUSTER_IP = (TRAFFIC_KINDS.index(k) for k in
                                        ("pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"))


@dataclass(frozen=True)
class ReplicationResult:
    """Per-request records of one replication (arrays indexed by request id).

    `status` is IN_FLIGHT, COMPLETED or a drop code; `start`/`end` in seconds (NaN
    when not reached); `lookup_cpu`/`softirq_cpu` in CPU seconds charged to the
    request (a connection's set-up to its first request); `cross_node` says whether
    client and server Pods were on different nodes. `kind` indexes TRAFFIC_KINDS.
    """

    kind: np.ndarray
    status: np.ndarray
    start: np.ndarray
    end: np.ndarray
    lookup_cpu: np.ndarray
    softirq_cpu: np.ndarray
    cross_node: np.ndarray
    warmup: float
    last_arrival: float
    stopped_at: float


class _Node:
    __slots__ = ("softirq", "nic_tx", "nic_rx")

    def __init__(self, env: simpy.Environment, index: int, cores: int):
        self.softirq = Station(env, cores, f"node-{index}/softirq")
        self.nic_tx = Station(env, 1, f"node-{index}/nic-tx")
        self.nic_rx = Station(env, 1, f"node-{index}/nic-rx")


class Engine:
    """One replication of one scenario point."""

    def __init__(self, scenario: Scenario, profile: Profile, replication: int):
        self.scenario = scenario
        self.env = simpy.Environment()
        self.costs = CostModel(profile, scenario)
        self.rng = streams(scenario.run.seed, replication)
        self.topology: Topology = build_topology(scenario, self.rng["placement"],
                                                 self.rng["rule-order"])
        self._nodes: dict[int, _Node] = {}
        self._pods: dict[tuple[int, int], Station] = {}
        self._ipvs_next: dict[tuple[int, int], int] = {}
        w = scenario.workload
        self._plans = {
            (same, what): plan
            for same in (True, False)
            for what, plan in (
                ("connect-cluster-ip", self.costs.connect_plan(same, via_cluster_ip=True)),
                ("connect-pod", self.costs.connect_plan(same, via_cluster_ip=False)),
                ("syn-ack", self.costs.message_plan(0.0, same)),
                ("request", self.costs.message_plan(w.request_size, same)),
                ("response", self.costs.message_plan(w.response_size, same)),
            )
        }

    # -- workload -----------------------------------------------------------------
    def _connection_arrivals(self) -> np.ndarray:
        """Arrival times of connections, seconds."""
        run, w = self.scenario.run, self.scenario.workload
        k = w.requests_per_connection
        mean_gap = k / w.rate
        how, amount = run.length
        if how == "requests":
            n = int(-(-int(amount) // k))
            gaps = self._gaps(n, mean_gap)
            return np.cumsum(gaps)
        times = np.cumsum(self._gaps(int(amount / mean_gap * 1.2) + 16, mean_gap))
        while times[-1] < amount:
            more = times[-1] + np.cumsum(self._gaps(len(times), mean_gap))
            times = np.concatenate([times, more])
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

        # Draws per connection, from their own streams (common random numbers).
        mix = np.array([w.mix.get(kind, 0.0) for kind in TRAFFIC_KINDS])
        kind = np.searchsorted(np.cumsum(mix) / mix.sum(), rng["traffic-kind"].random(n_conn),
                               side="right").clip(max=len(mix) - 1)
        client_u = rng["client-node"].random(n_conn)
        service = topo.pick_services(rng["service"].random(n_conn))
        endpoint = (rng["endpoint"].random(n_conn) * max(topo.endpoints_per_service, 1)).astype(np.int64)
        lookup = self.costs.rule_lookup_seconds(topo.kube_services_rank[service], endpoint)
        app_mean = w.server.service_time
        if w.server.service_time_distribution == "exponential":
            app = rng["service-time"].standard_exponential(n_req) * app_mean
        else:
            app = np.full(n_req, app_mean)

        self.kind = np.repeat(kind, per_conn).astype(np.int8)
        self.status = np.zeros(n_req, dtype=np.int8)
        self.start = np.full(n_req, np.nan)
        self.end = np.full(n_req, np.nan)
        self.lookup_cpu = np.zeros(n_req)
        self.softirq_cpu = np.zeros(n_req)
        self.cross = np.zeros(n_req, dtype=bool)
        self._app = app

        self.env.process(self._arrivals(arrivals, kind, client_u, service, endpoint, lookup,
                                        first, per_conn))
        drain = sc.run.drain if sc.run.drain is not None else w.timeout
        stop = float(arrivals[-1]) + drain
        self.env.run(until=stop)
        started = ~np.isnan(self.start)
        late = (self.status == IN_FLIGHT) & started & (stop - self.start > w.timeout)
        self.status[late] = TIMEOUT
        return ReplicationResult(self.kind, self.status, self.start, self.end, self.lookup_cpu,
                                 self.softirq_cpu, self.cross, sc.run.warmup,
                                 float(arrivals[-1]), stop)

    def _arrivals(self, times, kind, client_u, service, endpoint, lookup, first, per_conn):
        env, topo = self.env, self.topology
        nodes = topo.nodes
        for c in range(len(times)):
            yield env.timeout(times[c] - env.now)
            s, kd = int(service[c]), int(kind[c])
            r0, n = int(first[c]), int(per_conn[c])
            if kd == _CLUSTER_IP:
                if topo.endpoints_per_service == 0:
                    self.start[r0:r0 + n] = env.now
                    self.end[r0:r0 + n] = env.now
                    self.status[r0:r0 + n] = NO_ENDPOINTS
                    continue
                src = int(client_u[c] * nodes)
                ep = self._pick_endpoint(src, s, int(endpoint[c]))
                dst = int(topo.endpoint_node[s, ep])
                cost = float(lookup[c])  # IPVS's round robin does not change its flat cost
            else:
                ep = int(endpoint[c])
                dst = int(topo.endpoint_node[s, ep])
                if kd == _SAME_NODE:
                    src = dst
                else:  # any other node, uniformly
                    src = (dst + 1 + int(client_u[c] * (nodes - 1))) % nodes
                cost = 0.0
            env.process(self._connection(r0, n, src, dst, (s, ep), kd == _CLUSTER_IP, cost))

    def _pick_endpoint(self, node: int, service: int, drawn: int) -> int:
        """Endpoint index chosen by the node's proxy: IPVS round robin, else the random draw
        (iptables `statistic`, nftables `numgen random`, Cilium's random backend)."""
        if self.scenario.kube_proxy.mode != "ipvs":
            return drawn
        key = (node, service)
        i = self._ipvs_next.get(key, drawn)  # each node's rr starts at a random position
        self._ipvs_next[key] = (i + 1) % self.topology.endpoints_per_service
        return i

    # -- one connection -----------------------------------------------------------
    def _connection(self, r0, n, src, dst, pod_key, via_cluster_ip, lookup):
        env, w = self.env, self.scenario.workload
        same = src == dst
        client, server = self._node(src), self._node(dst)
        pod = self._pods.get(pod_key)
        if pod is None:
            pod = self._pods[pod_key] = Station(env, w.server.workers, f"pod-{pod_key}")
        self.cross[r0:r0 + n] = not same
        self.start[r0] = env.now
        self.lookup_cpu[r0] = lookup
        setup = self._plans[(same, "connect-cluster-ip" if via_cluster_ip else "connect-pod")]
        self.softirq_cpu[r0] += yield from self._walk(setup, client, server, extra_cpu=lookup)
        self.softirq_cpu[r0] += yield from self._walk(self._plans[(same, "syn-ack")], server, client)
        request, response = self._plans[(same, "request")], self._plans[(same, "response")]
        queue_limit, timeout = w.server.queue_limit, w.timeout
        for r in range(r0, r0 + n):
            if r > r0:
                self.start[r] = env.now
            self.softirq_cpu[r] += yield from self._walk(request, client, server)
            if pod.waiting >= queue_limit:
                self.status[r] = SERVER_QUEUE_FULL
                self.end[r] = env.now
                continue
            yield from pod.serve(self._app[r])
            self.softirq_cpu[r] += yield from self._walk(response, server, client)
            self.end[r] = env.now
            self.status[r] = COMPLETED if env.now - self.start[r] <= timeout else TIMEOUT

    def _walk(self, plan: tuple[Step, ...], src: _Node, dst: _Node, extra_cpu: float = 0.0):
        """Run the steps of `plan` from `src` to `dst`; return the softirq CPU seconds used.
        `extra_cpu` is added to the first CPU step (a connection's rule lookup)."""
        env = self.env
        cpu = 0.0
        for step in plan:
            if step.kind == "cpu":
                seconds = step.seconds + extra_cpu
                extra_cpu = 0.0
                cpu += seconds
                yield from (src if step.side == "src" else dst).softirq.serve(seconds)
            elif step.kind == "wire":
                yield from src.nic_tx.acquire()
                receive = env.process(self._receive(dst, step))
                yield env.timeout(step.seconds)
                src.nic_tx.release()
                yield receive
            else:
                yield env.timeout(step.seconds)
        return cpu

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
    """Run one replication of one scenario point."""
    return Engine(scenario, profile, replication).run()
