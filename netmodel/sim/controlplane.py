"""The kube-proxy sync loop as SimPy processes: how long an endpoint change takes to reach
the rules of every node (issue 4, docs/control-plane.md "The sync loop (SimPy)").

The picture: a Pod is replaced somewhere in the cluster. Its new address is written through
the API server to etcd (Pod status), the EndpointSlice controller writes the changed
EndpointSlice (a second write), and the API server sends the slice to every node's
kube-proxy over its watch, one watcher after another through one egress (a `Station`). On
each node kube-proxy's sync loop picks the change up at its next sync: at most one sync per
`min_sync_period` after a burst of `burst_syncs` (a token bucket, as kube-proxy's
BoundedFrequencyRunner), a periodic sync every `sync_period` when nothing happens, and
nothing new while a sync runs. A sync lasts as long as `netmodel.costs.sync` says for the
rules it writes (`netmodel.cluster.rules`): a full or partial iptables restore, an
incremental nftables transaction, IPVS operations or eBPF map updates.

Only `sampled_nodes` kube-proxies are simulated (default min(nodes, 50)); the watch fan-out
still costs all `nodes` watchers, and each sampled node's place in a change's send order is
drawn at random among all of them (the API server walks its watchers in Go-map order).

Randomness: `netmodel.sim.random.streams` with this module's own `CONTROLPLANE_PURPOSES`
and the spawn-key domain `CONTROLPLANE_SPAWN_KEY`: keys `(CONTROLPLANE_SPAWN_KEY,
replication, i)` can never equal the data plane's `(replication, i)`, so neither model's
draws change the other's. Purposes are append-only, as there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from netmodel.cluster.rules import (ebpf_map_updates, iptables_restore_lines,
                                    iptables_total_rules, ipvs_operations,
                                    nftables_elements_changed)
from netmodel.costs.profile import Profile
from netmodel.costs.sync import (ebpf_sync_seconds, iptables_sync_seconds,
                                 ipvs_sync_seconds, nftables_sync_seconds)
from netmodel.errors import NetmodelError
from netmodel.sim.random import streams

if TYPE_CHECKING:
    from netmodel.scenario.schema import Scenario
from netmodel.sim.stations import Station

MODES = ("iptables", "ipvs", "nftables", "ebpf")

CONTROLPLANE_SPAWN_KEY = 0x6B70  # "kp"
"""First element of this module's SeedSequence spawn keys (see the module docstring)."""

CONTROLPLANE_PURPOSES = ("change-arrivals", "changed-service", "watch-order")
"""Stream names; their position is part of the seed, so only ever append."""

SYNC_PROXY_RULES_BUCKETS: tuple[float, ...] = tuple(0.001 * 2 ** i for i in range(15))
"""kube-proxy's `sync_proxy_rules_duration_seconds` buckets: exponential from 1 ms, factor 2,
15 buckets (pkg/proxy/metrics/metrics.go; reference-figures.md)."""

NETWORK_PROGRAMMING_BUCKETS: tuple[float, ...] = (
    (0.25, 0.5) + tuple(float(s) for s in range(1, 60)) + tuple(float(s) for s in range(60, 120, 5))
    + tuple(float(s) for s in range(120, 301, 30)))
"""kube-proxy's `network_programming_duration_seconds` buckets: 0.25, 0.5, 1..59 by 1,
60..115 by 5, 120..300 by 30 (pkg/proxy/metrics/metrics.go; reference-figures.md)."""


