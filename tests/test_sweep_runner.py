"""The resumable sweep executor: point files, resumption, interruption, determinism.

A fake runner stands in for `run_point`: it returns rows with the same columns,
computed from the point's scenario, in no time.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from netmodel.errors import NetmodelError
from netmodel.results.summary import COLUMNS, CONTROL_PLANE_COLUMNS, DROP_COLUMNS
from netmodel.runner.sweep import SweepInterrupted, run_sweep
from netmodel.scenario.digest import scenario_digest
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.sweep import expand_sweep
from netmodel.vocabulary import PACKET_DROP_COLUMNS, TRAFFIC_KINDS

GRID = """\
name: grid
cluster:
  nodes: 50
run:
  requests: 100
  seed: {seed}
workload:
  mix: {{pod-clusterip: 1, pod-pod-cross-node: 1}}
sweep:
  axes:
    services.count: [10, 100, 1000]
    kube_proxy.mode: [iptables, ebpf]
"""
N_POINTS = 6

_MODE_OFFSET = {"iptables": 30e-6, "ipvs": 20e-6, "nftables": 15e-6, "ebpf": 10e-6}


def fake_runner(scenario, profile, control_sink=None, engine="auto"):
    """Rows with run_point's columns: p50 = 0.1 ms x ln(services) + a mode offset."""
    rows = []
    for kind in (k for k in TRAFFIC_KINDS if scenario.workload.mix.get(k, 0) > 0):
        p50 = 1e-4 * math.log(scenario.services.count) + _MODE_OFFSET[scenario.kube_proxy.mode]
        n = scenario.run.requests
        row = {"kube_proxy.mode": scenario.kube_proxy.mode, "dataplane": scenario.kube_proxy.mode, "traffic": kind, "requests": n,
               "completed": n, "dropped": 0, **dict.fromkeys(DROP_COLUMNS, 0), "in_flight": 0,
               **dict.fromkeys(PACKET_DROP_COLUMNS, 0),
               "measured": n, "p50_s": p50, "p90_s": 2 * p50, "p99_s": 3 * p50,
               "p999_s": 4 * p50, "mean_s": 1.1 * p50, "mean_s_ci95": math.nan,
               "p99_s_ci95": math.nan, "p50_with_timeouts_s": p50, "p99_with_timeouts_s": 3 * p50,
               "setups": n, "setup_p50_s": p50 / 2, "setup_p99_s": p50,
               "setup_mean_s": p50 / 2, "throughput_rps": 1000.0 / 3,
               "rule_lookup_cpu_s_per_request": p50 / 7, "softirq_cpu_s_per_request": p50 / 3,
               "cross_node_share": 0.5 if kind == "pod-clusterip" else 1.0,
               "endpoint_load_skew": 1.0, "conntrack_table": "nf_conntrack",
                   "conntrack_entries": 40.0 * n, "conntrack_fill": 1e-3, "conntrack_evictions": 0,
               **dict.fromkeys(CONTROL_PLANE_COLUMNS, math.nan),
               "replications": scenario.run.replications}
        assert tuple(row) == COLUMNS
        rows.append(row)
    return rows


def interrupt_at_ebpf_1000(scenario, profile, control_sink=None, engine="auto"):
    """fake_runner, but Ctrl-C at the point services.count=1000, mode ebpf."""
    if scenario.services.count == 1000 and scenario.kube_proxy.mode == "ebpf":
        raise KeyboardInterrupt
    return fake_runner(scenario, profile)


class Counting:
    """fake_runner that counts its calls and can raise Ctrl-C at call number `interrupt_at`."""

    def __init__(self, interrupt_at=None):
        self.calls = 0
        self.interrupt_at = interrupt_at

    def __call__(self, scenario, profile, control_sink=None, engine="simpy"):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return fake_runner(scenario, profile)


def write_grid(tmp_path, seed=7, name="grid.yaml"):
    path = tmp_path / name
    path.write_text(GRID.format(seed=seed))
    return load_scenario(path)


def point_files(out):
    """The point files in OUT/points (not temporary files being written)."""
    return sorted(p.name for p in (out / "points").iterdir() if not p.name.startswith("."))


