"""Plots of a sweep summary that tell the story: what differs, by how much, and why.

A figure puts one swept axis on x and tells one *series* axis apart by colour and marker
(the kube-proxy mode when it varies, or the data path when eBPF settings vary with it;
else the first text or true/false axis). Every
other swept axis is a *facet*: one row of panels per combination of its values, so every
slice of a multi-axis sweep is drawn; an axis zipped with x moves along with it. Each row
holds panels (`PANELS`): p50 and p99 latency, the latency added over the fastest series
at the same x (a difference panel: lines that lie on each other in the first two come
apart here), and requests failed by drop reason when any request failed.

Y axes are not forced to 0: they show where the values are (a log axis where they span
more than `LOG_SPAN` times), with margins so that no marker or error bar is clipped;
a text x axis gets bars. Units are on every axis. Overlapping series stay visible:
each is drawn thinner and with a smaller marker than the one before it, on top.

Figures are drawn with matplotlib's Agg renderer through `Figure` directly, never
pyplot, so plotting needs no display, touches no global state and gives the same PNG
bytes for the same table. `draw` puts one panel into a given matplotlib Axes.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from dataclasses import dataclass, replace
from typing import Any, get_args

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator
from matplotlib.transforms import offset_copy
from pydantic import BeforeValidator

from netmodel.costs.profile import PARAMETERS
from netmodel.scenario.schema import BitRate, Duration, Rate, Scenario, Size
from netmodel.units import format_quantity
from netmodel.vocabulary import DROP_COLUMNS, DROP_REASONS, KUBE_PROXY_MODES

MODE = "kube_proxy.mode"
DATAPLANE = "dataplane"
"""The summary column naming a point's data path: the series instead of the mode when
eBPF settings swept with the mode tell more data paths apart than the mode does."""
MODE_COLOURS = {"iptables": "#d62728", "ipvs": "#1f77b4", "nftables": "#2ca02c", "ebpf": "#9467bd"}
"""One fixed colour per kube-proxy mode, the same in every plot."""
MODE_MARKERS = {"iptables": "o", "ipvs": "s", "nftables": "^", "ebpf": "D"}
"""One marker per mode too, so that lines that lie on each other stay apart in print."""
assert tuple(MODE_COLOURS) == tuple(MODE_MARKERS) == KUBE_PROXY_MODES
SERIES_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
                  "#17becf")
"""Colours of the values of any other series axis, in order of appearance."""
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REASON_STYLES = dict(zip(DROP_REASONS, itertools.cycle(
    ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1))))))
"""Line style of each drop reason in a failure panel (colour: the series)."""
REASON_HATCHES = dict(zip(DROP_REASONS, itertools.cycle(("", "//", "..", "xx", "\\\\", "++", "oo"))))
"""Hatching of each drop reason's segment in a failure bar."""

LOG_SPAN = 20.0
"""Use a log axis when the largest value is more than this many times the smallest."""
FASTEST = "fastest"
"""`Panel.versus`: the difference to the lowest series value at the same x."""
_PANEL_WIDTH, _PANEL_HEIGHT, _DPI = 4.0, 3.0, 110
_DODGE_POINTS = 2.0
"""Series i is drawn (i - (n - 1) / 2) times this many points to the side of its x."""
_EQUAL = 1e-9
"""Values within this share of each other differ only by floating-point rounding."""
_MIN_SPAN = 0.04
"""A linear y axis spans at least this share of its largest value: a flat line stays flat
instead of filling the panel with noise."""

COUNT_UNITS = {
    "cluster.nodes": "nodes", "cluster.pods_per_node": "Pods", "cluster.mtu": "B",
    "cluster.softirq_cores": "cores", "cluster.node_cidr_mask": "prefix bits",
    "cluster.conntrack_max": "entries", "services.count": "Services",
    "services.endpoints_per_service": "Pods", "kube_proxy.burst_syncs": "syncs",
    "workload.requests_per_connection": "requests", "workload.server.workers": "workers",
    "workload.server.queue_limit": "requests", "external.load_balancer.instances": "instances",
    "external.ingress.replicas": "Pods", "external.ingress.workers": "workers",
    "external.kubectl.apiserver_cores": "cores", "external.kubectl.max_requests_inflight": "requests",
    "dns.ndots": "dots", "dns.host_search_domains": "domains", "dns.coredns_replicas": "Pods",
    "dns.coredns_cores": "cores", "control_plane.sampled_nodes": "nodes", "run.requests": "requests",
    "run.replications": "replications",
}
"""The unit of a plain-number scenario field on an axis (fields not listed are pure numbers)."""