@dataclass(frozen=True)
class ControlPlaneConfig:
    """One control-plane run: the cluster's shape, kube-proxy's settings, the churn and the
    API server's costs. Times in seconds, sizes in bytes, bandwidth in bytes per second."""

    nodes: int = 100
    """Nodes, each running one kube-proxy that watches EndpointSlices."""
    services: int = 1_000
    """Service ports with endpoints (S); ClusterIP, one port each."""
    endpoints_per_service: int = 10
    """Endpoints per Service (E), the same for all."""
    mode: str = "iptables"
    """kube-proxy mode: 'iptables', 'ipvs', 'nftables' or 'ebpf' (Cilium's socket LB)."""
    min_sync_period: float = 1.0
    """kube-proxy --iptables-min-sync-period: at most one sync per this (after a burst)."""
    burst_syncs: int = 2
    """kube-proxy burstSyncs (reference-figures.md, "Control-plane defaults"): token bucket size."""
    sync_period: float = 30.0
    """kube-proxy --iptables-sync-period: a sync this long after the last one ends."""
    minimize_iptables_restore: bool = True
    """iptables only: KEP-3453 partial restores (GA 1.28). False: every sync a full restore."""
    full_resync_period: float = 3600.0
    """iptables (partial mode) and nftables: a sync is full at start-up and when this long has
    passed since the last full one (KEP-3453, "about hourly")."""
    churn_rate: float = 1.0
    """Endpoint changes per second, Poisson; each replaces one endpoint of one Service."""
    duration: float = 300.0
    """Changes arrive in [0, duration); the run goes on until each is programmed everywhere."""
    seed: int = 1
    replication: int = 0
    change_times: tuple[float, ...] | None = None
    """Explicit change times (seconds, sorted) instead of Poisson arrivals."""
    sampled_nodes: int | None = None
    """kube-proxies simulated; None: min(nodes, 50). The fan-out always pays for `nodes`."""
    apiserver_write_latency: float = 0.025
    """One mutating API call, dominated by the etcd commit. assumed: etcd backend_commit p99
    < 25 ms (etcd FAQ v3.5, reference-figures.md "Control-plane defaults and SLOs"), taken as a
    fixed latency. An endpoint change pays two: the Pod status write and the EndpointSlice write."""
    endpointslice_batch_period: float = 0.0
    """--endpointslice-updates-batch-period: default 0, every change triggers an update
    (reference-figures.md "Control-plane defaults and SLOs"); here a fixed extra delay."""
    watch_send_per_watcher: float = 2e-6
    """API server CPU to hand one (already serialized, cached) watch event to one watcher.
    assumed: a channel send and an HTTP/2 frame write, a few microseconds; no measurement found."""
    watch_event_bytes: int = 4_000
    """Bytes of one EndpointSlice watch event. assumed: ~300 B per endpoint (address,
    conditions, nodeName, zone, targetRef) for E = 10 plus ~1 KB of metadata, protobuf."""
    apiserver_egress_bandwidth: float = 1.25e9
    """API server egress in bytes per second. assumed: one 10 Gb/s NIC, watch traffic only."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise NetmodelError(f"unknown mode {self.mode!r} (known: {', '.join(MODES)})",
                                field="mode")
        for name in ("nodes", "services", "endpoints_per_service", "burst_syncs"):
            if getattr(self, name) < 1:
                raise NetmodelError("must be at least 1", field=name)
        for name in ("min_sync_period", "churn_rate", "duration", "apiserver_write_latency",
                     "endpointslice_batch_period", "watch_send_per_watcher"):
            if getattr(self, name) < 0:
                raise NetmodelError("must not be negative", field=name)
        for name in ("sync_period", "full_resync_period", "apiserver_egress_bandwidth"):
            if getattr(self, name) <= 0:
                raise NetmodelError("must be positive", field=name)
        if self.sampled_nodes is not None and not 1 <= self.sampled_nodes <= self.nodes:
            raise NetmodelError("must be between 1 and nodes", field="sampled_nodes")

    @property
    def simulated_nodes(self) -> int:
        """kube-proxies actually simulated."""
        return self.sampled_nodes if self.sampled_nodes is not None else min(self.nodes, 50)

    @property
    def watch_send_seconds(self) -> float:
        """Seconds the API server egress spends on one watcher per change."""
        return self.watch_send_per_watcher + self.watch_event_bytes / self.apiserver_egress_bandwidth


@dataclass
class ControlPlaneResult:
    """Per (change, sampled node) and per sync records of one run; times in seconds."""

    config: ControlPlaneConfig
    change_times: np.ndarray
    """When each endpoint change happened (the Pod replaced)."""
    changed_services: np.ndarray
    """Index of the Service each change touched."""
    fanout_delays: np.ndarray
    """(changes, sampled nodes): change -> the change reaches that node's kube-proxy."""
    programming: np.ndarray
    """(changes, sampled nodes): network_programming_duration, change -> end of the first
    sync on that node that includes it."""
    sync_node: np.ndarray
    sync_start: np.ndarray
    sync_durations: np.ndarray
    """sync_proxy_rules_duration of every sync that ran, in start order per node."""
    sync_full: np.ndarray
    """Whether each sync was a full one."""
    sync_changes: np.ndarray
    """Endpoint changes each sync included."""
    watch_bytes_per_second: float
    """API server watch egress for EndpointSlices over [0, duration), all nodes."""
    end_time: float = field(default=0.0)
    """Simulated time at which the last change was programmed on every sampled node."""

    @property
    def programming_durations(self) -> np.ndarray:
        """All network programming durations, flattened (changes x sampled nodes)."""
        return self.programming.ravel()

    def percentiles(self, qs=(50, 90, 99)) -> dict[str, dict[int, float]]:
        """{metric: {q: seconds}} for network_programming_duration_seconds and
        sync_proxy_rules_duration_seconds (NaN when there is no sample)."""
        def pct(values):
            return {q: (float(np.percentile(values, q)) if values.size else math.nan) for q in qs}
        return {"network_programming_duration_seconds": pct(self.programming_durations),
                "sync_proxy_rules_duration_seconds": pct(self.sync_durations)}


