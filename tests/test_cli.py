"""The `netmodel` command line: outputs, exit codes, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netmodel
import netmodel.runner.point
from netmodel.cli import main
from tests.test_sweep_runner import GRID, N_POINTS, Counting, fake_runner

REPO = Path(__file__).resolve().parents[1]

SMALL = """\
name: small
services:
  count: 20
run:
  requests: 200
  seed: 5
"""


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.format(seed=7))
    return path


@pytest.fixture
def fake(monkeypatch):
    """Replace run_point by the fake runner; count its calls."""
    runner = Counting()
    monkeypatch.setattr(netmodel.runner.point, "run_point", runner)
    return runner


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "netmodel.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"netmodel {netmodel.__version__}"


def test_check_prints_one_ok_line(grid, capsys):
    assert main(["check", str(grid)]) == 0
    assert capsys.readouterr().out == (f"ok: {grid}: scenario 'grid', {N_POINTS} sweep points, "
                                       "profile default\n")


def test_run_prints_a_table_of_the_base_scenario(grid, fake, capsys):
    assert main(["run", str(grid)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("scenario 'grid', kube-proxy iptables, netfilter conntrack, vxlan Pod network; "
                      "engine fast")
    assert out[1].split("  ")[0] == "traffic"
    assert "p50 (ms)" in out[1] and "rule lookup CPU (µs/req)" in out[1]
    assert [line.split()[0] for line in out[2:4]] == ["pod-pod-cross-node", "pod-clusterip"]
    assert out[4:] == ["conntrack: busiest node ~4,000 entries in steady state, 0.1% of "
                       "nf_conntrack_max 131,072"]             # the fake runner's figures
    assert fake.calls == 1


def test_run_json_gives_the_rows(grid, fake, capsys):
    assert main(["run", str(grid), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = [{k: (None if v != v else v) for k, v in row.items()}  # NaN -> null
                for row in fake_runner(_base(grid), None)]
    assert rows == expected


def test_run_a_sweep_point(grid, fake, capsys):
    assert main(["run", str(grid), "--point", "5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["kube_proxy.mode"] for row in rows} == {"ebpf"}
    assert main(["run", str(grid), "--point", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "scenario 'grid', cilium eBPF: legacy host routing, socket LB, tc NodePort, snat, vxlan Pod "
        "network, point 5: services.count=1000, kube_proxy.mode=ebpf; engine fast")


def test_run_with_overrides(grid, fake, capsys):
    assert main(["run", str(grid), "--set", "services.count=100", "--set",
                 "kube_proxy.mode=nftables", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["kube_proxy.mode"] == "nftables"
    expected = fake_runner(_base(grid, 100, "nftables"), None)
    assert rows[0]["p50_s"] == pytest.approx(expected[0]["p50_s"])


def test_a_bad_override_names_the_override(grid, fake, capsys):
    assert main(["run", str(grid), "--set", "services.count=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"netmodel: error: {grid}: services.count: ")
    assert err.rstrip().endswith("(after --set services.count)")


def test_an_override_inside_a_value_is_an_error(grid, fake, capsys):
    assert main(["run", str(grid), "--set", "cluster.nodes.x=1"]) == 2
    assert capsys.readouterr().err == ("netmodel: error: --set cluster.nodes.x: cluster.nodes "
                                       "is a value, it has no field 'x'\n")


def test_a_point_that_does_not_exist(grid, fake, capsys):
    assert main(["run", str(grid), "--point", "6"]) == 2
    assert capsys.readouterr().err == ("netmodel: error: --point: no sweep point 6 (points are "
                                       "0 to 5)\n")
    assert fake.calls == 0


@pytest.mark.parametrize("argv", [["run"], ["sweep", "x.yaml", "--jobs", "0"],
                                  ["run", "x.yaml", "--set", "novalue"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: netmodel" in capsys.readouterr().err


def test_sweep_writes_results_and_says_where(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    # a figure per traffic kind (2) and one of conntrack
    assert captured.out == f"wrote {out}/: summary.parquet, summary.csv, meta.json, 6 plots\n"
    assert captured.err == ""
    assert fake.calls == N_POINTS
    assert (out / "summary.parquet").is_file() and (out / "summary.csv").is_file()

    assert main(["sweep", str(grid), "--out", str(out)]) == 0
    assert f"nothing to do: all {N_POINTS} points done" in capsys.readouterr().err
    assert fake.calls == N_POINTS


def test_sweep_defaults_to_results_scenario_name(grid, fake, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(grid), "--quiet"]) == 0
    assert (tmp_path / "results" / "grid" / "summary.csv").is_file()
    assert capsys.readouterr().out.startswith(f"wrote {Path('results', 'grid')}/:")


def test_sweep_refuses_another_scenarios_folder(grid, fake, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 0
    grid.write_text(GRID.format(seed=8))
    assert main(["sweep", str(grid), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"netmodel: error: --out: {out} holds results of a different scenario" in err
    assert main(["sweep", str(grid), "--out", str(out), "--quiet", "--force"]) == 0


def test_interrupted_sweep_says_how_to_resume(grid, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(netmodel.runner.point, "run_point", Counting(interrupt_at=4))
    assert main(["sweep", str(grid), "--out", str(tmp_path / "out"), "--quiet"]) == 130
    assert capsys.readouterr().err == (f"interrupted: 3 of {N_POINTS} points done; run the "
                                       "same command again to resume\n")


def test_run_end_to_end_with_the_real_model(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    done = run_cli("run", path, "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["traffic"] == "pod-clusterip" and row["requests"] == 200
    assert 0 < row["p50_s"] < 1


def test_a_broken_scenario_is_one_line_on_stderr_and_exit_2(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ncluster:\n  nodes: 3\n  nodez: 4\n")
    for command in ("check", "run", "sweep"):
        done = run_cli(command, path, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith(f"netmodel: error: {path}:4: cluster.nodez: ")
        assert "Traceback" not in done.stderr


def test_a_missing_file_is_one_line_on_stderr(tmp_path):
    done = run_cli("check", tmp_path / "nope.yaml")
    assert (done.returncode, done.stderr) == (2, f"netmodel: error: {tmp_path / 'nope.yaml'}: "
                                                 "scenario file not found\n")


def _base(grid, count=None, mode=None):
    """The grid scenario without its sweep, optionally with another count and mode."""
    from netmodel.scenario.loader import load_scenario

    scenario = load_scenario(grid).scenario
    if count is not None:
        scenario = scenario.model_copy(update={
            "services": scenario.services.model_copy(update={"count": count}),
            "kube_proxy": scenario.kube_proxy.model_copy(update={"mode": mode})})
    return scenario