_DIMENSION_MARKERS = {next(m for m in alias.__metadata__ if isinstance(m, BeforeValidator)): dim
                      for alias, dim in ((Duration, "time"), (Size, "size"),
                                         (BitRate, "bitrate"), (Rate, "rate"))}
"""The unit-parsing validator of each quantity type in the schema -> its dimension."""


@dataclass(frozen=True)
class Panel:
    """One kind of panel: a summary column on the y axis.

    `dimension`: 'time' (seconds), 'cpu' (core-seconds), 'share' (0..1), 'rate' (per
    second) or 'entries'; `ci`: the column of its 95% half-width; `point`: one value per
    point (the same on every traffic kind's row); `versus`: draw the difference to
    FASTEST or to a named series value at the same x instead of the value."""

    column: str
    label: str
    dimension: str
    ci: str | None = None
    point: bool = False
    versus: str | None = None


FAILED = "failed_share"
PANELS = {
    "p50": Panel("p50_s", "p50 latency", "time"),
    "p99": Panel("p99_s", "p99 latency", "time", ci="p99_s_ci95"),
    "mean": Panel("mean_s", "mean latency", "time", ci="mean_s_ci95"),
    "p50-added": Panel("p50_s", "p50 latency − fastest", "time", versus=FASTEST),
    "p99-added": Panel("p99_s", "p99 latency − fastest", "time", ci="p99_s_ci95",
                       versus=FASTEST),
    "failed": Panel(FAILED, "requests failed", "share"),
    "throughput": Panel("throughput_rps", "throughput", "rate"),
    "rule-lookup": Panel("rule_lookup_cpu_s_per_request", "rule-lookup CPU per request", "cpu"),
    "softirq": Panel("softirq_cpu_s_per_request", "softirq CPU per request", "cpu"),
    "setup-p50": Panel("setup_p50_s", "p50 connection set-up", "time"),
    "setup-p99": Panel("setup_p99_s", "p99 connection set-up", "time"),
    "programming-p50": Panel("network_programming_p50_s", "p50 network programming", "time",
                             point=True),
    "programming-p99": Panel("network_programming_p99_s", "p99 network programming", "time",
                             point=True),
    "stale-failed": Panel("stale_endpoint_share", "requests failed: stale-endpoint", "share",
                          point=True),
    "stale-window-p99": Panel("stale_window_p99_s", "p99 stale window", "time", point=True),
    "conntrack-entries": Panel("conntrack_entries", "conntrack entries, busiest node", "entries",
                               point=True),
    "conntrack-fill": Panel("conntrack_fill", "of the conntrack table", "share", point=True),
}
"""The standard panels by name (`netmodel.plot(ax, summary, name)`)."""


@dataclass(frozen=True)
class Layout:
    """How a summary is laid out: `x` on the x axis (None: one bar per series value),
    `series` told apart by colour, `facets` one row each, `along` moving with x,
    `with_series` moving with the series (zipped with it: one value per series)."""

    x: str | None
    series: str
    facets: tuple[str, ...]
    along: tuple[str, ...]
    with_series: tuple[str, ...] = ()

    def numeric(self, rows: pd.DataFrame) -> bool:
        return self.x is not None and _is_numeric(rows[self.x])


# -- what a sweep's summary gives ---------------------------------------------------------
def swept_axes(summary: pd.DataFrame) -> list[str]:
    """The swept fields of a sweep's summary: the columns between `point_id` and
    `kube_proxy.mode`, and the mode when it takes more than one value."""
    columns = list(summary.columns)
    if "point_id" not in columns:
        return [MODE] if summary[MODE].nunique() > 1 else []
    axes = columns[columns.index("point_id") + 1:columns.index(MODE)]
    return axes + ([MODE] if summary[MODE].nunique() > 1 else [])


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """The summary with the shares the panels draw: `failed_share` (dropped over
    requests), `<drop column>_share` per reason, and the point's `stale_endpoint_share`."""
    requests = df["requests"].where(df["requests"] > 0)
    extra = {FAILED: df["dropped"] / requests}
    extra.update({f"{c}_share": df[c] / requests for c in DROP_COLUMNS if c in df})
    if "point_id" in df:
        extra["stale_endpoint_share"] = df["point_id"].map(stale_endpoint_share(df))
    return df.assign(**extra)


