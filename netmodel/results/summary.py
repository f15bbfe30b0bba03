"""From per-request records to one summary row per (sweep point, traffic kind).

Latency percentiles pool the measured requests of all replications (completed,
started after the warm-up); `measured` says how many they rest on. With two or more
replications, `*_ci95` give the half-width of a 95% Student-t interval over the
per-replication estimates; with one they are NaN.
"""

from __future__ import annotations

import math

import numpy as np

from netmodel.connections.conntrack import conntrack_table
from netmodel.connections.records import Records
from netmodel.controlplane.syncloop import ControlPlaneResult
from netmodel.paths.dataplane import dataplane_of
from netmodel.results.intervals import mean_half_width
from netmodel.scenario.schema import Scenario
from netmodel.vocabulary import (
    COMPLETED,
    DROP_COLUMNS,
    DROP_REASONS,
    IN_FLIGHT,
    PACKET_DROP_COLUMNS,
    RETRIES_EXHAUSTED,
    TIMEOUT,
    TRAFFIC_KINDS,
)

CONTROL_PLANE_COLUMNS = (
    "network_programming_p50_s", "network_programming_p90_s", "network_programming_p99_s",
    "sync_proxy_rules_p50_s", "sync_proxy_rules_p99_s", "watch_bytes_per_s",
    "endpoint_updates", "stale_window_p50_s", "stale_window_p99_s", "stale_window_max_s",
)
"""Control-plane figures of the point (the same on each of its rows; NaN when
`control_plane.enabled` is false), pooled over replications: kube-proxy's
network_programming_duration_seconds and sync_proxy_rules_duration_seconds percentiles,
the API server's watch egress, EndpointSlice updates per replication, and the stale
window: per (removed endpoint, node), how long the node's rules still sent traffic to a
Pod that had stopped serving (0 when removed in time; NaN when no endpoint was removed)."""

SETUP_COLUMNS = ("setups", "setup_p50_s", "setup_p99_s", "setup_mean_s")
"""Connection set-up: how many new connections were measured (started after the warm-up,
set-up completed) and the time from their arrival to the end of their set-up (the TCP
handshake with DNS lookups, rule walks, conntrack inserts and, for Ingress, TLS) that
their first request's latency includes. Under keep-alive a request mean hides it; NaN
for kinds with no set-up modelled (kubectl's)."""

CONNTRACK_COLUMNS = ("conntrack_table", "conntrack_entries", "conntrack_fill", "conntrack_evictions")
"""Which table a node's connections live in: `nf_conntrack` (netfilter; size
cluster.conntrack_max, a closed connection held cluster.conntrack_time_wait) or `bpf-ct`
(the BPF conntrack map of eBPF host routing; kube_proxy.ebpf.ct_map_size and
ct_close_timeout). Point figures (the same on each of its rows), the mean over
replications: steady-state entries on the busiest node (Little's law: connections per
second through it x (their mean lifetime + the hold)) and that over the table's size
(1 = full: netfilter drops new connections, packets_dropped_conntrack_full; the BPF map
evicts its oldest entry). `conntrack_evictions`, per traffic kind: entries the full BPF
map evicted for new connections (0 under netfilter)."""

TIMEOUT_COLUMNS = ("p50_with_timeouts_s", "p99_with_timeouts_s")
"""p50 and p99 over the measured requests together with those (started after the warm-up)
that timed out or that TCP gave up on, counted at workload.timeout: what a client sees;
p50_s .. p999_s are over completed requests only and hide them."""

COLUMNS = (
    "kube_proxy.mode", "dataplane", "traffic", "requests", "completed", "dropped", *DROP_COLUMNS,
    "in_flight", *PACKET_DROP_COLUMNS, "measured", "p50_s", "p90_s", "p99_s", "p999_s", "mean_s",
    "mean_s_ci95", "p99_s_ci95", *TIMEOUT_COLUMNS, *SETUP_COLUMNS, "throughput_rps", "rule_lookup_cpu_s_per_request",
    "softirq_cpu_s_per_request", "cross_node_share", "endpoint_load_skew",
    *CONNTRACK_COLUMNS, *CONTROL_PLANE_COLUMNS, "replications",
)
"""Columns of a summary row, in order (times in seconds, CPU in core-seconds).

`cross_node_share`: requests that crossed between nodes (for NodePort and
LoadBalancer traffic: the second node hop). `endpoint_load_skew`: requests on the
busiest endpoint over the mean per endpoint, over all endpoints of the Services
that were called (1 = even; externalTrafficPolicy Local skews it). It is sampled:
NaN unless those endpoints average MIN_REQUESTS_PER_ENDPOINT requests. Services whose
endpoints changed under the control plane are left out."""

