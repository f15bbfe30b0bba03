"""One figure per lab fit: the samples (as the fit saw them) and the fitted line or values.

Drawn with matplotlib's Agg renderer through `Figure` (no pyplot, no display), in the
kube-proxy modes' colours of `netmodel.results.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from netmodel.calibration import fits
from netmodel.calibration.derive import Measured
from netmodel.results.plots import MODE_COLOURS

_DPI = 110


def _figure(title: str, panels: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(6.0 * panels, 4.2), dpi=_DPI, layout="constrained")
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    fig.suptitle(title, fontsize=11)
    return fig, axes


def _band(ax, x: np.ndarray, slope: fits.Estimate, zero: fits.Estimate, colour: str, scale: float) -> None:
    ax.plot(x, (zero.value + slope.value * x) * scale, color=colour, lw=1.5)
    ends = [(zero.low + slope.low * x), (zero.high + slope.high * x),
            (zero.low + slope.high * x), (zero.high + slope.low * x)]
    ax.fill_between(x, np.min(ends, axis=0) * scale, np.max(ends, axis=0) * scale, color=colour,
                    alpha=0.15, lw=0)


def iptables_walk(samples: pd.DataFrame, variants: dict[str, tuple[fits.Estimate, ...]]) -> Figure:
    """Bin medians of new-connection latency against rules walked, a line per backend; the
    direct Pod connections of each batch (they walk all of KUBE-SERVICES) as crosses."""
    fig, (ax,) = _figure("iptables: new connection (connect + first round trip) vs rules walked")
    for (variant, (slope, zero, _)), colour in zip(variants.items(), (MODE_COLOURS["iptables"], "#ff7f0e")):
        rows = samples[(samples["variant"] == variant) & (samples["metric"] == "crr")]
        points = fits.walk_points(rows)
        ax.scatter(points["walked"], points["latency"] * 1e6, s=14, color=colour, alpha=0.8,
                   label=f"{variant}: Service connections, bin medians")
        direct = rows[rows["target"] == "pod"].groupby("batch")[["walked", "value"]].median()
        ax.scatter(direct["walked"], direct["value"] * 1e6, s=30, marker="x", color=colour,
                   label=f"{variant}: direct Pod connections, medians")
        x = np.linspace(0, points["walked"].max(), 50)
        _band(ax, x, slope, zero, colour, 1e6)
        ax.plot([], [], color=colour, label=f"fit: {slope.value * 1e9:.3g} ns/rule, "
                                            f"{zero.value * 1e6:.3g} us at 0 rules")
    _latency_axes(ax, "rules walked by the SYN")
    return fig


def _latency_axes(ax, xlabel: str) -> None:
    """A latency-per-connection panel's labels, a y axis from 0, grid and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency (µs)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def flat_lookups(samples: pd.DataFrame, modes: dict[str, tuple[fits.Estimate, ...]]) -> Figure:
    """Median (and quartiles) of Service connections' latency per Service count, per flat mode."""
    fig, (ax,) = _figure("nftables (and IPVS): new connection vs Services")
    for mode, (slope, level, _) in modes.items():
        rows = samples[(samples["variant"] == mode) & (samples["metric"] == "crr")
                       & (samples["target"] == "service")]
        q = rows.groupby("services")["value"].quantile([0.25, 0.5, 0.75]).unstack() * 1e6
        colour = MODE_COLOURS.get(mode, "black")
        ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o", color=colour,
                    capsize=3, label=f"{mode}: median, quartiles")
        x = np.array([0, q.index.max()], dtype=float)
        ax.plot(x, (level.value + slope.value * (x - np.median(q.index))) * 1e6, color=colour,
                ls="--", label=f"slope {slope.value * 1e9 * 1000:.3g} ns per 1,000 Services "
                               f"(95% CI {slope.low * 1e12:.3g} to {slope.high * 1e12:.3g})")
    _latency_axes(ax, "Services in the verdict map")
    return fig