def stale_endpoint_share(df: pd.DataFrame) -> pd.Series:
    """Per point_id: requests dropped as stale-endpoint over all requests, every traffic kind
    of the point together (NaN for a point without requests)."""
    totals = df.groupby("point_id")[["dropped_stale_endpoint", "requests"]].sum()
    return totals["dropped_stale_endpoint"] / totals["requests"].where(totals["requests"] > 0)


def axis_dimension(axis: str) -> str:
    """Dimension of a scenario field given by dotted path: 'time', 'size', 'bitrate',
    'rate', or 'count' for plain numbers (and anything that is not a quantity)."""
    head, _, rest = axis.partition(".")
    if head == "costs":
        return PARAMETERS.get(rest, "count")
    model: Any = Scenario
    field = None
    for name in axis.split("."):
        fields = getattr(model, "model_fields", None) or {}
        if name not in fields:
            return "count"
        field = fields[name]
        model = field.annotation
    markers = [*field.metadata,
               *(m for arg in get_args(field.annotation) for m in getattr(arg, "__metadata__", ()))]
    return next((_DIMENSION_MARKERS[m] for m in markers
                 if isinstance(m, BeforeValidator) and m in _DIMENSION_MARKERS), "count")


def layout(rows: pd.DataFrame, axes: list[str], x: str | None = None,
           series: str | None = None) -> Layout:
    """The layout of `rows` with swept `axes`: x the given axis (default: the first
    numeric one, else the first other than the series), series the given axis (default:
    the mode if it varies, else the first text axis), every other axis a facet unless it
    moves along with x or with the series."""
    swept = [a for a in dict.fromkeys([*axes, MODE]) if a in rows]
    if series is None:
        varying = [a for a in swept if rows[a].nunique(dropna=False) > 1]
        texts = [a for a in varying if not _is_numeric(rows[a])]
        series = MODE if MODE in varying else (texts[0] if texts else MODE)
        if series == MODE and DATAPLANE in rows and rows[DATAPLANE].nunique() > rows[MODE].nunique():
            series = DATAPLANE
    others = [a for a in swept if a != series and rows[a].nunique(dropna=False) > 1
              and not (series == DATAPLANE and _moves_along(rows, DATAPLANE, a))]
    if x is None:
        numeric = [a for a in others if _is_numeric(rows[a])]
        x = (numeric or others or [None])[0]
    with_series = tuple(a for a in others if a != x and _moves_along(rows, series, a))
    along = tuple(a for a in others if a != x and a not in with_series and _moves_along(rows, x, a))
    facets = tuple(a for a in others if a != x and a not in along and a not in with_series)
    return Layout(x, series, facets, along, with_series)


# -- the standard figures -----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FigurePlan:
    """A figure not drawn yet: `figure`'s arguments (picklable, so that a sweep's workers
    can draw them side by side); calling the plan draws it."""

    rows: pd.DataFrame
    lay: Layout
    panels: list[Panel]
    title: str

    def __call__(self) -> Figure:
        return figure(self.rows, self.lay, self.panels, self.title)

    def panel_count(self) -> int:
        """How many panels (axes) the figure has: what drawing it costs, roughly."""
        return len(self.panels) * len(set(_facet_titles(self.rows, self.lay)))


def summary_figures(df: pd.DataFrame, axes: list[str], series: str | None = None) -> dict[str, Figure]:
    """The figures of a summary table with swept `axes`, by file name (without .png): see
    `figure_plans`."""
    return {name: plan() for name, plan in figure_plans(df, axes, series).items()}


def render_png(plan: FigurePlan) -> bytes:
    """Draw a planned figure and return its PNG (in a worker process as well as here)."""
    return png_bytes(plan())


