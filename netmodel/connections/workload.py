"""What the clients do in one replication, drawn before any engine runs.

Connections arrive (Poisson or constant) and carry `requests_per_connection` requests
each (keep-alive); each has a traffic kind from the mix, a Service by popularity, and
uniform draws that decide where it goes (`placement.py`); each request has an app time.
Every draw comes from its own stream (`netmodel.streams`), so points that differ only in
configuration see the same clients (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netmodel.cluster.topology import Topology
from netmodel.scenario.schema import Scenario
from netmodel.vocabulary import TRAFFIC_KINDS

PLACEMENT_DRAWS = ("client-node", "service", "endpoint", "entry-node", "proxy")
"""Per-connection uniform draws in [0, 1), each from the stream of that name."""


@dataclass(frozen=True)
class Demand:
    """The connections of one replication and their requests (times in seconds).

    Connection c carries requests `first[c]` .. `first[c] + requests[c] - 1`.
    """

    arrival: np.ndarray
    """When each connection arrives, as drawn."""
    first: np.ndarray
    requests: np.ndarray
    kind: np.ndarray
    """Index into TRAFFIC_KINDS per connection."""
    service: np.ndarray
    """Service index per connection."""
    draws: dict[str, np.ndarray]
    """PLACEMENT_DRAWS name -> one uniform per connection (empty once placement spent them)."""
    app: np.ndarray
    """App seconds of each request at its endpoint Pod."""

    @property
    def connections(self) -> int:
        return len(self.arrival)

    @property
    def clock(self) -> np.ndarray:
        """The arrivals as a discrete-event clock reaches them, one timeout after another
        (now + (arrival - now)): what an engine's `now` reads at each arrival, to the last
        bit. Made on each read (8 B a connection): read it once."""
        return _clock(self.arrival)

    @property
    def total_requests(self) -> int:
        return len(self.app)

    @property
    def last_arrival(self) -> float:
        """When the last connection arrives (0 without any)."""
        return float(self.arrival[-1]) if self.connections else 0.0


def draw_demand(scenario: Scenario, topology: Topology,
                rng: dict[str, np.random.Generator]) -> Demand:
    """The replication's connections, kinds, Services, placement draws and app times."""
    arrival = _arrivals(scenario, rng["arrivals"])
    requests = _requests_per_connection(scenario, len(arrival))
    first = np.concatenate([[0], np.cumsum(requests)[:-1]]).astype(np.int32)
    kind = _kinds(scenario, rng["traffic-kind"], len(arrival))
    draws = {name: rng[name].random(len(arrival)) for name in PLACEMENT_DRAWS}
    service = np.empty(len(arrival), dtype=np.int32)
    for i, name in enumerate(TRAFFIC_KINDS):
        mine = kind == i
        if mine.any():
            service[mine] = topology.pick_services(draws["service"][mine], callable_by(topology, name))
    return Demand(arrival, first, requests, kind, service, draws,
                  _app_times(scenario, rng["service-time"], int(requests.sum())))


def callable_by(topology: Topology, kind: str) -> np.ndarray | None:
    """Services a kind may call (None: all): NodePort needs a node port, LoadBalancer its type."""
    if kind == "external-nodeport":
        return topology.node_port
    if kind == "external-loadbalancer":
        return topology.load_balancer
    return None


def _arrivals(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of connections, seconds."""
    run, w = scenario.run, scenario.workload
    k = w.requests_per_connection
    mean_gap = k / w.rate
    how, amount = run.length
    if how == "requests":
        return np.cumsum(_gaps(scenario, rng, int(-(-int(amount) // k)), mean_gap))
    times = np.cumsum(_gaps(scenario, rng, int(amount / mean_gap * 1.2) + 16, mean_gap))
    while times[-1] < amount:
        times = np.concatenate([times, times[-1] + np.cumsum(_gaps(scenario, rng, len(times), mean_gap))])
    return times[times < amount]


def _gaps(scenario: Scenario, rng: np.random.Generator, n: int, mean_gap: float) -> np.ndarray:
    if scenario.workload.arrival == "constant":
        return np.full(n, mean_gap)
    return rng.standard_exponential(n) * mean_gap


def _requests_per_connection(scenario: Scenario, connections: int) -> np.ndarray:
    """Keep-alive requests of each connection; a request-count run cuts the last one short."""
    k = scenario.workload.requests_per_connection
    per_conn = np.full(connections, k, dtype=np.int32)
    how, amount = scenario.run.length
    if how == "requests" and connections:
        per_conn[-1] = int(amount) - k * (connections - 1)
    return per_conn


def _kinds(scenario: Scenario, rng: np.random.Generator, connections: int) -> np.ndarray:
    """Traffic kind per connection, by the mix's weights."""
    mix = np.array([scenario.workload.mix.get(kind, 0.0) for kind in TRAFFIC_KINDS])
    return np.searchsorted(np.cumsum(mix) / mix.sum(), rng.random(connections),
                           side="right").clip(max=len(mix) - 1).astype(np.int8)


def _app_times(scenario: Scenario, rng: np.random.Generator, requests: int) -> np.ndarray:
    """App seconds per request: exponential, constant, lognormal (mean and p99), or drawn
    from measured samples."""
    server = scenario.workload.server
    kind = server.service_time_distribution
    if kind == "exponential":
        return rng.standard_exponential(requests) * server.service_time
    if kind == "lognormal":
        mu, sigma = server.lognormal()
        return np.exp(mu + sigma * rng.standard_normal(requests))
    if kind == "empirical":
        samples = np.asarray(server.service_time_samples, dtype=np.float64)
        return samples[(rng.random(requests) * samples.size).astype(np.int64)]
    return np.full(requests, server.service_time)


def _clock(arrival: np.ndarray) -> np.ndarray:
    """Each arrival as a clock that advances by `arrival[c] - now` (never back: an arrival
    rounding put behind the clock comes at once) reads it: clock[c] = clock[c-1] +
    max(arrival[c] - clock[c-1], 0), which is arrival[c] but now and then. Solved as a
    fixed point in whole-array passes: each pass settles the next arrival of every run
    that rounding moved, and the runs are short."""
    clock, before = arrival.copy(), np.zeros_like(arrival)
    while True:
        before[1:] = clock[:-1]
        settled = np.subtract(arrival, before)
        np.maximum(settled, 0.0, out=settled)
        settled += before
        if np.array_equal(settled, clock):
            return clock
        clock = settled
