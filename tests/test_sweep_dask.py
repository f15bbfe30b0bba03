"""Sweeps on Dask distributed: the bytes of a local sweep, on a LocalCluster of our own (no
process of which outlives the sweep) or on an existing cluster (which it leaves running);
workers with other model libraries, an unreachable scheduler or a missing Dask are one
line. Stopping and resuming a Dask sweep: tests/test_sweep_signals.py."""

import json
import sys

import psutil
import pytest

import netmodel.runner.executors
import netmodel.runner.point
from netmodel.cli import main
from netmodel.errors import NetmodelError
from netmodel.runner.sweep import run_sweep
from netmodel.scenario.loader import load_scenario
from tests.test_determinism import SCENARIO
from tests.test_sweep_runner import Counting, fake_runner, write_grid

distributed = pytest.importorskip("distributed")


def dask_processes() -> list[psutil.Process]:
    """Worker processes this process has spawned and that are still running."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and any("spawn_main" in part for part in p.cmdline())]


def results(folder):
    """Every file but meta.json (which names the executor) and the lock."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name not in ("meta.json", ".netmodel.lock")}


@pytest.fixture(scope="module")
def cluster():
    """An existing Dask cluster: a scheduler and one worker thread in this process."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as running:
        yield running


def test_the_real_model_on_a_local_cluster_gives_the_bytes_of_local_processes(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    loaded = load_scenario(path)
    run_sweep(loaded, tmp_path / "local", jobs=2, quiet=True)
    run_sweep(loaded, tmp_path / "dask", jobs=2, executor="dask", quiet=True)
    assert results(tmp_path / "dask") == results(tmp_path / "local")
    meta = json.loads((tmp_path / "dask" / "meta.json").read_text())
    assert meta["executor"] == "dask"
    assert dask_processes() == []


def test_a_sweep_on_an_existing_cluster_leaves_it_running(cluster, tmp_path, capsys):
    loaded = write_grid(tmp_path)
    run_sweep(loaded, tmp_path / "local", quiet=True, runner=fake_runner)
    run_sweep(loaded, tmp_path / "remote", scheduler=cluster.scheduler_address,
              runner=fake_runner)
    err = capsys.readouterr().err
    assert err.startswith(f"dask: 1 worker at {cluster.scheduler_address}\n")
    assert results(tmp_path / "remote") == results(tmp_path / "local")
    assert json.loads((tmp_path / "remote" / "meta.json").read_text())["executor"] == "dask"
    with distributed.Client(cluster) as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1


def test_workers_with_other_model_libraries_are_refused(cluster, tmp_path, monkeypatch):
    ours = netmodel.runner.executors.package_versions

    def versions(dask_worker=None):  # client.run gives a worker its Worker
        return ours() if dask_worker is None else {**ours(), "numpy": "1.0.0"}

    monkeypatch.setattr(netmodel.runner.executors, "package_versions", versions)
    runner = Counting()
    with pytest.raises(NetmodelError, match=r"--scheduler: Dask worker .* runs numpy 1.0.0 "
                                            r"\(here .*\): results would differ"):
        run_sweep(write_grid(tmp_path), tmp_path / "out", scheduler=cluster.scheduler_address,
                  runner=runner, quiet=True)
    assert runner.calls == 0


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(netmodel.runner.executors, "_DASK_CONNECT_TIMEOUT", "0.5s")
    monkeypatch.setattr(netmodel.runner.point, "run_point", fake_runner)
    write_grid(tmp_path)
    argv = ["sweep", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netmodel: error: --scheduler: cannot reach a Dask scheduler at "
                          "tcp://127.0.0.1:9: ") and err.count("\n") == 1
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9", "--executor", "local"]) == 2
    assert capsys.readouterr().err == ("netmodel: error: --scheduler: a scheduler address "
                                       "needs --executor dask\n")


def test_without_dask_installed_the_error_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    monkeypatch.setattr(netmodel.runner.point, "run_point", fake_runner)
    write_grid(tmp_path)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "out"),
                 "--quiet", "--executor", "dask"]) == 2
    assert capsys.readouterr().err == ("netmodel: error: --executor dask: needs Dask: "
                                       "pip install 'netmodel[dask]'\n")