def figure_plans(df: pd.DataFrame, axes: list[str], series: str | None = None) -> dict[str, FigurePlan]:
    """The figures of a summary table with swept `axes`, planned, by file name (without .png).

    Per traffic kind and x axis, `<x>__<traffic>`: p50, p99, the p50 added over the fastest
    series (with more than one) and the requests failed by reason (when any failed), and
    `<x>__<traffic>-setup`: p50 and p99 of connection set-up (when connections were); with
    no swept axis but the series, `modes__<traffic>` (or `<series>__<traffic>`), bars.
    With two or more kube-proxy modes, `<x>__mechanism`: the rule-lookup CPU and all softirq
    CPU per request and the p50 added over the fastest, for the traffic kind whose lookup
    differs most. With the columns filled in, `<x>__conntrack` (the busiest node's entries and
    fill), `<x>__control-plane` (p50 and p99 network programming) and
    `<x>__stale-endpoints` (stale-endpoint failures and the p99 stale window).
    """
    df = with_derived(df)
    if not len(df):
        return {}
    lay = layout(df, axes, series=series)
    stem = _safe(lay.x) if lay.x else ("modes" if lay.series == MODE else _safe(lay.series))
    figures: dict[str, FigurePlan] = {}
    for traffic in df["traffic"].unique():
        rows = df[df["traffic"] == traffic]
        for x in _x_axes(rows, axes, lay):
            here = layout(rows, axes, x, lay.series)
            figures[f"{_safe(x) if x else stem}__{_safe(traffic)}"] = FigurePlan(
                rows, here, _traffic_panels(rows, here), f"{traffic}")
            if "setup_p50_s" in rows and rows["setup_p50_s"].notna().any():
                figures[f"{_safe(x) if x else stem}__{_safe(traffic)}-setup"] = FigurePlan(
                    rows, here, [PANELS["setup-p50"], PANELS["setup-p99"]],
                    f"{traffic}: connection set-up (a kept-alive request's mean hides it)")
    for x in _x_axes(df, axes, lay):
        here = layout(df, axes, x, lay.series)
        figures.update(_point_figures(df, here, _safe(x) if x else stem))
    return figures


def _x_axes(rows: pd.DataFrame, axes: list[str], lay: Layout) -> list[str | None]:
    """Every numeric axis gets a figure of its own; with none, the layout's x."""
    numeric = [a for a in axes if a in rows and a != lay.series and _is_numeric(rows[a])
               and rows[a].nunique() > 1]
    return numeric or [lay.x]


def _traffic_panels(rows: pd.DataFrame, lay: Layout) -> list[Panel]:
    panels = [PANELS["p50"], PANELS["p99"]]
    if rows[lay.series].nunique() > 1:
        panels.append(PANELS["p50-added"])
    if (rows["dropped"] > 0).any():
        panels.append(PANELS["failed"])
    return panels


def _point_figures(df: pd.DataFrame, lay: Layout, stem: str) -> dict[str, FigurePlan]:
    """The mechanism, conntrack, control-plane and stale-endpoint figures along one x."""
    figures: dict[str, FigurePlan] = {}
    modes = df[MODE].nunique() > 1 and lay.series in (MODE, DATAPLANE)
    looked_up = df.groupby("traffic")["rule_lookup_cpu_s_per_request"].agg(
        lambda v: v.max() - v.min()).dropna()
    if modes and len(looked_up) and looked_up.max() > 0:
        traffic = looked_up.idxmax()
        figures[f"{stem}__mechanism"] = FigurePlan(
            df[df["traffic"] == traffic], lay,
            [PANELS["rule-lookup"], PANELS["softirq"],
             replace(PANELS["p50-added"], label="p50 latency − fastest")],
            f"why: the rule lookup of a new connection and the data path's CPU, {traffic}")
    point = df[df["traffic"] == df["traffic"].iloc[0]]
    if point["conntrack_entries"].notna().any():
        figures[f"{stem}__conntrack"] = FigurePlan(
            point, lay, [PANELS["conntrack-entries"], PANELS["conntrack-fill"]],
            "conntrack, all traffic kinds")
    if point["network_programming_p50_s"].notna().any():
        figures[f"{stem}__control-plane"] = FigurePlan(
            point, lay, [PANELS["programming-p50"], PANELS["programming-p99"]],
            "control plane: network programming latency")
        figures[f"{stem}__stale-endpoints"] = FigurePlan(
            point, lay, [PANELS["stale-failed"], PANELS["stale-window-p99"]],
            "stale endpoints, all traffic kinds")
    return figures


