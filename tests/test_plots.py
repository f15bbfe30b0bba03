"""Plots of a sweep summary: which files, what is on them, that they tell the story (y axes
that show differences, every slice, nothing clipped, failures in sight), same bytes."""

import itertools
import math

import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from netmodel.results.plots import (
    MODE_COLOURS,
    PANELS,
    _MinorInView,
    draw,
    figure,
    layout,
    png_bytes,
    stale_endpoint_share,
    summary_figures,
    with_derived,
)

PNG = b"\x89PNG\r\n\x1a\n"
KINDS = ("pod-clusterip", "pod-pod-cross-node")
NAN = float("nan")


def summary(replications=1, control=False, **axes):
    """A summary table over the grid of `axes` (dotted name -> values), both traffic kinds;
    iptables grows with the point id, the other modes stay flat; with `control`, the
    control-plane columns are filled in (iptables 100x slower)."""
    axes.setdefault("kube_proxy.mode", ["iptables"])
    rows = []
    for point_id, values in enumerate(itertools.product(*axes.values())):
        point = dict(zip(axes, values))
        grows = point["kube_proxy.mode"] == "iptables"
        scale = 1.0 + (0.1 * point_id if grows else 0.0)
        slow = 100.0 if grows else 1.0
        for kind in KINDS:
            rows.append({"point_id": point_id, **point, "traffic": kind,
                         "requests": 1000, "dropped": 10 * (point_id + 1) if control else 0,
                         "dropped_no_local_endpoint": 0,
                         "p50_s": 1e-4 * scale, "p99_s": 3e-4 * scale,
                         "p99_s_ci95": 2e-5 if replications > 1 else NAN,
                         "rule_lookup_cpu_s_per_request": 1e-7 * scale * (slow if grows else 1),
                         "softirq_cpu_s_per_request": 2e-5 * scale,
                         "conntrack_entries": NAN,
                         "network_programming_p50_s": 0.05 * slow if control else NAN,
                         "network_programming_p99_s": 0.2 * slow if control else NAN,
                         "stale_window_p99_s": 0.3 if control else NAN,
                         "dropped_stale_endpoint": 10 * (point_id + 1) if control else 0,
                         "replications": replications})
    df = pd.DataFrame(rows)
    return df[["point_id", *[a for a in axes if a != "kube_proxy.mode"], "kube_proxy.mode",
               *[c for c in df.columns if c not in axes and c != "point_id"]]]


def plot_summary(df, axes, plot_dir):
    """Write the figures as a sweep does; return their paths."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in summary_figures(df, axes).items():
        paths.append(plot_dir / f"{name}.png")
        paths[-1].write_bytes(png_bytes(fig))
    return paths


def rows_of(df, kind=KINDS[0]):
    return with_derived(df)[lambda d: d.traffic == kind]


def test_one_png_per_swept_axis_and_traffic_kind_and_the_mechanism(tmp_path):
    df = summary(**{"services.count": [10, 100, 1000], "kube_proxy.mode": ["iptables", "ebpf"]})
    paths = plot_summary(df, ["services.count", "kube_proxy.mode"], tmp_path / "plots")
    assert [p.name for p in paths] == ["services.count__pod-clusterip.png",
                                       "services.count__pod-pod-cross-node.png",
                                       "services.count__mechanism.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_a_mode_only_sweep_gives_bar_charts(tmp_path):
    df = summary(**{"kube_proxy.mode": ["iptables", "ipvs", "nftables", "ebpf"]})
    names = list(summary_figures(df, ["kube_proxy.mode"]))
    assert names[:2] == ["modes__pod-clusterip", "modes__pod-pod-cross-node"]
    fig = summary_figures(df, ["kube_proxy.mode"])["modes__pod-clusterip"]
    assert all(isinstance(c, BarContainer) for c in fig.axes[0].containers)
    assert [p.get_facecolor()[:3] for c in fig.axes[0].containers for p in c] == [
        pytest.approx(tuple(int(MODE_COLOURS[m][i:i + 2], 16) / 255 for i in (1, 3, 5)))
        for m in ("iptables", "ipvs", "nftables", "ebpf")]


def test_no_sweep_still_gives_a_bar_chart(tmp_path):
    paths = plot_summary(summary(replications=3), [], tmp_path)
    assert [p.name for p in paths] == ["modes__pod-clusterip.png", "modes__pod-pod-cross-node.png"]


def test_same_table_same_bytes(tmp_path):
    df = summary(replications=2, **{"services.count": [10, 1000],
                                    "kube_proxy.mode": ["iptables", "ebpf"]})
    first = [p.read_bytes() for p in plot_summary(df, ["services.count"], tmp_path / "a")]
    second = [p.read_bytes() for p in plot_summary(df, ["services.count"], tmp_path / "b")]
    assert first == second


def test_y_axes_are_not_forced_to_zero_and_a_difference_panel_tells_close_lines_apart():
    """iptables at +0%, +20%, +40% over flat ebpf around 0.1 ms: the p50 axis shows where
    the values are, and the difference panel shows iptables' lead (ebpf at 0)."""
    df = summary(**{"services.count": [10, 100, 1000], "kube_proxy.mode": ["iptables", "ebpf"]})
    fig = summary_figures(df, ["services.count", "kube_proxy.mode"])["services.count__pod-clusterip"]
    p50, p99, added = fig.axes[:3]
    assert p50.get_ylabel() == "p50 latency (µs)" and p99.get_ylabel() == "p99 latency (µs)"
    assert p50.get_ylim()[0] > 50                       # not 0: the values are 100-140 µs
    assert added.get_ylabel() == "p50 latency − fastest (µs)"
    iptables, ebpf = (line.get_ydata().tolist() for line in added.get_lines()[:2])
    assert iptables == pytest.approx([0.0, 20.0, 40.0])   # points 0, 2, 4: +0%, +20%, +40%
    assert ebpf == pytest.approx([0.0, 0.0, 0.0])
    assert [line.get_color() for line in p50.get_lines()[:2]] == [MODE_COLOURS["iptables"],
                                                                  MODE_COLOURS["ebpf"]]
    first, second = (line.get_markersize() for line in p50.get_lines()[:2])
    assert first > second        # the later series drawn smaller, on top: both stay visible