def controlplane_streams(seed: int, replication: int = 0) -> dict[str, np.random.Generator]:
    """One Generator per name in `CONTROLPLANE_PURPOSES` (see the module docstring)."""
    return streams(seed, replication, CONTROLPLANE_PURPOSES, domain=(CONTROLPLANE_SPAWN_KEY,))


def sync_seconds(config: ControlPlaneConfig, profile: Profile, full: bool,
                 changes: int, changed_services: int) -> float:
    """Seconds of one sync on one node that includes `changes` endpoint changes touching
    `changed_services` distinct Services; each change replaces one endpoint (one removed,
    one added), so every Service keeps E endpoints. Full: iptables full restore, nftables
    full transaction; IPVS and eBPF program every Service from scratch (start-up)."""
    s, e = config.services, config.endpoints_per_service
    if config.mode == "iptables":
        partial = None if full or not config.minimize_iptables_restore else changed_services
        return iptables_sync_seconds(profile, iptables_restore_lines(s, e, partial),
                                     iptables_total_rules(s, e))
    if config.mode == "nftables":
        elements = 0 if full else nftables_elements_changed(changed_services, e,
                                                            removed_endpoints=changes)
        return nftables_sync_seconds(profile, elements, full, s, e)
    if config.mode == "ipvs":
        ops = (ipvs_operations(s * e, services_added=s) if full
               else ipvs_operations(2 * changes))
        return ipvs_sync_seconds(profile, ops)
    updates = (ebpf_map_updates(s, e, added_endpoints=s * e) if full
               else ebpf_map_updates(changed_services, e, added_endpoints=changes,
                                     removed_endpoints=changes))
    return ebpf_sync_seconds(profile, updates)


