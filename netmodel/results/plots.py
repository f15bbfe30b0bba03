"""Plots of a sweep summary: latency against each swept axis, one line per kube-proxy mode.

Each figure has two panels, p50 latency (left) and p99 latency (right, with 95%
error bars when there are replications), for one traffic kind. Swept axes that vary
independently of the plotted one are held at their first value (the title says
which); axes zipped with it move along. Figures are drawn with matplotlib's Agg
renderer through `Figure` directly, never pyplot, so plotting needs no display,
touches no global backend state and gives the same PNG bytes for the same table.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, get_args

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from pydantic import BeforeValidator

from netmodel.costs.profile import PARAMETERS
from netmodel.scenario.schema import BitRate, Duration, Rate, Scenario, Size
from netmodel.units import format_quantity
from netmodel.vocabulary import KUBE_PROXY_MODES

MODE = "kube_proxy.mode"
MODE_COLOURS = {"iptables": "#d62728", "ipvs": "#1f77b4", "nftables": "#2ca02c", "ebpf": "#9467bd"}
"""One fixed colour per kube-proxy mode, the same in every plot."""
MODE_MARKERS = {"iptables": "o", "ipvs": "s", "nftables": "^", "ebpf": "D"}
"""One marker per mode too, so that lines that lie on each other stay apart in print."""
assert tuple(MODE_COLOURS) == tuple(MODE_MARKERS) == KUBE_PROXY_MODES

_FIGSIZE = (10.0, 4.0)
_DPI = 120
_LOG_SPAN = 20.0
"""Use a log x axis when the largest value is more than this many times the smallest."""

_DIMENSION_MARKERS = {next(m for m in alias.__metadata__ if isinstance(m, BeforeValidator)): dim
                      for alias, dim in ((Duration, "time"), (Size, "size"),
                                         (BitRate, "bitrate"), (Rate, "rate"))}
"""The unit-parsing validator of each quantity type in the schema -> its dimension."""


def plot_summary(df: pd.DataFrame, axes: list[str], plot_dir: Path) -> list[Path]:
    """Write the PNGs of a summary table into `plot_dir` (`summary_figures`, each as
    `<name>.png`); return their paths."""
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    return [_save(fig, plot_dir / f"{name}.png") for name, fig in summary_figures(df, axes).items()]


def summary_figures(df: pd.DataFrame, axes: list[str]) -> dict[str, Figure]:
    """The figures of a summary table with swept `axes`, by file name (without .png).

    One `<axis>__<traffic>` per swept axis (other than the mode) and traffic kind; with no
    such axis, one `modes__<traffic>` bar chart per traffic kind. With the conntrack
    columns, also `<axis>__conntrack` (the busiest node's entries and their share of
    nf_conntrack_max). With the control plane simulated, also `<axis>__control-plane` (p50
    and p99 network programming latency per mode) and `<axis>__stale-endpoints` (the share
    of all the point's requests that failed as stale-endpoint, and the p99 stale window).
    """
    swept = [a for a in axes if a != MODE]
    figures: dict[str, Figure] = {}
    for traffic in df["traffic"].unique():
        rows = df[df["traffic"] == traffic]
        if not swept:
            figures[f"modes__{_safe(traffic)}"] = _mode_bars(rows, traffic)
        for axis in swept:
            figures[f"{_safe(axis)}__{_safe(traffic)}"] = _axis_lines(rows, axis, swept, traffic)
    # Conntrack and the control plane are one figure per point: the first traffic kind's rows.
    control = df[df["traffic"] == df["traffic"].iloc[0]] if len(df) else df
    if len(control) and "conntrack_entries" in control and control["conntrack_entries"].notna().any():
        for axis in swept:
            figures[f"{_safe(axis)}__conntrack"] = _axis_lines(control, axis, swept, "conntrack", _CONNTRACK)
    if len(control) and control["network_programming_p50_s"].notna().any():
        control = control.assign(stale_endpoint_share=control["point_id"].map(stale_endpoint_share(df)))
        for axis in swept:
            figures[f"{_safe(axis)}__control-plane"] = _axis_lines(
                control, axis, swept, "control plane", _PROGRAMMING)
            figures[f"{_safe(axis)}__stale-endpoints"] = _axis_lines(
                control, axis, swept, "stale endpoints", _STALE)
    return figures


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


_LATENCY = (("p50_s", "p50 latency (ms)", None, 1e3),
            ("p99_s", "p99 latency (ms)", "p99_s_ci95", 1e3))
"""Columns of the two panels of a request-latency figure: column, y label, CI column, factor
from the column's unit to the label's."""
_PROGRAMMING = (("network_programming_p50_s", "p50 network programming (ms)", None, 1e3),
                ("network_programming_p99_s", "p99 network programming (ms)", None, 1e3))
"""The two panels of a control-plane figure (kube-proxy's network_programming_duration)."""
_CONNTRACK = (("conntrack_entries", "conntrack entries, busiest node", None, 1.0),
              ("conntrack_fill", "of nf_conntrack_max (%)", None, 100.0))
"""The two panels of a conntrack figure (steady-state occupancy, all traffic kinds)."""
_STALE = (("stale_endpoint_share", "requests failed: stale-endpoint (%)", None, 100.0),
          ("stale_window_p99_s", "p99 stale window (s)", None, 1.0))
"""The two panels of a stale-endpoint figure (all traffic kinds of a point together)."""


def _axis_lines(rows: pd.DataFrame, axis: str, swept: list[str], traffic: str,
                panels=_LATENCY) -> Figure:
    held = []
    for other in (a for a in swept if a != axis):
        # An axis zipped with this one takes one value per value of it: it moves along.
        if rows.groupby(axis, dropna=False)[other].nunique(dropna=False).max() > 1:
            held.append(f"{other} = {_show(other, rows[other])}")
            rows = rows[_equals(rows[other], rows[other].iloc[0])]
    numeric = _is_numeric(rows[axis])
    if numeric:
        rows = rows.sort_values(axis, kind="stable")
        scale, unit = _unit(axis_dimension(axis), rows[axis])
        x = rows[axis] / scale
    else:
        categories = list(dict.fromkeys(rows[axis].astype(str)))
        unit = ""
        x = rows[axis].astype(str).map(categories.index)

    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    with_ci = rows["replications"].max() > 1
    for mode in (m for m in KUBE_PROXY_MODES if m in set(rows[MODE])):
        line = rows[MODE] == mode
        style = dict(marker=MODE_MARKERS[mode], color=MODE_COLOURS[mode], label=mode, capsize=3)
        for ax, (column, _, ci, factor) in zip((left, right), panels):
            ax.errorbar(x[line], rows.loc[line, column] * factor,
                        yerr=rows.loc[line, ci] * factor if ci and with_ci else None, **style)
    left.legend(title="kube-proxy mode", fontsize="small")
    for ax, (column, label, _, _) in zip((left, right), panels):
        _style(ax, label)
        ax.set_xlabel(f"{axis} ({unit})" if unit else axis)
        empty = rows[column].isna().all()
        if empty:
            ax.text(0.5, 0.5, "no value at any point\n(no measured request: all before\n"
                    "run.warmup, or none completed)", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        elif not empty and len(x) and x.min() > 0 and x.max() > _LOG_SPAN * x.min():
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    fig.suptitle("; ".join([f"{traffic}: {axis} sweep", *held]))
    return fig


def _mode_bars(rows: pd.DataFrame, traffic: str) -> Figure:
    modes = [m for m in KUBE_PROXY_MODES if m in set(rows[MODE])]
    rows = rows.set_index(MODE).loc[modes]
    colours = [MODE_COLOURS[m] for m in modes]
    with_ci = rows["replications"].max() > 1
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    left.bar(modes, rows["p50_s"] * 1e3, color=colours)
    right.bar(modes, rows["p99_s"] * 1e3, color=colours,
              yerr=rows["p99_s_ci95"] * 1e3 if with_ci else None, capsize=3)
    _style(left, "p50 latency (ms)")
    _style(right, "p99 latency (ms)")
    fig.suptitle(f"{traffic}: latency by kube-proxy mode")
    return fig


def _style(ax: Axes, ylabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.set_axisbelow(True)


def _unit(dimension: str, values: pd.Series) -> tuple[float, str]:
    """(divisor, unit label) to show SI values of `dimension` on an axis."""
    if dimension == "time":
        top = values.abs().max()
        return (1e-6, "µs") if top < 1e-3 else (1e-3, "ms") if top < 1 else (1.0, "s")
    return {"size": (1.0, "B"), "bitrate": (1e9, "Gbit/s"),
            "rate": (1.0, "requests/s")}.get(dimension, (1.0, ""))


def _show(axis: str, values: pd.Series) -> str:
    """The first value of an axis for a title: '10', '25Gbps', '1.5ms', 'vxlan'."""
    if _is_numeric(values):
        return format_quantity(float(values.iloc[0]), axis_dimension(axis))
    return str(values.iloc[0])


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _equals(values: pd.Series, value: Any) -> pd.Series:
    """values == value, where a missing value equals a missing value."""
    return values.isna() if pd.isna(value) else values == value


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(fig: Figure, path: Path) -> Path:
    path.write_bytes(png_bytes(fig))
    return path


def png_bytes(fig: Figure) -> bytes:
    """The PNG of `fig` as every plot is saved: the same bytes for the same figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