def temp_files(out):
    return sorted(str(p) for p in out.rglob("*.tmp"))


def test_writes_one_file_per_point_then_summary_meta_and_plots(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    runner = Counting()
    summary = run_sweep(loaded, out, quiet=True, runner=runner)

    assert runner.calls == N_POINTS
    ids = [p.point_id for p in expand_sweep(loaded)]
    assert point_files(out) == [f"{i:05d}.parquet" for i in sorted(ids)]
    assert list(summary.columns) == ["point_id", "services.count", *COLUMNS]
    assert len(summary) == N_POINTS * 2
    assert summary["point_id"].is_monotonic_increasing
    first = pd.read_parquet(out / "points" / f"{ids[0]:05d}.parquet")
    assert list(first.columns) == list(summary.columns)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), summary)
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv.columns) == list(summary.columns) and len(csv) == len(summary)
    plots = ["services.count__conntrack.png", "services.count__mechanism.png",
             "services.count__pod-clusterip-setup.png", "services.count__pod-clusterip.png",
             "services.count__pod-pod-cross-node-setup.png", "services.count__pod-pod-cross-node.png"]
    assert json.loads((out / "manifest.json").read_text()) == {
        "format": "netmodel sweep results", "version": 1, "digest": loaded.digest,
        "points": N_POINTS, "plots": plots}
    assert sorted(p.name for p in (out / "plots").iterdir()) == plots
    assert temp_files(out) == []


