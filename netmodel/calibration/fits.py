"""From the lab's samples to estimates with 95% intervals.

The lab shares its machine: now and then a sample waits for the CPU, and a busy spell can
shift a whole batch. So every statistic is median-based, and every interval is the wider
of two: a percentile bootstrap over the samples (BOOTSTRAP resamples, at most
BOOTSTRAP_SAMPLES drawn per group, which only widens it) and the spread between batches or
passes (a regression's standard error over its points, or the range of per-pass values).

- `walk_fit`: latency of a new connection (connect and the first round trip) against the
  rules its SYN walked: per batch (Service count) the samples are cut into WALK_BINS bins
  by rules walked, each bin gives (median walked, median latency); the cost per rule is the
  slope within batches (each batch's points taken about their mean, so that a batch the
  machine ran slower does not tilt it), the latency at zero rules the median of the
  batches' intercepts, and each batch's direct Pod connections give what a Service
  connection costs over one to a Pod (the DNAT binding).
- `flat_fit`: the same against the Service count, one median per batch: the slope (for
  nftables, to show it is flat), the overall median, and Service over Pod connections.
- `datapath_fit`: one-way latencies of the data paths (half the median round trip of each
  path's least disturbed pass), and the per-hop costs their differences give.
- `linear_fit`: least squares on relative error of sync times against counts (lines,
  rules, commands, chains), as `netmodel.costs.sync.fit_iptables_sync` fits its points,
  with no cost below zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from netmodel.results.intervals import mean_half_width, t_quantile

BOOTSTRAP = 200
BOOTSTRAP_SAMPLES = 5000
WALK_BINS = 5
STACK_SPLIT = (8.0, 5.0)
"""tcp_stack_tx : tcp_stack_rx, the default profile's split of the TCP stack's CPU (the lab
measures their sum)."""


@dataclass(frozen=True)
class Estimate:
    """A value (SI) with its 95% interval and the samples it rests on."""

    value: float
    low: float
    high: float
    samples: int

    def text(self) -> str:
        """'12.3 us (95% CI 11.9 to 12.8 us, 4,000 samples)' in the unit that suits the value."""
        size = max(abs(self.value), abs(self.low), abs(self.high))
        unit, scale = next(((u, s) for u, s in _UNITS if size * s >= 1), _UNITS[-1])
        return (f"{self.value * scale:.4g} {unit} (95% CI {self.low * scale:.4g} to "
                f"{self.high * scale:.4g} {unit}, {self.samples:,} samples)")

    def widened(self, low: float, high: float) -> "Estimate":
        """The same value with the interval stretched to cover [low, high]."""
        return Estimate(self.value, min(self.low, low), max(self.high, high), self.samples)


_UNITS = (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9))

Groups = list[dict[str, np.ndarray]]


def _groups(frame: pd.DataFrame, by: str, columns: Sequence[str]) -> Groups:
    return [{c: g[c].to_numpy(dtype=float) for c in columns} for _, g in frame.groupby(by, sort=True)]


def _bootstrap(groups: Groups, statistic: Callable[[Groups], np.ndarray],
               seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """statistic(groups) and its 2.5th and 97.5th percentiles over BOOTSTRAP resamples
    (rows drawn with replacement within each group, at most BOOTSTRAP_SAMPLES per group)."""
    rng = np.random.default_rng(seed)
    point = np.asarray(statistic(groups))
    draws = []
    for _ in range(BOOTSTRAP):
        drawn = []
        for g in groups:
            n = len(next(iter(g.values())))
            idx = rng.integers(0, n, size=min(n, BOOTSTRAP_SAMPLES))
            drawn.append({c: v[idx] for c, v in g.items()})
        draws.append(statistic(drawn))
    draws = np.array(draws)
    return point, np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)


def _estimates(point, low, high, samples: int) -> list[Estimate]:
    return [Estimate(float(v), float(lo), float(hi), samples) for v, lo, hi in zip(point, low, high)]


def _line_with_errors(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, intercept) of a least-squares line and their 95% half-widths (Student t with
    n - 2 degrees of freedom; zero for two points)."""
    if len(np.unique(x)) < 2:
        raise ValueError("a line needs at least two distinct x values")
    coef = np.polyfit(x, y, 1)
    n = len(x)
    if n <= 2:
        return coef, np.zeros(2)
    residual = y - np.polyval(coef, x)
    s2 = residual @ residual / (n - 2)
    sxx = ((x - x.mean()) ** 2).sum()
    se = np.sqrt([s2 / sxx, s2 * (1 / n + x.mean() ** 2 / sxx)])
    return coef, t_quantile(0.975, n - 2) * se