MIN_REQUESTS_PER_ENDPOINT = 100
"""Below this mean, `endpoint_load_skew` is NaN: the busiest of many endpoints would
mostly show sampling noise (at 100 per endpoint, noise alone adds about 0.3)."""

_PERCENTILES = {"p50_s": 50.0, "p90_s": 90.0, "p99_s": 99.0, "p999_s": 99.9}


def summarize(scenario: Scenario, results: list[Records],
              control: list[ControlPlaneResult] = ()) -> list[dict]:
    """One row per traffic kind with positive weight in the mix, columns as COLUMNS;
    `control` holds the point's control-plane runs, if any."""
    entries = [r.conntrack_entries for r in results if not math.isnan(r.conntrack_entries)]
    conntrack = (float(np.mean(entries)) if entries else math.nan)
    table = conntrack_table(scenario)
    point = {"conntrack_table": table.name, "conntrack_entries": conntrack,
             "conntrack_fill": conntrack / table.limit}
    after = {**_control_plane(control), "replications": len(results)}
    dataplane = dataplane_of(scenario).name
    rows = []
    for kind in (k for k in TRAFFIC_KINDS if scenario.workload.mix.get(k, 0) > 0):
        k = TRAFFIC_KINDS.index(kind)
        row = {"kube_proxy.mode": scenario.kube_proxy.mode, "dataplane": dataplane, "traffic": kind,
               **_outcomes(results, k), **_latency(results, k, scenario.workload.timeout),
               **_setup(results, k), **_work(results, k), **point,
               "conntrack_evictions": sum(int(r.ct_evictions[r.kind == k].sum()) for r in results),
               **after}
        assert tuple(row) == COLUMNS, tuple(row)
        rows.append(row)
    return rows


def _outcomes(results: list[Records], k: int) -> dict:
    """requests .. in_flight and the packet drops of traffic kind k."""
    statuses = [res.status[res.kind == k] for res in results]
    status = np.concatenate(statuses) if statuses else np.empty(0, dtype=np.int8)
    drops = [int((status == 2 + i).sum()) for i in range(len(DROP_REASONS))]
    packets = sum((res.packet_drops[res.kind == k].sum(axis=0) for res in results),
                  np.zeros(len(PACKET_DROP_COLUMNS), dtype=np.int64))
    return {"requests": int(status.size), "completed": int((status == COMPLETED).sum()),
            "dropped": sum(drops), **dict(zip(DROP_COLUMNS, drops)),
            "in_flight": int((status == IN_FLIGHT).sum()),
            **{c: int(v) for c, v in zip(PACKET_DROP_COLUMNS, packets)}}


def _latency(results: list[Records], k: int, timeout: float) -> dict:
    """Percentiles of measured requests (completed, started after the warm-up), their
    intervals over replications, and the same percentiles with the requests that timed out
    or that TCP gave up on counted at the timeout."""
    latencies, rep_means, rep_p99, waited = [], [], [], []
    for res in results:
        after = (res.kind == k) & (res.start >= res.warmup)
        measured = after & (res.status == COMPLETED)
        lat = res.end[measured] - res.start[measured]
        latencies.append(lat)
        gave_up = after & ((res.status == TIMEOUT) | (res.status == RETRIES_EXHAUSTED))
        waited.append(np.concatenate([lat, np.full(int(gave_up.sum()), timeout)]))
        if lat.size:
            rep_means.append(float(lat.mean()))
            rep_p99.append(float(np.percentile(lat, 99.0)))
    lat, waited = np.concatenate(latencies), np.concatenate(waited)
    row = {"measured": int(lat.size)}
    row.update((name, float(np.percentile(lat, q)) if lat.size else math.nan)
               for name, q in _PERCENTILES.items())
    row["mean_s"] = float(lat.mean()) if lat.size else math.nan
    row["mean_s_ci95"] = _ci95(rep_means, len(results))
    row["p99_s_ci95"] = _ci95(rep_p99, len(results))
    for name, q in (("p50_with_timeouts_s", 50.0), ("p99_with_timeouts_s", 99.0)):
        row[name] = float(np.percentile(waited, q)) if waited.size else math.nan
    return row