def test_log_y_where_values_span_decades_so_ebpf_is_not_squashed_onto_zero():
    df = summary(control=True, **{"cluster.nodes": [100, 1000],
                                  "kube_proxy.mode": ["iptables", "ebpf"]})
    fig = summary_figures(df, ["cluster.nodes", "kube_proxy.mode"])["cluster.nodes__control-plane"]
    left, right = fig.axes[:2]
    assert left.get_yscale() == right.get_yscale() == "log"
    assert left.get_ylabel() == "p50 network programming (s)"
    assert left.get_ylim()[0] < 0.05 < 5 < left.get_ylim()[1]


def test_nothing_is_clipped_markers_and_error_bars_lie_inside_the_frame():
    df = summary(replications=3, **{"services.count": [10, 100, 1000],
                                    "kube_proxy.mode": ["iptables", "ipvs", "ebpf"]})
    for fig in summary_figures(df, ["services.count", "kube_proxy.mode"]).values():
        for ax in fig.axes:
            low, high = ax.get_ylim()
            if ax.get_yscale() == "log":
                low, high = math.log(low), math.log(high)
            margin = 0.02 * (high - low)
            for line in ax.get_lines():
                y = [v for v in line.get_ydata() if v == v]
                y = [math.log(v) for v in y] if ax.get_yscale() == "log" else y
                assert all(low + margin < v < high - margin for v in y), (ax.get_ylabel(), y)
            for container in ax.containers:
                for bar_lines in getattr(container, "lines", [None, None, ()])[2] or ():
                    for segment in bar_lines.get_segments():
                        assert all(low < y < high for _, y in segment)


def test_failures_get_a_panel_with_their_reason_and_stay_out_when_none_failed():
    """Policy Local drops half its requests: that shows (latency alone looks better)."""
    df = summary(**{"workload.rate": [1000, 2000], "services.external_traffic_policy":
                    ["Cluster", "Local"]})
    local = df["services.external_traffic_policy"] == "Local"
    df.loc[local, ["dropped", "dropped_no_local_endpoint"]] = 480
    fig = summary_figures(df, ["workload.rate", "services.external_traffic_policy"])[
        "workload.rate__pod-clusterip"]
    failed = fig.axes[3]
    assert failed.get_ylabel() == "requests failed: no-local-endpoint (%)"
    cluster, local_line = failed.get_lines()[:2]
    assert cluster.get_ydata().tolist() == [0.0, 0.0]
    assert local_line.get_ydata().tolist() == pytest.approx([48.0, 48.0])
    assert fig.legends[0].get_title().get_text() == "services.external_traffic_policy"
    calm = summary(**{"workload.rate": [1000, 2000]})
    assert len(summary_figures(calm, ["workload.rate"])["workload.rate__pod-clusterip"].axes) == 2