def figure(rows: pd.DataFrame, lay: Layout, panels: list[Panel], title: str) -> Figure:
    """One figure of `rows` (one traffic kind, or one row per point): a row of `panels`
    per facet, the y axes shared down each column."""
    facets = _facet_titles(rows, lay)
    keys = list(dict.fromkeys(facets))
    fig = Figure(figsize=(_PANEL_WIDTH * len(panels) + 1.6, _PANEL_HEIGHT * len(keys) + 0.6),
                 layout="constrained")
    grid = fig.subplots(len(keys), len(panels), squeeze=False, sharex=True, sharey="col")
    order = _series_order(rows, lay)
    for j, panel in enumerate(panels):
        values = _values(rows.assign(_facet=facets), lay, panel)
        scale = _y_scale(values, panel)
        for i, key in enumerate(keys):
            _draw(grid[i, j], values[values["facet"] == key], lay, panel, scale, order, rows)
        if lay.x is not None and lay.numeric(rows):
            _x_scale(grid[-1, j], rows[lay.x])
        _floor_span(grid[0, j], scale)
    for i, key in enumerate(keys):
        if key:
            grid[i, 0].set_title(key, loc="left", fontsize="medium")
    for ax in grid[-1]:
        ax.set_xlabel(_axis_label(lay.x, rows) if lay.x else lay.series)
    hidden = {p.versus for p in panels} if all(p.versus not in (None, FASTEST) for p in panels) else set()
    handles = [h for h in _handles(order, lay, rows) if h.get_label() not in hidden]  # a baseline
    fig.legend(handles=handles, title=lay.series, loc="outside lower center",
               ncols=min(len(order), 8), fontsize="small")
    what = f"{lay.x} sweep" if lay.x else f"by {lay.series}"
    fig.suptitle("; ".join([f"{title}: {what}", *_along_notes(rows, lay)]))
    return fig


def draw(ax: Axes, summary: pd.DataFrame, panel: str | Panel = "p99", *, x: str | None = None,
         traffic: str | None = None, series: str | None = None,
         where: dict[str, Any] | None = None, axes: list[str] | None = None) -> Axes:
    """Draw one panel (a name of `PANELS`, a `Panel`, or any numeric summary column) of
    a sweep's summary into `ax`: `traffic` (default: the first kind), `x` and `series` as
    in `layout`, the other axes at the values in `where` (default: their first value)."""
    panel = _panel(panel)
    df = with_derived(summary)
    traffic = traffic if traffic is not None else df["traffic"].iloc[0]
    rows = df[df["traffic"] == traffic]
    lay = layout(rows, axes if axes is not None else swept_axes(summary), x, series)
    held = {a: (where or {}).get(a, rows[a].iloc[0]) for a in lay.facets}
    for axis, value in held.items():
        rows = rows[_equals(rows[axis], value)]
    if not len(rows):
        raise ValueError(f"no rows where {held}")
    values = _values(rows.assign(_facet=""), lay, panel)
    scale = _y_scale(values, panel)
    order = _series_order(rows, lay)
    _draw(ax, values, lay, panel, scale, order, rows)
    if lay.x is not None and lay.numeric(rows):
        _x_scale(ax, rows[lay.x])
    _floor_span(ax, scale)
    ax.set_xlabel(_axis_label(lay.x, rows) if lay.x else lay.series)
    ax.set_title(", ".join([traffic if not panel.point else "",
                            *(f"{a} = {_show(a, pd.Series([v]))}" for a, v in held.items())]).strip(", "),
                 loc="left", fontsize="medium")
    ax.legend(handles=_handles(order, lay, rows), title=lay.series, fontsize="small")
    return ax


def _panel(panel: str | Panel) -> Panel:
    if isinstance(panel, Panel):
        return panel
    if panel in PANELS:
        return PANELS[panel]
    dimension = "time" if panel.endswith("_s") else "share" if panel.endswith(("_share", "_fill")) \
        else "entries"
    return Panel(panel, panel, dimension)


# -- values -------------------------------------------------------------------------------
def _values(rows: pd.DataFrame, lay: Layout, panel: Panel) -> pd.DataFrame:
    """Long table of what a panel draws: facet, x, series, (reason,) y and ci in SI."""
    with_ci = panel.ci is not None and panel.ci in rows and rows["replications"].max() > 1
    base = pd.DataFrame({"facet": rows["_facet"].to_numpy(),
                         "x": rows[lay.x].to_numpy() if lay.x else "",
                         "series": rows[lay.series].astype(str).to_numpy()})
    if panel.column == FAILED:
        reasons = [c for c in DROP_COLUMNS if c in rows and (rows[c] > 0).any()]
        return pd.concat([base.assign(reason=DROP_REASONS[DROP_COLUMNS.index(c)],
                                      y=rows[f"{c}_share"].to_numpy(), ci=math.nan)
                          for c in reasons] or [base.assign(reason="", y=math.nan, ci=math.nan)],
                         ignore_index=True)
    values = base.assign(reason="", y=rows[panel.column].astype(float).to_numpy(),
                         ci=rows[panel.ci].astype(float).to_numpy() if with_ci else math.nan)
    return _versus(values, panel.versus) if panel.versus else values