# -- rule walks ----------------------------------------------------------------------------
def _bins(walked: np.ndarray, latency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median walked, median latency) per bin of walked (WALK_BINS quantile bins)."""
    edges = np.unique(np.quantile(walked, np.linspace(0, 1, WALK_BINS + 1)))
    which = np.clip(np.searchsorted(edges, walked, side="right") - 1, 0, max(len(edges) - 2, 0))
    keys = np.unique(which)
    return (np.array([np.median(walked[which == k]) for k in keys]),
            np.array([np.median(latency[which == k]) for k in keys]))


def walk_points(samples: pd.DataFrame) -> pd.DataFrame:
    """Per batch and bin of rules walked (Service connections): median walked, median
    latency, the Service count."""
    rows = []
    service = samples[samples["target"] == "service"]
    for (batch, services), g in service.groupby(["batch", "services"], sort=True):
        for w, lat in zip(*_bins(g["walked"].to_numpy(float), g["value"].to_numpy(float))):
            rows.append({"batch": batch, "services": int(services), "walked": w, "latency": lat})
    return pd.DataFrame(rows)


def _service_bins(g: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    s = g["service"] == 1
    return _bins(g["walked"][s], g["value"][s])


def _within(points: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Bin medians of every batch taken about their batch's mean (x, then y)."""
    return (np.concatenate([x - x.mean() for x, _ in points]),
            np.concatenate([y - y.mean() for _, y in points]))


