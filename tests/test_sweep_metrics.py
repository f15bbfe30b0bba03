"""`netmodel sweep --metrics DIR`: kube-proxy's histograms per control-plane point and replication.

The real model runs here (tiny points: 20 Services, 2 sampled nodes, 5 s of churn).
"""

from pathlib import Path

import pytest

import netmodel.runner.point
import netmodel.runner.sweep
from netmodel.cli import main
from netmodel.results.prometheus import prometheus_histograms
from tests.conftest import make_scenario

run_point = netmodel.runner.point.run_point

SWEEP = """\
name: cpm
services: {count: 20}
control_plane: {enabled: true, duration: 5s, sampled_nodes: 2}
run: {requests: 50, replications: 2, seed: 1}
sweep:
  axes:
    kube_proxy.mode: [iptables, nftables]
    control_plane.enabled: [true, false]
"""
# Points: 0 iptables on, 1 iptables off, 2 nftables on, 3 nftables off.
PROM_FILES = ["point-00000-r0.prom", "point-00000-r1.prom",
              "point-00002-r0.prom", "point-00002-r1.prom"]


@pytest.fixture
def sweep_file(tmp_path) -> Path:
    path = tmp_path / "cpm.yaml"
    path.write_text(SWEEP)
    return path


class Recording:
    """run_point, recording (mode, control plane on, sink given) per call."""

    def __init__(self):
        self.calls = []

    def __call__(self, scenario, profile, control_sink=None, engine="simpy"):
        self.calls.append((scenario.kube_proxy.mode, scenario.control_plane.enabled,
                           control_sink is not None))
        return run_point(scenario, profile, control_sink)


@pytest.fixture
def recording(monkeypatch):
    runner = Recording()
    monkeypatch.setattr(netmodel.runner.point, "run_point", runner)
    return runner


def sweep(path, out, metrics=None, *extra):
    argv = ["sweep", str(path), "--out", str(out), *extra]
    if metrics is not None:
        argv += ["--metrics", str(metrics)]
    return main(argv)


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_sweep_metrics_are_the_same_bytes_with_one_or_two_jobs(sweep_file, tmp_path, profile,
                                                               capsys):
    assert sweep(sweep_file, tmp_path / "one", tmp_path / "m1", "--quiet") == 0
    assert capsys.readouterr().out.endswith(f"wrote {tmp_path / 'm1'}/: "
                                            "point-<id>-r<replication>.prom (Prometheus text)\n")
    assert sweep(sweep_file, tmp_path / "two", tmp_path / "m2", "--quiet", "--jobs", "2") == 0
    one, two = contents(tmp_path / "m1"), contents(tmp_path / "m2")
    assert list(one) == PROM_FILES  # no temporary files left either
    assert one == two
    assert (tmp_path / "one" / "summary.parquet").read_bytes() == \
        (tmp_path / "two" / "summary.parquet").read_bytes()

    # What `run --metrics` writes for the same scenario, replication by replication.
    texts = {}
    point_0 = make_scenario(name="cpm", services={"count": 20},
                            control_plane={"enabled": True, "duration": "5s", "sampled_nodes": 2},
                            run={"requests": 50, "replications": 2, "seed": 1})
    run_point(point_0, profile, lambda r, result: texts.setdefault(r, prometheus_histograms(result)))
    assert [one["point-00000-r0.prom"], one["point-00000-r1.prom"]] == \
        [texts[0].encode(), texts[1].encode()]
    assert one["point-00000-r0.prom"] != one["point-00002-r0.prom"]  # iptables vs nftables
    assert b"# TYPE kubeproxy_network_programming_duration_seconds histogram" in one[PROM_FILES[0]]


def test_metrics_are_written_by_the_parent_before_each_point_file(sweep_file, tmp_path,
                                                                  monkeypatch):
    written = []
    write_atomic = netmodel.runner.sweep.write_atomic

    def recording_write(path, data, field_name="--out"):
        written.append(path.name)
        write_atomic(path, data, field_name)

    monkeypatch.setattr(netmodel.runner.sweep, "write_atomic", recording_write)
    assert sweep(sweep_file, tmp_path / "out", tmp_path / "m", "--quiet", "--jobs", "2") == 0
    # Workers are forked processes: a file they wrote themselves would not be listed here.
    assert sorted(n for n in written if n.endswith(".prom")) == PROM_FILES
    for point in ("00000", "00002"):
        parquet = written.index(f"{point}.parquet")
        assert all(written.index(f"point-{point}-r{r}.prom") < parquet for r in (0, 1))


def test_resume_does_not_rerun_points_done_with_their_metrics(sweep_file, tmp_path, recording,
                                                              capsys):
    out, metrics = tmp_path / "out", tmp_path / "m"
    assert sweep(sweep_file, out, metrics, "--quiet") == 0
    assert recording.calls == [("iptables", True, True), ("iptables", False, False),
                               ("nftables", True, True), ("nftables", False, False)]
    before = contents(metrics), contents(out / "points")

    assert sweep(sweep_file, out, metrics) == 0
    assert len(recording.calls) == 4
    assert "nothing to do: all 4 points done" in capsys.readouterr().err
    assert (contents(metrics), contents(out / "points")) == before


def test_a_done_point_missing_its_metrics_runs_again(sweep_file, tmp_path, recording, capsys):
    out, metrics = tmp_path / "out", tmp_path / "m"
    assert sweep(sweep_file, out, metrics, "--quiet") == 0
    before = contents(metrics), contents(out / "points")
    recording.calls.clear()
    (metrics / "point-00002-r1.prom").unlink()

    assert sweep(sweep_file, out, metrics) == 0
    assert recording.calls == [("nftables", True, True)]
    err = capsys.readouterr().err
    assert "resuming: 3 of 4 points already done" in err
    assert "running 1 done point again: --metrics files missing" in err
    assert (contents(metrics), contents(out / "points")) == before


def test_metrics_added_to_a_finished_sweep_run_only_the_control_plane_points(
        sweep_file, tmp_path, recording):
    out = tmp_path / "out"
    assert sweep(sweep_file, out, None, "--quiet") == 0
    assert all(not sink for *_, sink in recording.calls)
    recording.calls.clear()

    assert sweep(sweep_file, out, tmp_path / "m", "--quiet") == 0
    assert recording.calls == [("iptables", True, True), ("nftables", True, True)]
    assert list(contents(tmp_path / "m")) == PROM_FILES


def test_sweep_metrics_without_the_control_plane_is_one_error_line(tmp_path, recording, capsys):
    path = tmp_path / "off.yaml"
    path.write_text(SWEEP.replace("control_plane.enabled: [true, false]",
                                  "control_plane.enabled: [false]"))
    assert sweep(path, tmp_path / "out", tmp_path / "m", "--quiet") == 2
    assert capsys.readouterr().err == (
        "netmodel: error: --metrics: needs control_plane.enabled: true in the scenario or in "
        "one of its sweep points\n")
    assert recording.calls == []
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists()