def _versus(values: pd.DataFrame, versus: str) -> pd.DataFrame:
    """Each value minus the reference at its facet and x: the lowest series value
    (FASTEST) or the named series' value (which is then left out); intervals combined."""
    parts = []
    for _, group in values.groupby(["facet", "x"], sort=False, dropna=False):
        known = group[group["y"].notna()]
        if versus == FASTEST:
            ref = known.loc[known["y"].idxmin()] if len(known) else None
        else:
            match = known[known["series"] == versus]
            ref = match.iloc[0] if len(match) else None
            group = group[group["series"] != versus]
        if ref is None:
            parts.append(group.assign(y=math.nan))
            continue
        difference = group["y"] - ref["y"]
        # Equal up to rounding is equal: no axis of 1e-17 s.
        difference = difference.where(difference.abs() > _EQUAL * abs(ref["y"]), 0.0)
        parts.append(group.assign(y=difference, ci=np.sqrt(group["ci"] ** 2 + ref["ci"] ** 2)))
    return pd.concat(parts, ignore_index=True) if parts else values.iloc[:0]


@dataclass(frozen=True)
class _Scale:
    divisor: float
    unit: str
    log: bool


def _y_scale(values: pd.DataFrame, panel: Panel) -> _Scale:
    """Unit and log-or-linear for a panel's values (all facets together)."""
    y = values["y"].abs().dropna()
    top = float(y.max()) if len(y) else 0.0
    if panel.dimension in ("time", "cpu"):
        divisor, unit = _time_unit(top)
    else:
        divisor, unit = {"share": (0.01, "%"), "rate": (1.0, "requests/s")}.get(
            panel.dimension, (1.0, panel.dimension))
    positive = values["y"].dropna()
    log = (panel.versus is None and len(positive) > 0 and positive.min() > 0
           and positive.max() > LOG_SPAN * positive.min())
    return _Scale(divisor, unit, bool(log))


def _time_unit(top: float) -> tuple[float, str]:
    if top == 0:
        return 1e-6, "µs"
    for divisor, unit in ((1e-6, "ns"), (1e-3, "µs"), (1.0, "ms")):
        if top < divisor:
            return divisor * 1e-3, unit
    return 1.0, "s"


# -- drawing ------------------------------------------------------------------------------
def _draw(ax: Axes, values: pd.DataFrame, lay: Layout, panel: Panel, scale: _Scale,
          order: list[str], rows: pd.DataFrame) -> None:
    reasons = [r for r in dict.fromkeys(values["reason"]) if r]
    name = panel.label if panel.versus in (None, FASTEST) else f"{panel.label} − {panel.versus}"
    name += f": {reasons[0]}" if len(reasons) == 1 else ""
    ax.set_ylabel(name + (f" ({scale.unit})" if scale.unit else ""))
    ax.grid(True, alpha=0.3)
    ax.set_axisbelow(True)
    if scale.log:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis)
    if values["y"].isna().all():
        ax.text(0.5, 0.5, _empty_note(panel), ha="center", va="center", transform=ax.transAxes,
                color="0.4", fontsize="small")
        return
    if lay.x is not None and lay.numeric(rows):
        _lines(ax, values, lay, order, scale, rows)
    else:
        _bars(ax, values, lay, order, scale, rows)
    if len(reasons) > 1:
        _reason_legend(ax, reasons)
    if panel.versus is not None:
        ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=1)
    ax.margins(y=0.1)


def _empty_note(panel: Panel) -> str:
    if panel.column == FAILED:
        return "no request failed at any point"
    if panel.dimension == "time" and not panel.point:
        return ("no value at any point\n(no measured request: all before\n"
                "run.warmup, or none completed)")
    return "no value at any point"