class _KubeProxy:
    """One node's kube-proxy: pending changes, its token bucket and its sync loop."""

    def __init__(self, env: simpy.Environment, index: int, run: "_Run"):
        self.env = env
        self.index = index
        self.run = run
        self.pending: list[int] = []
        """Changes delivered by the watch and not yet in a sync."""
        self.wake: simpy.Event | None = None
        """Set while the loop sleeps with nothing pending; a delivery triggers it."""
        self.tokens = float(run.config.burst_syncs)
        self.tokens_at = 0.0

    def deliver(self, change: int) -> None:
        """The watch hands kube-proxy a changed EndpointSlice."""
        self.run.fanout[change, self.index] = self.env.now - self.run.change_times[change]
        self.pending.append(change)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def _take_token(self):
        """SimPy generator: wait until the bucket holds a token, then take it."""
        cfg = self.run.config
        if cfg.min_sync_period > 0:
            now = self.env.now
            tokens = min(cfg.burst_syncs, self.tokens + (now - self.tokens_at) / cfg.min_sync_period)
            if tokens < 1.0:
                yield self.env.timeout((1.0 - tokens) * cfg.min_sync_period)
                tokens = 1.0
            self.tokens, self.tokens_at = tokens - 1.0, self.env.now

    def loop(self):
        """SimPy process: sync at start-up, then whenever changes are pending (rate-limited)
        or `sync_period` after the last sync ended."""
        cfg, run = self.run.config, self.run
        last_full = -math.inf
        while True:
            if run.finished:
                return
            yield from self._take_token()
            now = self.env.now
            if cfg.mode == "iptables" and not cfg.minimize_iptables_restore:
                full = True                   # before KEP-3453 every sync was a full restore
            elif cfg.mode in ("iptables", "nftables"):
                full = now - last_full >= cfg.full_resync_period
            else:
                full = last_full == -math.inf  # IPVS, eBPF: everything at start-up only
            if full:
                last_full = now
            batch, self.pending = self.pending, []
            services = len({int(run.services[c]) for c in batch})
            seconds = sync_seconds(cfg, run.profile, full, len(batch), services)
            yield self.env.timeout(seconds)
            run.syncs.append((self.index, now, seconds, full, len(batch)))
            end = self.env.now
            for c in batch:
                run.programming[c, self.index] = end - run.change_times[c]
            run.programmed += len(batch)
            run.check_done()
            if not self.pending:
                self.wake = self.env.event()
                yield self.wake | self.env.timeout(cfg.sync_period)
                self.wake = None


class _Run:
    """Shared state of one run."""

    def __init__(self, config: ControlPlaneConfig, profile: Profile, env: simpy.Environment,
                 change_times: np.ndarray, services: np.ndarray):
        self.config, self.profile, self.env = config, profile, env
        self.change_times, self.services = change_times, services
        m = config.simulated_nodes
        self.fanout = np.full((change_times.size, m), np.nan)
        self.programming = np.full((change_times.size, m), np.nan)
        self.syncs: list[tuple[int, float, float, bool, int]] = []
        self.programmed = 0
        self.arrivals_done = False
        self.finished = False
        self.done = env.event()

    def check_done(self) -> None:
        if (self.arrivals_done and not self.finished and self.change_times.size
                and self.programmed == self.change_times.size * self.config.simulated_nodes):
            self.finished = True
            self.done.succeed()


def _change_times(config: ControlPlaneConfig, rng: np.random.Generator) -> np.ndarray:
    if config.change_times is not None:
        times = np.asarray(config.change_times, dtype=float)
        if times.size and (np.any(np.diff(times) < 0) or times[0] < 0):
            raise NetmodelError("must be sorted and not negative", field="change_times")
        return times
    if config.churn_rate == 0:
        return np.empty(0)
    chunk = int(config.churn_rate * config.duration * 1.2) + 16
    times = np.cumsum(rng.exponential(1.0 / config.churn_rate, chunk))
    while times[-1] < config.duration:
        more = times[-1] + np.cumsum(rng.exponential(1.0 / config.churn_rate, chunk))
        times = np.concatenate([times, more])
    return times[times < config.duration]


