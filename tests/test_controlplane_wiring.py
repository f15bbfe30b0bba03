"""The control plane from a scenario: summary columns, sweeps, `netmodel run --metrics`."""

import math
from pathlib import Path

from netmodel.cli import main
from netmodel.controlplane.syncloop import controlplane_config
from netmodel.results.summary import CONTROL_PLANE_COLUMNS
from netmodel.runner.point import run_point
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.sweep import expand_sweep
from tests.conftest import make_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_columns_are_nan_without_the_control_plane(profile):
    (row,) = run_point(make_scenario(run={"requests": 100}), profile)
    assert all(math.isnan(row[c]) for c in CONTROL_PLANE_COLUMNS)


def test_a_scenario_maps_onto_the_sync_loop_and_fills_every_row(profile):
    sc = make_scenario(cluster={"nodes": 20}, services={"count": 300, "endpoints_per_service": 4},
                       kube_proxy={"mode": "nftables", "min_sync_period": "2s", "burst_syncs": 1},
                       control_plane={"enabled": True, "churn_rate": "3/s", "duration": "30s",
                                      "sampled_nodes": 5},
                       workload={"mix": {"pod-clusterip": 1, "pod-pod-same-node": 1}},
                       run={"requests": 200, "replications": 2})
    config = controlplane_config(sc, 1)
    assert (config.nodes, config.services, config.endpoints_per_service, config.mode) == (20, 300, 4, "nftables")
    assert (config.min_sync_period, config.burst_syncs, config.churn_rate, config.sampled_nodes,
            config.replication) == (2.0, 1, 3.0, 5, 1)
    rows = run_point(sc, profile)
    first = [rows[0][c] for c in CONTROL_PLANE_COLUMNS]
    assert all(not math.isnan(v) for v in first)
    assert [rows[1][c] for c in CONTROL_PLANE_COLUMNS] == first  # one control plane per point
    assert rows[0]["network_programming_p50_s"] <= rows[0]["network_programming_p99_s"]
    assert repr(run_point(sc, profile)) == repr(rows)


def test_the_shipped_min_sync_period_sweep_shows_kep_3453(profile):
    """Lower minSyncPeriod and partial restores both lower p50 programming latency."""
    points = expand_sweep(load_scenario(ROOT / "scenarios" / "min-sync-period.yaml"))
    p50 = {}
    for point in points:
        kp = point.scenario.kube_proxy
        sc = point.scenario.model_copy(update={"control_plane": point.scenario.control_plane.model_copy(
            update={"duration": 60.0, "sampled_nodes": 10})})
        p50[(kp.min_sync_period, kp.minimize_iptables_restore)] = run_point(
            sc, point.profile)[0]["network_programming_p50_s"]
    assert p50[(1.0, True)] < 0.8 * p50[(10.0, True)]
    assert p50[(1.0, True)] < 0.7 * p50[(1.0, False)]


def test_run_metrics_writes_prometheus_text(tmp_path, capsys):
    path = tmp_path / "cp.yaml"
    path.write_text("name: cp\ncontrol_plane: {enabled: true, duration: 20s, sampled_nodes: 3}\n"
                    "run: {requests: 100, replications: 2}\n")
    assert main(["run", str(path), "--metrics", str(tmp_path / "m")]) == 0
    assert "control plane: network programming p50" in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["cp-r0.prom", "cp-r1.prom"]
    text = (tmp_path / "m" / "cp-r0.prom").read_text()
    assert "# TYPE kubeproxy_network_programming_duration_seconds histogram" in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"}' in text


def test_run_metrics_without_the_control_plane_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nrun: {requests: 50}\n")
    assert main(["run", str(path), "--metrics", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == ("netmodel: error: --metrics: needs control_plane.enabled: "
                                       "true in the scenario\n")