def _lines(ax: Axes, values: pd.DataFrame, lay: Layout, order: list[str], scale: _Scale,
           rows: pd.DataFrame) -> None:
    divisor, _ = _x_unit(lay.x, rows[lay.x])
    several = values["reason"].nunique() > 1
    for i, series in enumerate(order):
        # Each series a few points to the side: markers and error bars at one x stay apart.
        dodge = offset_copy(ax.transData, fig=ax.figure, units="points",
                            x=(i - (len(order) - 1) / 2) * _DODGE_POINTS)
        for reason, mine in values[values["series"] == series].groupby("reason", sort=False):
            mine = mine.sort_values("x", kind="stable")
            style = _style(i, series, lay.series)
            if several:
                style.update(linestyle=REASON_STYLES[reason], label=f"{series}: {reason}")
            ci = mine["ci"] / scale.divisor if mine["ci"].notna().any() else None
            drawn = ax.errorbar(mine["x"].astype(float) / divisor, mine["y"] / scale.divisor,
                                yerr=ci, capsize=3, **style)
            # After the data limits took the points where they are: only the picture moves.
            for artist in (drawn.lines[0], *drawn.lines[1], *drawn.lines[2]):
                artist.set_transform(dodge)


def _bars(ax: Axes, values: pd.DataFrame, lay: Layout, order: list[str], scale: _Scale,
          rows: pd.DataFrame) -> None:
    """Grouped bars: one group per category of x (one group without x), one bar per
    series value; failure bars stacked by reason."""
    categories = list(dict.fromkeys(values["x"].astype(str)))
    width = 0.8 / len(order)
    for i, series in enumerate(order):
        bottom = np.zeros(len(categories))
        for reason, mine in values[values["series"] == series].groupby("reason", sort=False):
            mine = mine.set_index(mine["x"].astype(str)).reindex(categories)
            heights = (mine["y"] / scale.divisor).to_numpy()
            ci = mine["ci"] / scale.divisor if mine["ci"].notna().any() else None
            ax.bar(np.arange(len(categories)) + (i - (len(order) - 1) / 2) * width,
                   np.nan_to_num(heights), width * 0.95, bottom=bottom, yerr=ci, capsize=3,
                   color=_colour(i, series, lay.series), hatch=REASON_HATCHES.get(reason, ""),
                   edgecolor="0.2", linewidth=0.5, label=series)
            bottom = bottom + np.nan_to_num(heights)
    ax.set_xticks(range(len(categories)), categories if lay.x else [""] * len(categories))
    ax.set_xlim(-0.6, len(categories) - 0.4)


def _reason_legend(ax: Axes, reasons: list[str]) -> None:
    ax.legend(handles=[Line2D([], [], color="0.2", linestyle=REASON_STYLES[r], label=r)
                       for r in reasons], title="drop reason", fontsize="x-small")


def _handles(order: list[str], lay: Layout, rows: pd.DataFrame) -> list:
    """Legend entries of the series: a line with its marker, or a patch beside bars."""
    if lay.x is not None and lay.numeric(rows):
        return [Line2D([], [], **_style(i, s, lay.series)) for i, s in enumerate(order)]
    return [Patch(color=_colour(i, s, lay.series), label=s) for i, s in enumerate(order)]


def _style(i: int, series: str, axis: str) -> dict[str, Any]:
    """Series i: its colour and marker, each drawn thinner and smaller than the one
    before it and on top, so that lines lying on each other all stay visible."""
    marker = MODE_MARKERS.get(series) if axis in (MODE, DATAPLANE) else None
    return dict(color=_colour(i, series, axis), marker=marker or SERIES_MARKERS[i % len(SERIES_MARKERS)],
                markersize=max(9.0 - 1.6 * i, 3.5), linewidth=max(2.8 - 0.55 * i, 1.0),
                zorder=2 + i, label=series)


def _colour(i: int, series: str, axis: str) -> str:
    if axis in (MODE, DATAPLANE) and series in MODE_COLOURS:
        return MODE_COLOURS[series]
    return SERIES_COLOURS[i % len(SERIES_COLOURS)]


def _series_order(rows: pd.DataFrame, lay: Layout) -> list[str]:
    found = list(dict.fromkeys(rows[lay.series].astype(str)))
    if lay.series == MODE:
        return [m for m in KUBE_PROXY_MODES if m in found] + [m for m in found if m not in MODE_COLOURS]
    return found