def _per_batch(groups: Groups, points, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Per batch: the intercept of its bins at `slope`, and that over a direct Pod
    connection's latency less its own walk."""
    intercepts = np.array([y.mean() - slope * x.mean() for x, y in points])
    direct = np.array([_direct(g, slope) for g in groups])
    return intercepts, intercepts - direct


def _direct(g: dict[str, np.ndarray], slope: float) -> float:
    """A batch's direct Pod connections: median latency less their own walk at `slope`."""
    pod = g["service"] == 0
    return float(np.median(g["value"][pod]) - slope * np.median(g["walked"][pod]))


def _walk_statistic(groups: Groups) -> np.ndarray:
    """[cost per rule, latency at zero rules, Service overhead at zero rules] from batches
    (`walked`, `value`, `service` 1/0 per sample): the slope within batches (each batch's
    bin medians taken about their mean, so that a batch-wide shift of the machine's speed
    does not tilt it); the medians over batches of their intercepts and of the intercept
    over a direct Pod connection's latency less its walk."""
    points = [_service_bins(g) for g in groups]
    dx, dy = _within(points)
    slope = float(dx @ dy / (dx @ dx))
    intercepts, overheads = _per_batch(groups, points, slope)
    return np.array([slope, np.median(intercepts), np.median(overheads)])


def _t_interval(values: np.ndarray, centre: float) -> tuple[float, float]:
    if len(values) < 2:
        return centre, centre
    half = mean_half_width(values)
    return centre - half, centre + half


def _with_target(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(service=(samples["target"] == "service").astype(float))


def walk_fit(samples: pd.DataFrame) -> tuple[Estimate, Estimate, Estimate]:
    """(cost per rule walked, latency at zero rules walked, what a Service connection costs
    at zero rules over a direct Pod connection: the DNAT binding) from `crr` samples of
    Service and direct Pod connections (`target`), batches of several Service counts. The
    intervals also cover the scatter of the bins about the line and between batches."""
    groups = _groups(_with_target(samples), "batch", ("walked", "value", "service"))
    rule, zero, overhead = _estimates(*_bootstrap(groups, _walk_statistic), len(samples))
    points = [_service_bins(g) for g in groups]
    dx, dy = _within(points)
    residual = dy - rule.value * dx
    dof = max(len(dx) - len(points) - 1, 1)
    half = t_quantile(0.975, dof) * np.sqrt(residual @ residual / dof / (dx @ dx))
    intercepts, overheads = _per_batch(groups, points, rule.value)
    return (rule.widened(rule.value - half, rule.value + half),
            zero.widened(*_t_interval(intercepts, zero.value)),
            overhead.widened(*_t_interval(overheads, overhead.value)))


def flat_fit(samples: pd.DataFrame) -> tuple[Estimate, Estimate, Estimate]:
    """(slope of the per-batch median latency of Service connections against the Service
    count, their overall median, their per-batch median over direct Pod connections')."""
    groups = _groups(_with_target(samples), "batch", ("services", "value", "service"))

    def statistic(gs: Groups) -> np.ndarray:
        x = np.array([g["services"][0] for g in gs])
        y = np.array([np.median(g["value"][g["service"] == 1]) for g in gs])
        over = np.array([np.median(g["value"][g["service"] == 1]) - np.median(g["value"][g["service"] == 0])
                         for g in gs])
        every = np.concatenate([g["value"][g["service"] == 1] for g in gs])
        return np.array([np.polyfit(x, y, 1)[0], np.median(every), np.median(over)])

    slope, level, over = _estimates(*_bootstrap(groups, statistic), len(samples))
    x = np.array([g["services"][0] for g in groups])
    medians = np.array([np.median(g["value"][g["service"] == 1]) for g in groups])
    overs = medians - np.array([np.median(g["value"][g["service"] == 0]) for g in groups])
    (s, _), (h, _) = _line_with_errors(x, medians)
    return (slope.widened(s - h, s + h), level.widened(*_t_interval(medians, level.value)),
            over.widened(*_t_interval(overs, over.value)))


# -- data paths ------------------------------------------------------------------------------
DATAPATH_PARAMETERS = ("tcp_stack_tx", "tcp_stack_rx", "rx_wakeup", "veth", "bridge",
                       "conntrack_established", "vxlan_encap", "vxlan_decap")
_NEEDED = ("loopback", "veth", "bridge", "bridge-conntrack", "native", "vxlan")


def datapath_parameters(latency: dict[str, float], cpu_one_way: float) -> np.ndarray:
    """DATAPATH_PARAMETERS from one-way latencies: loopback = stack (tx + rx) + wake-up;
    veth = veth pair - loopback; bridge = same-node Pods - loopback - 2 veth; conntrack =
    tracked same-node Pods - the hops before; VXLAN encap = decap = (vxlan - native) / 2.
    The stack's CPU is the kernel CPU per message (split tx:rx as STACK_SPLIT), the rest of
    the loopback time is the wake-up. A hop whose difference is below zero (noise larger
    than the hop) is 0 and the next hop takes the rest of its path, so that the hops still
    add up to the measured same-node path."""
    lo = latency["loopback"]
    stack = min(cpu_one_way, lo)
    veth = max(latency["veth"] - lo, 0.0)
    bridge = max(latency["bridge"] - lo - 2 * veth, 0.0)
    conntrack = max(latency["bridge-conntrack"] - lo - 2 * veth - bridge, 0.0)
    vxlan = max((latency["vxlan"] - latency["native"]) / 2, 0.0)
    tx, rx = (stack * s / sum(STACK_SPLIT) for s in STACK_SPLIT)
    return np.array([tx, rx, lo - stack, veth, bridge, conntrack, vxlan, vxlan])


def least_disturbed(values: np.ndarray, rounds: np.ndarray) -> float:
    """The lowest per-pass median: interference (another process on the CPU, a busy spell)
    only ever adds latency, so the least disturbed pass is the best view of the path."""
    return float(min(np.median(values[rounds == r]) for r in np.unique(rounds)))


def one_way(rr: pd.DataFrame) -> dict[str, float]:
    """Per data path, half the round trip of its least disturbed pass (seconds)."""
    return {n: least_disturbed(g["value"].to_numpy(), g["round"].to_numpy()) / 2
            for n, g in rr.groupby("variant")}


def loopback(rr: pd.DataFrame, cpu: pd.DataFrame) -> tuple[float, float]:
    """(one-way loopback latency, kernel CPU per message over loopback), seconds: as
    `one_way`, and half the median over passes of the kernel CPU of client and server per
    round trip (getrusage)."""
    kernel = cpu[(cpu["variant"] == "loopback") & (cpu["metric"] == "cpu_kernel")]["value"].median() / 2
    return one_way(rr[rr["variant"] == "loopback"])["loopback"], float(kernel)


def datapath_fit(rr: pd.DataFrame, cpu: pd.DataFrame) -> dict[str, Estimate]:
    """DATAPATH_PARAMETERS from `rr` samples (per variant and pass) and `cpu_kernel` rows;
    intervals: bootstrap over the round trips within each pass, widened to the range of the
    per-pass values."""
    missing = [v for v in _NEEDED if v not in set(rr["variant"])]
    if missing:
        raise ValueError(f"data paths not measured: {', '.join(missing)}")
    kernel = loopback(rr, cpu)[1]
    passes_of = list(rr.groupby(["variant", "round"]))
    groups = [{"value": g["value"].to_numpy(dtype=float)} for _, g in passes_of]
    variant_of = [variant for (variant, _), _ in passes_of]

    def statistic(gs: Groups) -> np.ndarray:
        best: dict[str, float] = {}
        for n, g in zip(variant_of, gs):
            best[n] = min(best.get(n, np.inf), float(np.median(g["value"])) / 2)
        return datapath_parameters(best, kernel)

    boot = _estimates(*_bootstrap(groups, statistic), len(rr))
    passes = []
    for r, part in rr.groupby("round"):
        cpu_r = cpu[cpu["round"] == r]
        if set(_NEEDED) <= set(part["variant"]) and len(cpu_r):
            passes.append(datapath_parameters(one_way(part), loopback(part, cpu_r)[1]))
    passes = np.array(passes)
    return {name: e.widened(passes[:, i].min(), passes[:, i].max()) if len(passes) else e
            for i, (name, e) in enumerate(zip(DATAPATH_PARAMETERS, boot))}


# -- sync times ------------------------------------------------------------------------------
def linear_fit(frame: pd.DataFrame, regressors: Sequence[str]) -> list[Estimate]:
    """t = a + sum(b_i x_i) by least squares on relative error with every cost at least 0
    (scipy's NNLS: a time the data would split into a negative part and a larger positive
    one goes to the other terms); [a, b_1, ...]; the interval from resampling the rows."""
    columns = ("value", *regressors)

    def statistic(gs: Groups) -> np.ndarray:
        g = gs[0]
        t = g["value"]
        design = np.column_stack([np.ones(len(t))] + [g[r] for r in regressors]) / t[:, None]
        scale = design.max(axis=0)
        coef, _ = optimize.nnls(design / scale, np.ones(len(t)))
        return coef / scale

    groups = [{c: frame[c].to_numpy(dtype=float) for c in columns}]
    return _estimates(*_bootstrap(groups, statistic), len(frame))


def predict(coef: Sequence[Estimate], frame: pd.DataFrame, regressors: Sequence[str]) -> np.ndarray:
    """A linear fit's times for the rows of `frame`."""
    return coef[0].value + sum(c.value * frame[r].to_numpy(dtype=float) for c, r in zip(coef[1:], regressors))