def run_controlplane(config: ControlPlaneConfig, profile: Profile) -> ControlPlaneResult:
    """Simulate the publishing flow and the sampled kube-proxies' sync loops; returns every
    (change, node) programming duration and every sync's duration."""
    rng = controlplane_streams(config.seed, config.replication)
    times = _change_times(config, rng["change-arrivals"])
    services = rng["changed-service"].integers(0, config.services, size=times.size)
    env = simpy.Environment()
    run = _Run(config, profile, env, times, services)
    proxies = [_KubeProxy(env, i, run) for i in range(config.simulated_nodes)]
    egress = Station(env, 1, "apiserver/watch-egress")
    send = config.watch_send_seconds
    order = rng["watch-order"]
    publish_delay = 2 * config.apiserver_write_latency + config.endpointslice_batch_period

    def publish(change: int):
        yield env.timeout(publish_delay)
        yield from egress.acquire()
        places = order.choice(config.nodes, size=len(proxies), replace=False)
        for proxy, place in zip(proxies, places):
            arrival = env.timeout((int(place) + 1) * send)
            arrival.callbacks.append(lambda _e, p=proxy, c=change: p.deliver(c))
        yield env.timeout(config.nodes * send)
        egress.release()

    def changes():
        for c, t in enumerate(times):
            yield env.timeout(t - env.now)
            env.process(publish(c))
        run.arrivals_done = True
        run.check_done()

    env.process(changes())
    for proxy in proxies:
        env.process(proxy.loop())
    if times.size:
        env.run(until=run.done)
    else:
        env.run(until=config.duration)
    end = env.now
    syncs = sorted(run.syncs, key=lambda s: (s[0], s[1]))
    cols = list(zip(*syncs)) if syncs else [(), (), (), (), ()]
    window = config.duration if config.change_times is None else max(config.duration, end)
    watch_bytes = times.size * config.nodes * config.watch_event_bytes
    return ControlPlaneResult(
        config=config, change_times=times, changed_services=services,
        fanout_delays=run.fanout, programming=run.programming,
        sync_node=np.array(cols[0], dtype=int), sync_start=np.array(cols[1], dtype=float),
        sync_durations=np.array(cols[2], dtype=float), sync_full=np.array(cols[3], dtype=bool),
        sync_changes=np.array(cols[4], dtype=int),
        watch_bytes_per_second=watch_bytes / window if window > 0 else 0.0, end_time=end)


def _number(value: float) -> str:
    """Shortest text that reads back as `value`; integers without '.0' (as Prometheus' Go
    client writes them)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def histogram_text(name: str, help_text: str, values: np.ndarray,
                   buckets: tuple[float, ...]) -> str:
    """One Prometheus histogram in text exposition format: HELP, TYPE, cumulative
    `_bucket{le=...}` lines (+Inf last), `_sum`, `_count`."""
    ordered = np.sort(np.asarray(values, dtype=float))
    counts = np.searchsorted(ordered, np.asarray(buckets), side="right")
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{le="{_number(b)}"}} {int(n)}' for b, n in zip(buckets, counts)]
    lines += [f'{name}_bucket{{le="+Inf"}} {ordered.size}',
              f"{name}_sum {_number(float(ordered.sum()))}", f"{name}_count {ordered.size}"]
    return "\n".join(lines) + "\n"


def prometheus_histograms(result: ControlPlaneResult) -> str:
    """kube-proxy's two histograms of a run, as a scrape of all sampled nodes together would
    sum them, in text exposition format with kube-proxy's names and buckets."""
    return (histogram_text("kubeproxy_sync_proxy_rules_duration_seconds",
                           "SyncProxyRules latency in seconds", result.sync_durations,
                           SYNC_PROXY_RULES_BUCKETS)
            + histogram_text("kubeproxy_network_programming_duration_seconds",
                             "In Cluster Network Programming Latency in seconds",
                             result.programming_durations, NETWORK_PROGRAMMING_BUCKETS))


def controlplane_config(scenario: "Scenario", replication: int) -> ControlPlaneConfig:
    """The control-plane run of a scenario point: its cluster, kube-proxy settings and churn.

    An inventory's Services are summarised as their count with endpoints and the mean
    endpoints per Service (rounded, at least 1).
    """
    if scenario.inventory is not None:
        counts = [len(s.endpoints) for s in scenario.inventory.services if s.endpoints]
        services = max(len(counts), 1)
        endpoints = max(round(sum(counts) / len(counts)), 1) if counts else 1
    else:
        services = scenario.services.count
        endpoints = max(scenario.services.endpoints_per_service, 1)
    kp, cp = scenario.kube_proxy, scenario.control_plane
    nodes = scenario.node_count
    return ControlPlaneConfig(
        nodes=nodes, services=services, endpoints_per_service=endpoints, mode=kp.mode,
        min_sync_period=kp.min_sync_period, burst_syncs=kp.burst_syncs,
        sync_period=kp.sync_period, minimize_iptables_restore=kp.minimize_iptables_restore,
        churn_rate=cp.churn_rate, duration=cp.duration, seed=scenario.run.seed,
        replication=replication, sampled_nodes=min(cp.sampled_nodes, nodes))