def datapaths(samples: pd.DataFrame, measured: list[Measured]) -> Figure:
    """One-way latency per data path (median, bootstrap-free quartiles), and the per-hop
    costs they give."""
    fig, (ax, bx) = _figure("data paths: one-way latency and the per-hop costs it gives", 2)
    rr = samples[(samples["experiment"] == "datapath") & (samples["metric"] == "rr")]
    q = (rr.groupby("variant")["value"].quantile([0.25, 0.5, 0.75]).unstack() / 2 * 1e6).sort_values(0.5)
    ax.barh(q.index, q[0.5], xerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], color="#8c8c8c", capsize=3)
    ax.set_xlabel("one-way latency: half the 1-byte round trip (µs), median and quartiles")
    ax.grid(alpha=0.3, axis="x")
    names = [m.name for m in measured]
    values = [m.value * 1e6 for m in measured]
    errs = [[max(m.value - m.estimate.low, 0) * 1e6 for m in measured],
            [max(m.estimate.high - m.value, 0) * 1e6 for m in measured]]
    bx.barh(names, values, xerr=errs, color="#1f77b4", capsize=3)
    bx.set_xlabel("per message or segment (µs), 95% CI")
    bx.grid(alpha=0.3, axis="x")
    return fig


def iptables_sync(samples: pd.DataFrame, backend: str, coef: list[fits.Estimate]) -> Figure:
    """Measured restore times of full and partial syncs against Services, and the fit."""
    fig, (ax,) = _figure(f"iptables-{backend}-restore: kube-proxy full and partial syncs")
    rows = samples[(samples["experiment"] == "iptables-sync") & (samples["variant"] == backend)]
    for metric, colour in (("restore_full", "#d62728"), ("restore_partial", "#1f77b4")):
        part = rows[rows["metric"] == metric]
        ax.scatter(part["services"], part["value"], s=16, color=colour, label=f"{metric[8:]}: measured")
        line = part.groupby("services")[["lines", "rules"]].first().sort_index()
        ax.plot(line.index, fits.predict(coef, line, ("lines", "rules")), color=colour, ls="--",
                label=f"{metric[8:]}: fit")
    a, b_line, b_rule = coef
    ax.set_title(f"fit: {a.value * 1e3:.3g} ms + {b_line.value * 1e6:.3g} us/line + "
                 f"{b_rule.value * 1e6:.3g} us/rule", fontsize=9)
    ax.set_xlabel("Services (2 endpoints each)")
    ax.set_ylabel("restore time (s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def nftables_sync(samples: pd.DataFrame, tx: list[fits.Estimate], listing: list[fits.Estimate]) -> Figure:
    """nft -f transaction times against commands, listing times against chains, and the fits."""
    fig, (ax, bx) = _figure("nftables: kube-proxy transactions and chain listing", 2)
    rows = samples[samples["experiment"] == "nftables-sync"]
    part = rows[rows["metric"] == "nft_transaction"]
    ax.scatter(part["commands"], part["value"] * 1e3, s=16, c=part["chains"], cmap="viridis",
               label="measured (colour: chains in the table)")
    ax.scatter(part["commands"], fits.predict(tx, part, ("commands", "chains")) * 1e3, s=10,
               marker="x", color="black", label="fit")
    ax.set_title(f"{tx[1].value * 1e6:.3g} us/command + {tx[2].value * 1e6:.3g} us/chain + "
                 f"{tx[0].value * 1e3:.3g} ms", fontsize=9)
    ax.set_xlabel("commands in the transaction")
    ax.set_ylabel("nft -f (ms)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    part = rows[rows["metric"] == "nft_list"].sort_values("chains")
    bx.scatter(part["chains"], part["value"] * 1e3, s=16, color="#2ca02c", label="measured")
    bx.plot(part["chains"], fits.predict(listing, part, ("chains",)) * 1e3, color="#2ca02c", ls="--",
            label=f"fit: {listing[0].value * 1e3:.3g} ms + {listing[1].value * 1e6:.3g} us/chain")
    bx.set_xlabel("chains in the table")
    bx.set_ylabel("nft --json list chains (ms)")
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8)
    return fig


def streams(samples: pd.DataFrame) -> Figure:
    """Single-stream throughput per data path."""
    fig, (ax,) = _figure("one TCP stream (1 MiB sends)")
    rows = samples[samples["metric"] == "stream_bps"]
    g = rows.groupby("variant")["value"]
    med = g.median() / 1e9
    ax.bar(med.index, med, yerr=[med - g.min() / 1e9, g.max() / 1e9 - med], color="#9467bd", capsize=4)
    for x, v in enumerate(med):
        ax.text(x, v / 2, f"{v:.2f}", ha="center", color="white")
    ax.set_ylabel("Gb/s (median, min to max)")
    ax.grid(alpha=0.3, axis="y")
    return fig


def save(figures: dict[str, Figure], directory: Path) -> tuple[Path, ...]:
    """Write each figure as DIRECTORY/<name>.png."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, fig in figures.items():
        path = directory / f"{name}.png"
        fig.savefig(path)
        out.append(path)
    return tuple(out)