def test_every_slice_of_a_multi_axis_sweep_is_drawn_as_facets():
    df = summary(**{"services.count": [10, 100, 1000], "cluster.nodes": [10, 50],
                    "kube_proxy.mode": ["iptables", "ebpf"]})
    figures = summary_figures(df, ["services.count", "cluster.nodes", "kube_proxy.mode"])
    fig = figures["services.count__pod-clusterip"]
    assert len(fig.axes) == 2 * 3                      # two rows (nodes 10, 50) x three panels
    assert [fig.axes[i].get_title(loc="left") for i in (0, 3)] == ["cluster.nodes = 10 nodes",
                                                                   "cluster.nodes = 50 nodes"]
    assert [list(line.get_xdata()) for line in fig.axes[3].get_lines()[:2]] == [[10, 100, 1000]] * 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[-1].get_xlabel() == "services.count (Services)"
    other = figures["cluster.nodes__pod-clusterip"]     # and the other way round
    assert len(other.axes) == 3 * 3


def test_a_zipped_axis_moves_along_instead_of_being_a_facet():
    df = summary(**{"services.count": [10, 100, 1000]})
    df.insert(2, "cluster.nodes", df["services.count"] // 10)
    lay = layout(with_derived(df), ["services.count", "cluster.nodes"], "services.count")
    assert lay.along == ("cluster.nodes",) and lay.facets == ()
    fig = figure(rows_of(df), lay, [PANELS["p50"]], "pod-clusterip")
    assert fig._suptitle.get_text() == ("pod-clusterip: services.count sweep; cluster.nodes moves "
                                        "along: 1 nodes, 10 nodes, 100 nodes")


def test_an_axis_zipped_with_the_series_is_noted_not_a_facet():
    """`compare --vs kube_proxy.mode=iptables,ebpf --vs cluster.cni_datapath=vxlan,native`:
    one panel row, the data path said once in the title."""
    df = summary(**{"services.count": [10, 100], "kube_proxy.mode": ["iptables", "ebpf"]})
    df.insert(2, "cluster.cni_datapath", df["kube_proxy.mode"].map({"iptables": "vxlan", "ebpf": "native"}))
    axes = ["services.count", "cluster.cni_datapath", "kube_proxy.mode"]
    lay = layout(with_derived(df), axes, series="kube_proxy.mode")
    assert (lay.x, lay.facets, lay.along, lay.with_series) == ("services.count", (), (), ("cluster.cni_datapath",))
    fig = figure(rows_of(df), lay, [PANELS["p50"]], "pod-clusterip")
    assert len(fig.axes) == 1
    assert fig._suptitle.get_text() == ("pod-clusterip: services.count sweep; cluster.cni_datapath with "
                                        "kube_proxy.mode: vxlan with iptables, native with ebpf")
    crossed = summary(**{"services.count": [10, 100], "cluster.cni_datapath": ["vxlan", "native"],
                         "kube_proxy.mode": ["iptables", "ebpf"]})   # not zipped: a facet each
    assert layout(with_derived(crossed), axes, series="kube_proxy.mode").facets == ("cluster.cni_datapath",)


def test_units_on_the_x_axis_and_linear_scale_for_a_narrow_span():
    df = summary(**{"cluster.nic_speed": [10e9, 25e9, 100e9]})
    fig = figure(rows_of(df), layout(rows_of(df), ["cluster.nic_speed"]), [PANELS["p50"]], "k")
    assert fig.axes[0].get_xlabel() == "cluster.nic_speed (Gbit/s)"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [10, 25, 100]
    assert fig.axes[0].get_xscale() == "linear"
    df = summary(**{"workload.server.service_time": [50e-6, 100e-6, 200e-6]})
    fig = figure(rows_of(df), layout(rows_of(df), ["workload.server.service_time"]),
                 [PANELS["p50"]], "k")
    assert fig.axes[0].get_xlabel() == "workload.server.service_time (µs)"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == pytest.approx([50, 100, 200])


def test_a_text_axis_is_drawn_as_bars_not_joined_by_lines(tmp_path):
    df = summary(**{"cluster.cni_datapath": ["vxlan", "native"], "kube_proxy.mode": ["ipvs", "ebpf"]})
    fig = summary_figures(df, ["cluster.cni_datapath", "kube_proxy.mode"])[
        "cluster.cni_datapath__pod-clusterip"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vxlan", "native"]
    assert len(ax.containers) == 2 and all(isinstance(c, BarContainer) for c in ax.containers)
    assert not ax.get_lines()


def test_error_bars_on_p99_only_with_replications():
    df = summary(replications=5, **{"services.count": [10, 100]})
    fig = figure(rows_of(df), layout(rows_of(df), ["services.count"]),
                 [PANELS["p50"], PANELS["p99"]], "k")
    left, right = fig.axes
    assert right.containers[0].has_yerr and not left.containers[0].has_yerr
    df = summary(replications=1, **{"services.count": [10, 100]})
    fig = figure(rows_of(df), layout(rows_of(df), ["services.count"]), [PANELS["p99"]], "k")
    assert not fig.axes[0].containers[0].has_yerr


def test_stale_endpoint_share_pools_the_traffic_kinds_of_a_point():
    """Point p: 10 (p + 1) stale-endpoint failures in each of its 2 traffic kinds' 1,000
    requests: 1% and 2%; the figure shows them and the p99 stale window of 0.3 s."""
    df = summary(control=True, **{"cluster.nodes": [100, 1000]})
    assert stale_endpoint_share(df).tolist() == pytest.approx([0.01, 0.02])
    fig = summary_figures(df, ["cluster.nodes"])["cluster.nodes__stale-endpoints"]
    left, right = fig.axes[:2]
    assert left.get_ylabel() == "requests failed: stale-endpoint (%)"
    assert left.get_lines()[0].get_ydata().tolist() == pytest.approx([1.0, 2.0])
    assert right.get_lines()[0].get_ydata()[0] == pytest.approx(300.0)
    assert right.get_ylabel() == "p99 stale window (ms)"


def test_conntrack_figure_when_the_columns_are_there():
    df = summary(**{"workload.rate": [1000, 5000]})
    df = df.assign(conntrack_entries=df["point_id"].map({0: 24_000.0, 1: 120_000.0}),
                   conntrack_fill=df["point_id"].map({0: 24_000 / 131_072, 1: 120_000 / 131_072}))
    left, right = summary_figures(df, ["workload.rate"])["workload.rate__conntrack"].axes[:2]
    assert left.get_lines()[0].get_ydata().tolist() == [24_000.0, 120_000.0]
    assert right.get_lines()[0].get_ydata().tolist() == pytest.approx([18.31, 91.55], abs=0.01)
    assert right.get_ylabel() == "of the conntrack table (%)"


def test_a_sweep_without_measured_requests_plots_a_note_instead_of_failing(tmp_path):
    """Every request before run.warmup: p50/p99 are NaN at every point. 0.4.0's first API
    example crashed here on the log x axis ('Data cannot be log-scaled')."""
    df = summary(**{"services.count": [10, 100, 1000, 10000]}).assign(p50_s=NAN, p99_s=NAN)
    (path, *_) = plot_summary(df, ["services.count"], tmp_path)
    fig = summary_figures(df, ["services.count"])["services.count__pod-clusterip"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == 2 and all("no measured request" in t for t in texts)
    assert path.read_bytes().startswith(PNG)


def test_draw_puts_one_panel_into_a_given_axes():
    df = summary(replications=2, **{"services.count": [10, 100], "cluster.nodes": [10, 50],
                                    "kube_proxy.mode": ["iptables", "ebpf"]})
    ax = Figure().subplots()
    assert draw(ax, df, "p99", where={"cluster.nodes": 50}) is ax
    assert ax.get_title(loc="left") == "pod-clusterip, cluster.nodes = 50 nodes"
    assert ax.get_ylabel() == "p99 latency (µs)" and ax.get_xlabel() == "services.count (Services)"
    assert len(ax.get_lines()) >= 2 and ax.get_legend().get_title().get_text() == "kube_proxy.mode"
    ax = Figure().subplots()
    draw(ax, df, "rule_lookup_cpu_s_per_request", traffic="pod-pod-cross-node", x="cluster.nodes")
    assert ax.get_xlabel() == "cluster.nodes (nodes)"


def test_every_drop_reason_has_its_own_line_style_and_hatch():
    from netmodel.results.plots import REASON_HATCHES, REASON_STYLES
    from netmodel.vocabulary import DROP_REASONS

    assert list(REASON_STYLES) == list(REASON_HATCHES) == list(DROP_REASONS)
    assert len({str(s) for s in REASON_STYLES.values()}) == len(DROP_REASONS)


@pytest.mark.parametrize("low, high", [(0.3, 0.9), (5, 7), (2, 3000), (1e-6, 1e-5), (0.01, 1e4)])
def test_minor_ticks_in_view_draw_what_matplotlibs_draw(low, high):
    """Minor ticks made only in view: the same picture, byte for byte, as every decade's."""
    pictures = []
    for ours in (False, True):
        fig = Figure(figsize=(3, 3), layout="constrained")
        ax = fig.subplots()
        ax.plot([low, high], [low, high], marker="o")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if ours:
            ax.xaxis.set_minor_locator(_MinorInView())
            ax.yaxis.set_minor_locator(_MinorInView())
        pictures.append(png_bytes(fig))
    assert pictures[0] == pictures[1]
