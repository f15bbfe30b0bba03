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

Randomness: `netmodel.streams.streams` with this module's own `CONTROLPLANE_PURPOSES`
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

from netmodel.cluster.rules import (
    ebpf_map_updates,
    iptables_restore_lines,
    iptables_total_rules,
    ipvs_operations,
    nftables_elements_changed,
)
from netmodel.controlplane.churn import EndpointUpdates, ProgrammedEndpoints, generate_churn, poisson_times
from netmodel.costs.profile import Profile
from netmodel.costs.sync import (
    ebpf_sync_seconds,
    iptables_sync_seconds,
    ipvs_sync_seconds,
    nftables_sync_seconds,
)
from netmodel.errors import NetmodelError
from netmodel.streams import streams
from netmodel.vocabulary import KUBE_PROXY_MODES

if TYPE_CHECKING:
    from netmodel.cluster.topology import Topology
    from netmodel.scenario.schema import Scenario
from netmodel.stations import Station

CONTROLPLANE_SPAWN_KEY = 0x6B70  # "kp"
"""First element of this module's SeedSequence spawn keys (see the module docstring)."""

CONTROLPLANE_PURPOSES = ("change-arrivals", "changed-service", "watch-order", "proxy-phase",
                         "changed-endpoint", "pod-node", "pod-start")
"""Stream names; their position is part of the seed, so only ever append."""

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
    endpointslice_batch_period: float = 0.0
    """--endpointslice-updates-batch-period: default 0, every change triggers an update
    (reference-figures.md "Control-plane defaults and SLOs"). Otherwise a Service's changes
    within the period after its first one go out together in one update."""
    warm_start: bool = False
    """False: every kube-proxy starts at t = 0 with a full sync (all restarted at once).
    True: they have been running: rules in place, token bucket full, the last sync ended at
    a time drawn per node in the last `sync_period`, the last full one in the last
    `full_resync_period` (what a scenario point uses)."""

    def __post_init__(self):
        if self.mode not in KUBE_PROXY_MODES:
            raise NetmodelError(f"unknown mode {self.mode!r} (known: {', '.join(KUBE_PROXY_MODES)})",
                                field="mode")
        for name in ("nodes", "services", "endpoints_per_service", "burst_syncs"):
            if getattr(self, name) < 1:
                raise NetmodelError("must be at least 1", field=name)
        for name in ("min_sync_period", "churn_rate", "duration", "endpointslice_batch_period"):
            if getattr(self, name) < 0:
                raise NetmodelError("must not be negative", field=name)
        for name in ("sync_period", "full_resync_period"):
            if getattr(self, name) <= 0:
                raise NetmodelError("must be positive", field=name)
        if self.sampled_nodes is not None and not 1 <= self.sampled_nodes <= self.nodes:
            raise NetmodelError("must be between 1 and nodes", field="sampled_nodes")

    @property
    def simulated_nodes(self) -> int:
        """kube-proxies actually simulated."""
        return self.sampled_nodes if self.sampled_nodes is not None else min(self.nodes, 50)


ENDPOINTS_PER_SLICE = 100
"""EndpointSlice controller default --max-endpoints-per-slice (reference-figures.md)."""


def watch_event_bytes(config: ControlPlaneConfig, profile: Profile) -> float:
    """Bytes of one EndpointSlice watch event: a change rewrites one slice of up to
    ENDPOINTS_PER_SLICE of the Service's endpoints."""
    per_slice = min(config.endpoints_per_service, ENDPOINTS_PER_SLICE)
    return profile["endpointslice_object_bytes"] + per_slice * profile["endpointslice_endpoint_bytes"]


def watch_send_seconds(config: ControlPlaneConfig, profile: Profile) -> float:
    """Seconds the API server egress spends on one watcher per update: its CPU for the
    watcher plus the event's bytes at the egress rate."""
    return (profile["watch_send_per_watcher"]
            + 8 * watch_event_bytes(config, profile) / profile["apiserver_egress"])


