"""kube-proxy's control-plane histograms in Prometheus text exposition format.

`netmodel run --metrics` and `netmodel sweep --metrics` write what a scrape of every
simulated kube-proxy, summed, would give: `kubeproxy_sync_proxy_rules_duration_seconds`
and `kubeproxy_network_programming_duration_seconds`, with kube-proxy's own names and
buckets, so dashboards and recording rules built for a real cluster read them as they are.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from netmodel.controlplane.syncloop import ControlPlaneResult

SYNC_PROXY_RULES_BUCKETS: tuple[float, ...] = tuple(0.001 * 2 ** i for i in range(15))
"""kube-proxy's `sync_proxy_rules_duration_seconds` buckets: exponential from 1 ms, factor 2,
15 buckets (pkg/proxy/metrics/metrics.go; reference-figures.md)."""

NETWORK_PROGRAMMING_BUCKETS: tuple[float, ...] = (
    (0.25, 0.5) + tuple(float(s) for s in range(1, 60)) + tuple(float(s) for s in range(60, 120, 5))
    + tuple(float(s) for s in range(120, 301, 30)))
"""kube-proxy's `network_programming_duration_seconds` buckets: 0.25, 0.5, 1..59 by 1,
60..115 by 5, 120..300 by 30 (pkg/proxy/metrics/metrics.go; reference-figures.md)."""


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


def metrics_paths(directory: Path, stem: str, replications: int) -> list[Path]:
    """Where the histograms of each replication go: DIR/<stem>-r<replication>.prom."""
    return [Path(directory) / f"{stem}-r{r}.prom" for r in range(replications)]
