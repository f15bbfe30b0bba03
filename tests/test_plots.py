"""Plots of a sweep summary: which files, what is on them, same bytes every time."""

import itertools

import pandas as pd
import pytest

from netmodel.results.plots import (
    _CONNTRACK,
    _PROGRAMMING,
    _STALE,
    MODE_COLOURS,
    _axis_lines,
    axis_dimension,
    plot_summary,
    stale_endpoint_share,
)

PNG = b"\x89PNG\r\n\x1a\n"
KINDS = ("pod-clusterip", "pod-pod-cross-node")


def summary(replications=1, control=False, **axes):
    """A summary table over the grid of `axes` (dotted name -> values), both traffic kinds;
    with `control`, the control-plane columns are filled in."""
    axes.setdefault("kube_proxy.mode", ["iptables"])
    rows = []
    for point_id, values in enumerate(itertools.product(*axes.values())):
        point = dict(zip(axes, values))
        scale = 1.0 + 0.01 * point_id
        for kind in KINDS:
            rows.append({"point_id": point_id, **point, "traffic": kind,
                         "p50_s": 1e-4 * scale, "p99_s": 3e-4 * scale,
                         "p99_s_ci95": 2e-5 if replications > 1 else float("nan"),
                         "network_programming_p50_s": 0.5 * scale if control else float("nan"),
                         "network_programming_p99_s": 2.0 * scale if control else float("nan"),
                         "stale_window_p99_s": 0.3 if control else float("nan"),
                         "requests": 1000, "dropped_stale_endpoint": 10 * (point_id + 1),
                         "replications": replications})
    return pd.DataFrame(rows)