@dataclass
class ControlPlaneResult:
    """Per (change, sampled node) and per sync records of one run; times in seconds."""

    config: ControlPlaneConfig
    updates: EndpointUpdates
    """The EndpointSlice updates programmed (a change: one update)."""
    fanout_delays: np.ndarray
    """(updates, sampled nodes): change -> the update reaches that node's kube-proxy."""
    programming: np.ndarray
    """(updates, sampled nodes): network_programming_duration, change -> end of the first
    sync on that node that includes it."""
    sync_node: np.ndarray
    sync_start: np.ndarray
    sync_durations: np.ndarray
    """sync_proxy_rules_duration of every sync that ran, in start order per node."""
    sync_full: np.ndarray
    """Whether each sync was a full one."""
    sync_changes: np.ndarray
    """Updates each sync included."""
    watch_bytes_per_second: float
    """API server watch egress for EndpointSlices over [0, duration) (or until the last
    update when they run past it), all nodes."""
    end_time: float = field(default=0.0)
    """Simulated time at which the last change was programmed on every sampled node."""
    stale_windows: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Coupled runs (`couple`): per (endpoint removed, sampled node), seconds its rules
    still sent traffic to the Pod after it stopped serving (0: removed in time)."""

    @property
    def change_times(self) -> np.ndarray:
        """When each update's change happened."""
        return self.updates.times

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
                 added: int, removed: int, changed_services: int) -> float:
    """Seconds of one sync on one node that adds `added` and removes `removed` endpoints
    of `changed_services` distinct Services; rule counts take every Service at E endpoints.
    Full: iptables full restore, nftables full transaction; IPVS and eBPF program every
    Service from scratch (start-up)."""
    s, e = config.services, config.endpoints_per_service
    if config.mode == "iptables":
        partial = None if full or not config.minimize_iptables_restore else changed_services
        return iptables_sync_seconds(profile, iptables_restore_lines(s, e, partial),
                                     iptables_total_rules(s, e))
    if config.mode == "nftables":
        elements = 0 if full else nftables_elements_changed(changed_services, e,
                                                            removed_endpoints=removed)
        return nftables_sync_seconds(profile, elements, full, s, e)
    if config.mode == "ipvs":
        ops = (ipvs_operations(s * e, services_added=s) if full
               else ipvs_operations(added + removed))
        return ipvs_sync_seconds(profile, ops)
    updates = (ebpf_map_updates(s, e, added_endpoints=s * e) if full
               else ebpf_map_updates(changed_services, e, added_endpoints=added,
                                     removed_endpoints=removed))
    return ebpf_sync_seconds(profile, updates)


class _KubeProxy:
    """One node's kube-proxy: pending changes, its token bucket and its sync loop."""

    def __init__(self, env: simpy.Environment, index: int, run: "_Run"):
        self.env = env
        self.index = index
        self.run = run
        self.pending: list[int] = []
        """Updates delivered by the watch and not yet in a sync."""
        self.wake: simpy.Event | None = None
        """Set while the loop sleeps with nothing pending; a delivery triggers it."""
        self.tokens = float(run.config.burst_syncs)
        self.tokens_at = 0.0

    def deliver(self, update: int) -> None:
        """The watch hands kube-proxy a changed EndpointSlice."""
        self.run.fanout[update, self.index] = self.env.now - self.run.updates.times[update]
        self.pending.append(update)
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
        """SimPy process: sync at start-up (or, warm, carry on from a drawn past), then
        whenever updates are pending (rate-limited) or `sync_period` after the last sync
        ended."""
        cfg, run = self.run.config, self.run
        last_full = -math.inf
        if cfg.warm_start:
            since_sync, since_full = run.phases[self.index]
            last_full = -since_full * cfg.full_resync_period
            yield from self._idle(cfg.sync_period * (1.0 - since_sync))
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
            up = run.updates
            seconds = sync_seconds(cfg, run.profile, full, int(up.added[batch].sum()),
                                   int(up.removed[batch].sum()),
                                   len({int(up.services[u]) for u in batch}))
            yield self.env.timeout(seconds)
            run.syncs.append((self.index, now, seconds, full, len(batch)))
            end = self.env.now
            for u in batch:
                run.programming[u, self.index] = end - up.times[u]
            run.programmed += len(batch)
            run.check_done()
            yield from self._idle(cfg.sync_period)

    def _idle(self, period: float):
        """SimPy generator: with nothing pending, sleep until a delivery or `period`."""
        if not self.pending:
            self.wake = self.env.event()
            yield self.wake | self.env.timeout(period)
            self.wake = None


class _Run:
    """Shared state of one run."""

    def __init__(self, config: ControlPlaneConfig, profile: Profile, env: simpy.Environment,
                 updates: EndpointUpdates, phases: np.ndarray):
        self.config, self.profile, self.env = config, profile, env
        self.updates, self.phases = updates, phases
        m = config.simulated_nodes
        self.fanout = np.full((updates.size, m), np.nan)
        self.programming = np.full((updates.size, m), np.nan)
        self.syncs: list[tuple[int, float, float, bool, int]] = []
        self.programmed = 0
        self.published = 0
        self.arrivals_done = False
        self.finished = False
        self.done = env.event()

    def check_done(self) -> None:
        if (self.arrivals_done and not self.finished and self.updates.size
                and self.programmed == self.updates.size * self.config.simulated_nodes):
            self.finished = True
            self.done.succeed()


def steady_updates(config: ControlPlaneConfig, rng: dict[str, np.random.Generator]) -> EndpointUpdates:
    """Updates of a standalone run: at `change_times`, or Poisson at `churn_rate` over
    `duration`; each replaces one endpoint of a Service drawn uniformly, in one update."""
    if config.change_times is not None:
        times = np.asarray(config.change_times, dtype=float)
        if times.size and (np.any(np.diff(times) < 0) or times[0] < 0):
            raise NetmodelError("must be sorted and not negative", field="change_times")
    elif config.churn_rate == 0:
        times = np.empty(0)
    else:
        times = poisson_times(config.churn_rate, config.duration, rng["change-arrivals"])
    services = rng["changed-service"].integers(0, config.services, size=times.size)
    return EndpointUpdates.replacements(times, services)