def _x_scale(ax: Axes, values: pd.Series) -> None:
    positive = values[values > 0]
    if len(positive) == len(values) and len(values) and values.max() > LOG_SPAN * values.min():
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)


def _log_ticks(axis: Axis) -> None:
    """A log axis's ticks: plain numbers (10, 100, not 10^2) and minor ticks in view."""
    axis.set_minor_locator(_MinorInView())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


class _MinorInView(LogLocator):
    """A log axis's minor ticks, matplotlib's, but only those in view: matplotlib makes
    a tick (five artists) for the decades around the view too. The same pixels, 6-10%
    less time to draw the quickstart's figures."""

    def __init__(self) -> None:
        super().__init__(subs="auto")

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        ticks = super().tick_values(vmin, vmax)
        low, high = sorted((vmin, vmax))
        return ticks[(ticks >= low * (1 - 1e-9)) & (ticks <= high * (1 + 1e-9))]


def _floor_span(ax: Axes, scale: _Scale) -> None:
    """Widen a linear y axis that spans less than _MIN_SPAN of its top (shared down the
    column, so once is enough)."""
    if scale.log:
        return
    low, high = ax.get_ylim()
    top = max(abs(low), abs(high))
    if top > 0 and high - low < _MIN_SPAN * top:
        middle = (low + high) / 2
        ax.set_ylim(middle - _MIN_SPAN * top / 2, middle + _MIN_SPAN * top / 2)


# -- labels -------------------------------------------------------------------------------
def _axis_label(axis: str, rows: pd.DataFrame) -> str:
    _, unit = _x_unit(axis, rows[axis]) if _is_numeric(rows[axis]) else (1.0, "")
    return f"{axis} ({unit})" if unit else axis


def _x_unit(axis: str, values: pd.Series) -> tuple[float, str]:
    """(divisor, unit label) to show SI values of field `axis` on an axis."""
    dimension = axis_dimension(axis)
    if dimension == "time":
        top = values.abs().max()
        return (1e-6, "µs") if top < 1e-3 else (1e-3, "ms") if top < 1 else (1.0, "s")
    return {"size": (1.0, "B"), "bitrate": (1e9, "Gbit/s"),
            "rate": (1.0, "requests/s")}.get(dimension, (1.0, COUNT_UNITS.get(axis, "")))


def _facet_titles(rows: pd.DataFrame, lay: Layout) -> list[str]:
    """Per row: 'axis = value, ...' of its facet axes ('' without facets)."""
    if not lay.facets:
        return [""] * len(rows)
    shown = {a: rows[a].map(lambda v, a=a: _show(a, pd.Series([v]))) for a in lay.facets}
    return [", ".join(f"{a} = {shown[a].iloc[i]}" for a in lay.facets) for i in range(len(rows))]


def _along_notes(rows: pd.DataFrame, lay: Layout) -> list[str]:
    moving = [f"{a} moves along: " + ", ".join(_show(a, pd.Series([v]))
                                               for v in dict.fromkeys(rows[a]))
              for a in lay.along]
    pairs = {a: dict(zip(rows[lay.series], rows[a])) for a in lay.with_series}
    return moving + [f"{a} with {lay.series}: " + ", ".join(f"{_show(a, pd.Series([v]))} with {s}"
                                                           for s, v in by_series.items())
                     for a, by_series in pairs.items()]


def _show(axis: str, values: pd.Series) -> str:
    """The first value of an axis for a title: '10', '25Gbps', '1.5ms', 'vxlan'."""
    if _is_numeric(values):
        unit = COUNT_UNITS.get(axis) if axis_dimension(axis) == "count" else None
        text = format_quantity(float(values.iloc[0]), axis_dimension(axis))
        return f"{text} {unit}" if unit else text
    return str(values.iloc[0])


def _moves_along(rows: pd.DataFrame, x: str | None, other: str) -> bool:
    """An axis zipped with x takes one value per value of x: it moves along."""
    if x is None:
        return False
    return bool(rows.groupby(x, dropna=False)[other].nunique(dropna=False).max() <= 1)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _equals(values: pd.Series, value: Any) -> pd.Series:
    """values == value, where a missing value equals a missing value."""
    return values.isna() if pd.isna(value) else values == value


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def png_bytes(fig: Figure) -> bytes:
    """The PNG of `fig` as every plot is saved: the same bytes for the same figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