def _setup(results: list[Records], k: int) -> dict:
    """SETUP_COLUMNS of traffic kind k."""
    setups = []
    for res in results:
        connected = (res.kind == k) & (res.start >= res.warmup) & ~np.isnan(res.connected)
        setups.append(res.connected[connected] - res.start[connected])
    setup = np.concatenate(setups)
    return {"setups": int(setup.size),
            "setup_p50_s": float(np.percentile(setup, 50)) if setup.size else math.nan,
            "setup_p99_s": float(np.percentile(setup, 99)) if setup.size else math.nan,
            "setup_mean_s": _mean(setup)}


def _work(results: list[Records], k: int) -> dict:
    """Throughput, CPU per request, cross-node share and endpoint skew of traffic kind k."""
    lookup, cpu, cross = [], [], []
    window_completions, window = 0, 0.0
    for res in results:
        mine = res.kind == k
        measured = mine & (res.status == COMPLETED) & (res.start >= res.warmup)
        lookup.append(res.lookup_cpu[measured])
        cpu.append(res.softirq_cpu[measured])
        cross.append(res.cross_node[measured])
        ends = res.end[mine & (res.status == COMPLETED)]
        window_completions += int(((ends >= res.warmup) & (ends <= res.last_arrival)).sum())
        window += max(res.last_arrival - res.warmup, 0.0)
    return {"throughput_rps": window_completions / window if window > 0 else math.nan,
            "rule_lookup_cpu_s_per_request": _mean(np.concatenate(lookup)),
            "softirq_cpu_s_per_request": _mean(np.concatenate(cpu)),
            "cross_node_share": _mean(np.concatenate(cross).astype(float)),
            "endpoint_load_skew": _skew(results, k)}


def _control_plane(control: list[ControlPlaneResult]) -> dict[str, float]:
    """CONTROL_PLANE_COLUMNS from pooled control-plane runs (NaN without any)."""
    if not control:
        return dict.fromkeys(CONTROL_PLANE_COLUMNS, math.nan)
    programming = np.concatenate([c.programming_durations for c in control])
    syncs = np.concatenate([c.sync_durations for c in control])
    stale = np.concatenate([c.stale_windows for c in control])

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if values.size else math.nan

    return dict(zip(CONTROL_PLANE_COLUMNS, (
        pct(programming, 50), pct(programming, 90), pct(programming, 99),
        pct(syncs, 50), pct(syncs, 99),
        float(np.mean([c.watch_bytes_per_second for c in control])),
        float(np.mean([c.updates.size for c in control])),
        pct(stale, 50), pct(stale, 99), float(stale.max()) if stale.size else math.nan)))


def _skew(results: list[Records], kind: int) -> float:
    """Busiest endpoint's requests over the mean per endpoint of the called Services."""
    skews = []
    for res in results:
        served = res.endpoint[(res.kind == kind) & (res.status == COMPLETED)]
        served = served[served < res.endpoint_offsets[-1]]  # Pods there from the start
        service = np.searchsorted(res.endpoint_offsets, served, side="right") - 1
        if res.control is not None:  # a Service whose Pods changed has no fixed set to compare
            steady = ~np.isin(service, res.control.updates.services)
            served, service = served[steady], service[steady]
        if not served.size:
            continue
        per_endpoint = np.bincount(served, minlength=int(res.endpoint_offsets[-1]))
        called = np.zeros(len(res.endpoint_offsets) - 1, dtype=bool)
        called[service] = True
        load = per_endpoint[np.repeat(called, np.diff(res.endpoint_offsets))]  # the called Services' endpoints
        if load.mean() >= MIN_REQUESTS_PER_ENDPOINT:
            skews.append(float(load.max() / load.mean()))
    return float(np.mean(skews)) if skews else math.nan


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _ci95(estimates: list[float], replications: int) -> float:
    """Half-width of the 95% t interval of the mean of per-replication estimates; NaN
    unless every replication gave one."""
    if replications < 2 or len(estimates) < replications:
        return math.nan
    return mean_half_width(estimates)