def test_point_file_records_the_point_digest(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    point = expand_sweep(loaded)[2]
    meta = pq.read_schema(out / "points" / f"{point.point_id:05d}.parquet").metadata
    assert meta[b"netmodel.point_digest"].decode() == scenario_digest(point.scenario, point.profile)


def test_meta_json_says_what_ran_and_nothing_about_when(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    text = (out / "meta.json").read_text()
    meta = json.loads(text)
    assert text == json.dumps(meta, sort_keys=True, indent=2) + "\n"
    assert meta["scenario"] == "grid"
    assert meta["file"] == loaded.file
    assert meta["scenario_digest"] == loaded.digest
    assert (meta["seed"], meta["replications"]) == (7, 1)
    assert meta["profile"] == {"name": loaded.profile.name, "digest": loaded.profile.digest()}
    assert meta["axes"] == ["services.count", "kube_proxy.mode"]
    assert meta["points"] == N_POINTS
    assert set(meta["versions"]) == {"netmodel", "python", "simpy", "numba", "numpy", "pandas",
                                     "pyarrow", "pydantic", "matplotlib"}
    assert meta["engine"] == {"asked": "auto", "ran": {"fast": N_POINTS}, "fallback": []}
    assert not any(word in text for word in ("time", "date", "elapsed", "duration"))


def test_resume_runs_only_missing_points_and_gives_the_same_bytes(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    before = {name: (out / name).read_bytes() for name in ("summary.parquet", "summary.csv")}
    for name in point_files(out)[1:3]:
        (out / "points" / name).unlink()

    runner = Counting()
    run_sweep(loaded, out, quiet=True, runner=runner)
    assert runner.calls == 2
    assert {name: (out / name).read_bytes() for name in before} == before


def test_resume_reports_progress_unless_quiet(tmp_path, capsys):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    assert capsys.readouterr().err == ""
    (out / "points" / point_files(out)[0]).unlink()
    run_sweep(loaded, out, runner=fake_runner)
    err = capsys.readouterr().err
    assert f"resuming: 5 of {N_POINTS} points already done" in err
    assert "grid" in err  # the progress bar is labelled with the scenario name


def test_point_file_with_another_digest_is_run_again(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    expected = (out / "summary.parquet").read_bytes()
    first, second = point_files(out)[:2]
    shutil.copy(out / "points" / second, out / "points" / first)

    runner = Counting()
    run_sweep(loaded, out, quiet=True, runner=runner)
    assert runner.calls == 1
    assert (out / "summary.parquet").read_bytes() == expected


def test_interrupted_run_keeps_finished_points_and_a_rerun_completes(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SweepInterrupted) as stop:
        run_sweep(loaded, out, quiet=True, runner=Counting(interrupt_at=3))
    assert (stop.value.done, stop.value.total) == (2, N_POINTS)
    assert isinstance(stop.value, KeyboardInterrupt)
    assert len(point_files(out)) == 2
    assert temp_files(out) == []
    assert not (out / "summary.parquet").exists()

    runner = Counting()
    summary = run_sweep(loaded, out, quiet=True, runner=runner)
    assert runner.calls == N_POINTS - 2
    assert len(summary) == N_POINTS * 2


def test_leftover_temp_files_of_netmodel_are_removed_on_start_and_no_others(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    dead = dead_pid()
    leftovers = [out / "points" / f".netmodel-{dead}-00003.parquet.tmp",
                 out / f".netmodel-{dead}-summary.csv.tmp",
                 out / "plots" / f".netmodel-{dead}-x.png.tmp"]
    kept = [out / ".summary.csv.999.tmp",                            # not netmodel's name
            out / "points" / f".netmodel-{os.getppid()}-00001.parquet.tmp",  # writer running
            out / "notes.txt"]
    for path in leftovers + kept:
        path.write_bytes(b"half a file")
    (out / "points" / "00003.parquet").unlink()
    run_sweep(loaded, out, quiet=True, runner=fake_runner)
    assert not any(path.exists() for path in leftovers)
    assert all(path.read_bytes() == b"half a file" for path in kept)
    assert len(point_files(out)) == N_POINTS


def dead_pid():
    """A process id no process has (one that has just ended)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_results_of_another_scenario_are_refused_unless_forced(tmp_path):
    out = tmp_path / "out"
    run_sweep(write_grid(tmp_path, seed=7), out, quiet=True, runner=fake_runner)
    other = write_grid(tmp_path, seed=8, name="other.yaml")

    with pytest.raises(NetmodelError, match="holds results of a different scenario.*--force"):
        run_sweep(other, out, quiet=True, runner=fake_runner)

    # Files netmodel did not write survive --force; its own outputs are replaced.
    theirs = [out / "plots" / "mine.png", out / "points" / "notes.parquet", out / "README"]
    for path in theirs:
        path.write_bytes(b"x")
    old_plots = json.loads((out / "manifest.json").read_text())["plots"]
    runner = Counting()
    run_sweep(other, out, quiet=True, force=True, runner=runner)
    assert runner.calls == N_POINTS
    assert all(path.read_bytes() == b"x" for path in theirs)
    assert json.loads((out / "manifest.json").read_text())["digest"] == other.digest
    assert json.loads((out / "meta.json").read_text())["seed"] == 8
    assert all((out / "plots" / name).is_file() for name in old_plots)  # drawn again


def test_results_do_not_depend_on_the_number_of_jobs(tmp_path):
    loaded = write_grid(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    run_sweep(loaded, one, jobs=1, quiet=True, runner=fake_runner)
    run_sweep(loaded, two, jobs=2, quiet=True, runner=fake_runner)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for name in files:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_the_same_input_gives_the_same_bytes(tmp_path):
    loaded = write_grid(tmp_path)
    run_sweep(loaded, tmp_path / "a", quiet=True, runner=fake_runner)
    run_sweep(loaded, tmp_path / "b", quiet=True, runner=fake_runner)
    for name in ("summary.parquet", "summary.csv", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_interrupt_in_a_worker_process_keeps_finished_points(tmp_path):
    loaded = write_grid(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SweepInterrupted) as stop:
        run_sweep(loaded, out, jobs=2, quiet=True, runner=interrupt_at_ebpf_1000)
    assert stop.value.done < N_POINTS
    assert len(point_files(out)) == stop.value.done
    assert temp_files(out) == []

    summary = run_sweep(loaded, out, jobs=2, quiet=True, runner=fake_runner)
    assert len(summary) == N_POINTS * 2


def test_a_failing_point_propagates_its_error(tmp_path):
    loaded = write_grid(tmp_path)

    def broken(scenario, profile, control_sink=None, engine="auto"):
        raise NetmodelError("impossible topology", field="cluster.nodes")

    with pytest.raises(NetmodelError, match="impossible topology"):
        run_sweep(loaded, tmp_path / "out", quiet=True, runner=broken)