def run_controlplane(config: ControlPlaneConfig, profile: Profile,
                     updates: EndpointUpdates | None = None) -> ControlPlaneResult:
    """Simulate the publishing flow and the sampled kube-proxies' sync loops for `updates`
    (None: `steady_updates`); returns every (update, node) programming duration and every
    sync's duration."""
    rng = controlplane_streams(config.seed, config.replication)
    if updates is None:
        updates = steady_updates(config, rng)
    env = simpy.Environment()
    phases = rng["proxy-phase"].random((config.simulated_nodes, 2))
    run = _Run(config, profile, env, updates, phases)
    proxies = [_KubeProxy(env, i, run) for i in range(config.simulated_nodes)]
    egress = Station(env, 1, "apiserver/watch-egress")
    send = watch_send_seconds(config, profile)
    order = rng["watch-order"]
    write = profile["apiserver_write"]
    batches: dict[int, list[int]] = {}
    """Open EndpointSlice controller batches: Service -> updates waiting to go out."""

    def publish(first: int):
        """The Pod status write, the controller's batch, its EndpointSlice write, the fan-out."""
        yield env.timeout(write)
        s = int(updates.services[first])
        batch = [first]
        if config.endpointslice_batch_period > 0:
            if s in batches:   # joins the batch the controller holds for this Service
                batches[s].append(first)
                return
            batches[s] = batch
            yield env.timeout(config.endpointslice_batch_period)
            del batches[s]
        yield env.timeout(write)
        run.published += 1
        yield from egress.acquire()
        places = order.choice(config.nodes, size=len(proxies), replace=False)
        for proxy, place in zip(proxies, places):
            arrival = env.timeout((int(place) + 1) * send)
            for u in batch:
                arrival.callbacks.append(lambda _e, p=proxy, u=u: p.deliver(u))
        yield env.timeout(config.nodes * send)
        egress.release()

    def changes():
        for u, t in enumerate(updates.times.tolist()):
            yield env.timeout(max(t - env.now, 0.0))  # a time the clock rounded past: now
            env.process(publish(u))
        run.arrivals_done = True
        run.check_done()

    env.process(changes())
    for proxy in proxies:
        env.process(proxy.loop())
    if updates.size:
        env.run(until=run.done)
    else:
        env.run(until=config.duration)
    end = env.now
    syncs = sorted(run.syncs, key=lambda s: (s[0], s[1]))
    cols = list(zip(*syncs)) if syncs else [(), (), (), (), ()]
    last = float(updates.times[-1]) if updates.size else 0.0
    window = max(config.duration, last)
    watch_bytes = run.published * config.nodes * watch_event_bytes(config, profile)
    return ControlPlaneResult(
        config=config, updates=updates, fanout_delays=run.fanout, programming=run.programming,
        sync_node=np.array(cols[0], dtype=int), sync_start=np.array(cols[1], dtype=float),
        sync_durations=np.array(cols[2], dtype=float), sync_full=np.array(cols[3], dtype=bool),
        sync_changes=np.array(cols[4], dtype=int),
        watch_bytes_per_second=watch_bytes / window if window > 0 else 0.0, end_time=end)


def controlplane_config(scenario: "Scenario", replication: int) -> ControlPlaneConfig:
    """The control-plane run of a scenario point: its cluster and kube-proxy settings,
    kube-proxies warm (running before the point starts). The updates come from
    `sim/churn.generate_churn`. eBPF is Cilium's agent, which has no minSyncPeriod: it
    applies each update as it comes (min_sync_period 0).

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
        min_sync_period=0.0 if kp.mode == "ebpf" else kp.min_sync_period, burst_syncs=kp.burst_syncs,
        sync_period=kp.sync_period, minimize_iptables_restore=kp.minimize_iptables_restore,
        churn_rate=cp.churn_rate, duration=cp.duration, seed=scenario.run.seed,
        replication=replication, sampled_nodes=min(cp.sampled_nodes, nodes),
        endpointslice_batch_period=cp.endpointslice_batch_period, warm_start=True)


def couple(scenario: "Scenario", profile: Profile, topology: "Topology",
           replication: int) -> tuple[ControlPlaneResult, ProgrammedEndpoints]:
    """The control plane of one replication of a scenario point, over the data plane's
    initial endpoints (`topology`): its churn, programmed on every simulated node, and the
    view the data plane's proxies route by. kube-proxy does not watch headless Services'
    EndpointSlices: their updates are not programmed (their clients read the slice)."""
    config = controlplane_config(scenario, replication)
    churn = generate_churn(scenario, profile, topology.endpoint_offsets, topology.endpoint_node,
                           controlplane_streams(config.seed, replication))
    watched = ~topology.headless[churn.updates.services]
    result = run_controlplane(config, profile, churn.updates.subset(watched))
    programming = np.zeros((churn.updates.size, config.simulated_nodes))
    programming[watched] = result.programming
    programmed = ProgrammedEndpoints.of(churn, programming)
    result.stale_windows = programmed.stale_windows()
    return result, programmed