def test_one_png_per_swept_axis_and_traffic_kind(tmp_path):
    df = summary(**{"services.count": [10, 100, 1000], "kube_proxy.mode": ["iptables", "ebpf"]})
    paths = plot_summary(df, ["services.count", "kube_proxy.mode"], tmp_path / "plots")
    assert [p.name for p in paths] == ["services.count__pod-clusterip.png",
                                       "services.count__pod-pod-cross-node.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_a_mode_only_sweep_gives_bar_charts(tmp_path):
    df = summary(**{"kube_proxy.mode": ["iptables", "ipvs", "nftables", "ebpf"]})
    paths = plot_summary(df, ["kube_proxy.mode"], tmp_path)
    assert [p.name for p in paths] == ["modes__pod-clusterip.png", "modes__pod-pod-cross-node.png"]
    assert all(p.read_bytes().startswith(PNG) for p in paths)


def test_no_sweep_still_gives_a_bar_chart(tmp_path):
    paths = plot_summary(summary(replications=3), [], tmp_path)
    assert [p.name for p in paths] == ["modes__pod-clusterip.png", "modes__pod-pod-cross-node.png"]


def test_same_table_same_bytes(tmp_path):
    df = summary(replications=2, **{"services.count": [10, 1000],
                                    "kube_proxy.mode": ["iptables", "ebpf"]})
    first = [p.read_bytes() for p in plot_summary(df, ["services.count"], tmp_path / "a")]
    second = [p.read_bytes() for p in plot_summary(df, ["services.count"], tmp_path / "b")]
    assert first == second


def test_other_axes_are_held_at_their_first_value():
    df = summary(**{"services.count": [10, 100, 1000], "cluster.nodes": [10, 50],
                    "kube_proxy.mode": ["iptables", "ebpf"]})
    rows = df[df["traffic"] == "pod-clusterip"]
    fig = _axis_lines(rows, "services.count", ["services.count", "cluster.nodes"],
                      "pod-clusterip")
    assert fig._suptitle.get_text() == "pod-clusterip: services.count sweep; cluster.nodes = 10"
    left, right = fig.axes
    assert [bars.get_label() for bars in left.containers] == ["iptables", "ebpf"]
    assert [line.get_color() for line in left.get_lines()] == [MODE_COLOURS["iptables"],
                                                                MODE_COLOURS["ebpf"]]
    assert [list(line.get_xdata()) for line in left.get_lines()] == [[10, 100, 1000]] * 2
    assert left.get_xscale() == "log"
    assert left.get_xlabel() == "services.count"
    assert left.get_ylabel() == "p50 latency (ms)" and right.get_ylabel() == "p99 latency (ms)"
    assert left.get_lines()[0].get_ydata()[0] == pytest.approx(0.1)  # 1e-4 s in ms


def test_a_zipped_axis_moves_along_instead_of_being_held():
    df = summary(**{"services.count": [10, 100, 1000]})
    df["cluster.nodes"] = df["services.count"] // 10  # one value of nodes per value of count
    fig = _axis_lines(df[df["traffic"] == "pod-clusterip"], "services.count",
                      ["services.count", "cluster.nodes"], "pod-clusterip")
    assert fig._suptitle.get_text() == "pod-clusterip: services.count sweep"
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 3


def test_units_on_the_x_axis_and_linear_scale_for_a_narrow_span():
    df = summary(**{"cluster.nic_speed": [10e9, 25e9, 100e9]}).query("traffic == 'pod-clusterip'")
    fig = _axis_lines(df, "cluster.nic_speed", ["cluster.nic_speed"], "pod-clusterip")
    assert fig.axes[0].get_xlabel() == "cluster.nic_speed (Gbit/s)"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [10, 25, 100]
    assert fig.axes[0].get_xscale() == "linear"
    df = summary(**{"workload.server.service_time": [50e-6, 100e-6, 200e-6]}).query(
        "traffic == 'pod-clusterip'")
    fig = _axis_lines(df, "workload.server.service_time", ["workload.server.service_time"],
                      "pod-clusterip")
    assert fig.axes[0].get_xlabel() == "workload.server.service_time (µs)"
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == pytest.approx([50, 100, 200])


def test_a_text_axis_is_categorical(tmp_path):
    df = summary(**{"cluster.cni_datapath": ["vxlan", "native"], "kube_proxy.mode": ["ipvs"]})
    fig = _axis_lines(df[df["traffic"] == "pod-clusterip"], "cluster.cni_datapath",
                      ["cluster.cni_datapath"], "pod-clusterip")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["vxlan", "native"]
    paths = plot_summary(df, ["cluster.cni_datapath", "kube_proxy.mode"], tmp_path)
    assert paths[0].name == "cluster.cni_datapath__pod-clusterip.png"


def test_error_bars_on_p99_only_with_replications():
    df = summary(replications=5, **{"services.count": [10, 100]})
    fig = _axis_lines(df, "services.count", ["services.count"], "pod-clusterip")
    left, right = fig.axes
    assert right.containers[0].has_yerr and not left.containers[0].has_yerr
    df = summary(replications=1, **{"services.count": [10, 100]})
    fig = _axis_lines(df, "services.count", ["services.count"], "pod-clusterip")
    assert not fig.axes[1].containers[0].has_yerr


@pytest.mark.parametrize("axis, dimension", [
    ("services.count", "count"), ("cluster.nic_speed", "bitrate"), ("run.duration", "time"),
    ("workload.server.service_time", "time"), ("workload.rate", "rate"),
    ("workload.response_size", "size"), ("costs.iptables_rule", "time"),
    ("costs.vxlan_overhead", "size"), ("kube_proxy.mode", "count"),
    ("workload.mix.pod-clusterip", "count"),
])
def test_axis_dimension_comes_from_the_schema(axis, dimension):
    assert axis_dimension(axis) == dimension


def test_control_plane_figures_when_it_was_simulated(tmp_path):
    df = summary(control=True, **{"cluster.nodes": [100, 1000], "kube_proxy.mode": ["iptables", "ipvs"]})
    paths = plot_summary(df, ["cluster.nodes", "kube_proxy.mode"], tmp_path / "plots")
    assert [p.name for p in paths][-2:] == ["cluster.nodes__control-plane.png",
                                            "cluster.nodes__stale-endpoints.png"]
    fig = _axis_lines(df[df["traffic"] == "pod-clusterip"], "cluster.nodes", ["cluster.nodes"],
                      "control plane", _PROGRAMMING)
    left, right = fig.axes
    assert left.get_ylabel() == "p50 network programming (ms)"
    assert left.get_lines()[0].get_ydata()[0] == pytest.approx(500.0)
    assert right.get_lines()[0].get_ydata()[0] == pytest.approx(2000.0)


def test_stale_endpoint_share_pools_the_traffic_kinds_of_a_point(tmp_path):
    """Point p: 10 (p + 1) stale-endpoint failures in each of its 2 traffic kinds' 1,000
    requests: 1% and 2%; the figure shows them and the p99 stale window of 0.3 s."""
    df = summary(control=True, **{"cluster.nodes": [100, 1000]})
    assert stale_endpoint_share(df).tolist() == pytest.approx([0.01, 0.02])
    rows = df[df["traffic"] == KINDS[0]]
    fig = _axis_lines(rows.assign(stale_endpoint_share=rows["point_id"].map(stale_endpoint_share(df))),
                      "cluster.nodes", ["cluster.nodes"], "stale endpoints", _STALE)
    left, right = fig.axes
    assert left.get_ylabel() == "requests failed: stale-endpoint (%)"
    assert left.get_lines()[0].get_ydata().tolist() == pytest.approx([1.0, 2.0])
    assert right.get_lines()[0].get_ydata()[0] == pytest.approx(0.3)


def test_conntrack_figure_when_the_columns_are_there(tmp_path):
    df = summary(**{"workload.rate": [1000, 5000], "kube_proxy.mode": ["iptables"]})
    df = df.assign(conntrack_entries=df["point_id"].map({0: 24_000.0, 1: 120_000.0}),
                   conntrack_fill=df["point_id"].map({0: 24_000 / 131_072, 1: 120_000 / 131_072}))
    paths = plot_summary(df, ["workload.rate", "kube_proxy.mode"], tmp_path)
    assert "workload.rate__conntrack.png" in [p.name for p in paths]
    rows = df[df["traffic"] == KINDS[0]]
    left, right = _axis_lines(rows, "workload.rate", ["workload.rate"], "conntrack", _CONNTRACK).axes
    assert left.get_lines()[0].get_ydata().tolist() == [24_000.0, 120_000.0]
    assert right.get_lines()[0].get_ydata().tolist() == pytest.approx([18.31, 91.55], abs=0.01)


def test_a_sweep_without_measured_requests_plots_a_note_instead_of_failing(tmp_path):
    """Every request before run.warmup: p50/p99 are NaN at every point. 0.4.0's first API
    example crashed here on the log x axis ('Data cannot be log-scaled')."""
    df = summary(**{"services.count": [10, 100, 1000, 10000]}).assign(p50_s=float("nan"),
                                                                      p99_s=float("nan"))
    (path, _) = plot_summary(df, ["services.count"], tmp_path)
    fig = _axis_lines(df[df.traffic == "pod-clusterip"], "services.count", ["services.count"],
                      "pod-clusterip")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) == 2 and all("no measured request" in t for t in texts)
    assert path.read_bytes().startswith(PNG)
