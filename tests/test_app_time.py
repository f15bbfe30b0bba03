"""What a planner feeds in and reads out: app time as exponential, constant, lognormal or
measured samples, and connection set-up latency in its own columns."""

import math

import numpy as np
import pytest

import netmodel
from netmodel.cli import main
from netmodel.connections.replication import describe
from netmodel.engines import simulate
from netmodel.runner.point import run_point
from netmodel.scenario.schema import Z99
from tests.conftest import make_scenario, walked
from tests.test_engine import zero_load

QUIET = {"rate": 5, "mix": {"pod-clusterip": 1}}


def test_lognormal_app_time_has_the_mean_and_p99_asked(profile):
    sc = make_scenario(workload={"server": {"service_time": "1ms", "service_time_p99": "8ms",
                                            "service_time_distribution": "lognormal"}},
                       run={"requests": 200_000})
    app = describe(sc, profile, 0).demand.app
    assert app.mean() == pytest.approx(1e-3, rel=0.02)
    assert np.percentile(app, 99) == pytest.approx(8e-3, rel=0.03)
    mu, sigma = sc.workload.server.lognormal()
    assert math.exp(mu + sigma * Z99) == pytest.approx(8e-3, rel=1e-12)


def test_a_lognormal_cannot_have_any_tail(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nworkload:\n  server:\n    service_time: 1ms\n    service_time_p99: 20ms\n"
                    "    service_time_distribution: lognormal\n")
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"netmodel: error: {path}:5: workload.server.service_time_p99: a lognormal with mean "
        "0.001 s needs a p99 above it and at most 14.97 times it, got 0.02 s\n")


def test_empirical_app_time_is_drawn_from_a_csv_of_measurements(tmp_path):
    (tmp_path / "latency.csv").write_text("latency\n1ms\n2ms,extra column\n\n0.004\n")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nworkload:\n  server:\n    service_time_distribution: empirical\n"
                    "    service_time_file: latency.csv\nrun: {requests: 3000}\n")
    loaded = netmodel.load(path)
    assert loaded.scenario.workload.server.service_time_samples == [1e-3, 2e-3, 4e-3]
    app = describe(loaded.scenario, loaded.profile, 0).demand.app
    assert set(np.unique(app)) == {1e-3, 2e-3, 4e-3}
    assert abs(np.mean(app == 4e-3) - 1 / 3) < 0.03
    axis = path.with_name("t.yaml")  # a sweep point reads the file too
    axis.write_text(path.read_text() + "sweep: {axes: {workload.server.workers: [1, 2]}}\n")
    assert all(p.scenario.workload.server.service_time_samples == [1e-3, 2e-3, 4e-3]
               for p in netmodel.points(netmodel.load(axis)))


def test_a_bad_csv_line_is_one_error_line_naming_the_csv(tmp_path, capsys):
    (tmp_path / "latency.csv").write_text("1ms\nslow\n")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nworkload:\n  server:\n    service_time_distribution: empirical\n"
                    "    service_time_file: latency.csv\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netmodel: error: {tmp_path / 'latency.csv'}:2: expected a time, got 'slow'")
    assert err.count("\n") == 1
    path.write_text(path.read_text().replace("latency.csv", "missing.csv"))
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == (f"netmodel: error: {path}:5: workload.server.service_time_file: "
                                       f"no file {tmp_path / 'missing.csv'}\n")


def test_setup_latency_is_the_connect_plan_at_zero_load(profile):
    sc = make_scenario(cluster={"nodes": 4}, workload={**QUIET, "server": {
        "service_time": "50us", "service_time_distribution": "constant"}}, run={"requests": 100})
    rep, res = walked(sc, profile)
    connect = [zero_load(rep, c) - zero_load(rep, c) + _connect_only(rep, c) for c in range(100)]
    assert res.connected - res.start == pytest.approx(np.array(connect), rel=1e-9)


def _connect_only(rep, c):
    from netmodel.costs.model import LOOKUPS, zero_load_seconds
    connect, _ = rep.plans[rep.connections.route[c]]
    return zero_load_seconds(connect, dict(zip(LOOKUPS, rep.connections.lookup[c].tolist())))


def test_keep_alive_hides_the_iptables_setup_in_the_request_mean_but_not_in_setup(profile):
    """10,000 Services under iptables: ~70 us of rule walk lands on each new connection;
    with 50 requests per connection the mean request barely moves, the set-up columns show it."""
    def row(mode):
        sc = make_scenario(cluster={"nodes": 1000, "pod_cidr": "10.0.0.0/14"},
                           services={"count": 10_000, "endpoints_per_service": 1},
                           kube_proxy={"mode": mode},
                           workload={"rate": 500, "requests_per_connection": 50},
                           run={"requests": 20_000})
        return run_point(sc, profile)[0]
    ipt, ebpf = row("iptables"), row("ebpf")
    assert ipt["setups"] == ebpf["setups"] > 300
    assert ipt["setup_p50_s"] - ebpf["setup_p50_s"] > 50e-6
    assert (ipt["mean_s"] - ebpf["mean_s"]) < 0.05 * (ipt["setup_mean_s"] - ebpf["setup_mean_s"])


def test_kinds_without_a_modelled_setup_have_none(profile):
    sc = make_scenario(workload={"rate": 50, "mix": {"kubectl-proxy": 1}}, run={"requests": 50})
    (row,) = run_point(sc, profile)
    assert row["setups"] == 0 and math.isnan(row["setup_p50_s"])
    res = simulate(sc, profile, 0)
    assert np.isnan(res.connected).all()
