"""One dotted-path setter: `--set`, sweep axes and the API give a value the same meaning."""

import pytest

import netmodel
from netmodel.cli import main
from netmodel.scenario.sweep import expand_sweep

BASE = "name: mixless\ncluster: {nodes: 4}\nrun: {requests: 100}\n"


def test_setting_one_key_of_a_default_mapping_keeps_the_others(tmp_path):
    """0.3 disagreed: `--set` replaced a missing mix by an empty one (only cross-node
    traffic), a sweep axis kept the default pod-clusterip next to it."""
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    set_ = netmodel.load(path, settings={"workload.mix.pod-pod-cross-node": 1})
    path.write_text(BASE + "sweep:\n  axes:\n    workload.mix.pod-pod-cross-node: [1]\n")
    (axis,) = expand_sweep(netmodel.load(path))
    assert set_.scenario.workload.mix == axis.scenario.workload.mix == {
        "pod-clusterip": 1.0, "pod-pod-cross-node": 1.0}
    assert set_.scenario.model_copy(update={"sweep": None}) == axis.scenario


def test_setting_the_mapping_itself_replaces_it(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    only = netmodel.load(path, settings={"workload.mix": {"pod-pod-cross-node": 1}})
    assert only.scenario.workload.mix == {"pod-pod-cross-node": 1.0}


def test_run_with_set_runs_both_kinds(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    assert main(["run", str(path), "--set", "workload.mix.pod-pod-cross-node=1", "--json"]) == 0
    import json
    kinds = [row["traffic"] for row in json.loads(capsys.readouterr().out)]
    assert kinds == ["pod-pod-cross-node", "pod-clusterip"]


@pytest.mark.parametrize("command", ["check", "trace", "sweep"])
def test_every_scenario_command_takes_set(tmp_path, capsys, command):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    extra = {"trace": ["--traffic", "pod-clusterip"], "sweep": ["--out", str(tmp_path / "o"), "--quiet"],
             "check": []}[command]
    assert main([command, str(path), "--set", "cluster.nodes=0", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cluster.nodes: expected an integer >= 1, got 0" in err
    assert err.rstrip().endswith("(after --set cluster.nodes)")


def test_an_error_in_the_file_keeps_its_line_after_an_unrelated_set(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(BASE + "services: {count: 0}\n")
    assert main(["check", str(path), "--set", "cluster.nodes=5"]) == 2
    assert capsys.readouterr().err.startswith(f"netmodel: error: {path}:4: services.count: ")


def test_only_external_name_services_is_refused_by_check(tmp_path, capsys):
    """0.3 passed `check`, then `run` ended in a ValueError traceback."""
    path = tmp_path / "s.yaml"
    path.write_text("name: cnames\ninventory:\n  nodes: [{name: a}]\n  services:\n"
                    "  - {name: db, type: ExternalName}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"netmodel: error: {path}:4: inventory.services: every listed Service is type "
                   "ExternalName (a DNS CNAME with no ClusterIP and no endpoints): no Service a "
                   "client could call; list at least one other Service\n")
