"""`netmodel compare`: the sweep it runs, the decision table, a verdict computed from the
numbers, the results folder, and mistakes as one line."""

import json
import math

import pandas as pd
import pytest

import netmodel
from netmodel.cli import main
from netmodel.results.compare import Facts, decision_table, verdict
from netmodel.scenario.compare import parse_versus, plan_comparison, versus_fields

TINY = """\
name: tiny
cluster: {nodes: 4}
services: {count: 20, endpoints_per_service: 2}
run: {requests: 300, replications: 2}
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_without_a_sweep_the_range_is_around_the_scenarios_own_values(tiny):
    plan = plan_comparison(netmodel.load(tiny), "kube_proxy.mode", ["iptables", "ebpf"])
    axes = plan.loaded.scenario.sweep.axes
    assert axes["services.count"] == [2, 20, 200] and axes["workload.rate"] == [500.0, 1000.0, 2000.0]
    assert list(axes)[-1] == "kube_proxy.mode" and axes["kube_proxy.mode"] == ["iptables", "ebpf"]
    assert plan.reference == {"services.count": 20, "workload.rate": 1000.0}
    points = {p.point_id: p.values for p in plan.points()}
    assert [points[i] for i in plan.reference_points().values()] == [
        {"services.count": 20, "workload.rate": 1000.0, "kube_proxy.mode": m} for m in ("iptables", "ebpf")]


def test_a_service_count_that_does_not_fit_the_cluster_is_left_out_with_a_note(tmp_path):
    path = tmp_path / "full.yaml"
    path.write_text("name: full\ncluster: {nodes: 2, pods_per_node: 30}\n"
                    "services: {count: 20, endpoints_per_service: 2}\n")
    plan = plan_comparison(netmodel.load(path), "kube_proxy.mode", ["iptables", "ebpf"])
    assert plan.loaded.scenario.sweep.axes["services.count"] == [2, 20]
    assert any(n.startswith("left out services.count=200:") for n in plan.notes)


def test_over_a_scenarios_own_sweep_the_compared_field_replaces_its_axis():
    plan = plan_comparison(netmodel.load("scenarios/quickstart.yaml"), "kube_proxy.mode",
                           ["iptables", "nftables"])
    axes = plan.loaded.scenario.sweep.axes
    assert list(axes) == ["services.count", "kube_proxy.mode"]
    assert axes["kube_proxy.mode"] == ["iptables", "nftables"]
    assert plan.reference == {"services.count": 1000}


@pytest.mark.parametrize("vs, says", [
    ("kube_proxy.mode", "expected FIELD=A,B"),
    ("kube_proxy.mode=iptables", "give two or more different values"),
    ("kube_proxy.mode=iptables,iptables", "give two or more different values"),
    ("kube_proxy.mode=iptables,ipvz", "--vs kube_proxy.mode=ipvz"),
    ("kube_proxy.nope=1,2", "unknown field 'nope'"),
])
def test_a_bad_vs_is_one_line_and_exit_2(tiny, capsys, vs, says):
    assert main(["compare", str(tiny), "--vs", vs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netmodel: error: ") and says in err


def test_a_field_that_moves_along_is_zipped_with_the_compared_one(tiny):
    """A migration that changes two fields at once: each setting is the pair, so the points
    are the default range x 2, not x 4."""
    plan = plan_comparison(netmodel.load(tiny), "kube_proxy.mode", ["iptables", "ebpf"],
                           {"cluster.cni_datapath": ["vxlan", "native"]})
    sweep = plan.loaded.scenario.sweep
    assert sweep.axes["cluster.cni_datapath"] == ["vxlan", "native"]
    assert sweep.zip == [["kube_proxy.mode", "cluster.cni_datapath"]]
    assert len(plan.points()) == 3 * 3 * 2
    points = {p.point_id: p for p in plan.points()}
    ran = {m: points[i].scenario for m, i in plan.reference_points().items()}
    assert [(s.kube_proxy.mode, s.cluster.cni_datapath) for s in ran.values()] == [
        ("iptables", "vxlan"), ("ebpf", "native")]
    own = plan_comparison(netmodel.load("scenarios/quickstart.yaml"), "kube_proxy.mode", ["iptables", "ebpf"],
                          {"cluster.cni_datapath": ["vxlan", "native"]}).loaded.scenario.sweep
    assert list(own.axes) == ["services.count", "kube_proxy.mode", "cluster.cni_datapath"]
    assert own.zip == [["kube_proxy.mode", "cluster.cni_datapath"]]


def test_fields_moving_along_are_checked_together():
    """Each setting is validated as the pair it is: lognormal needs its p99 beside it."""
    loaded = netmodel.load("scenarios/quickstart.yaml")
    field = "workload.server.service_time_distribution"
    plan = plan_comparison(loaded, field, ["exponential", "lognormal"],
                           {"workload.server.service_time_p99": [None, "1ms"]})
    assert [p.scenario.workload.server.service_time_p99 for p in plan.points()][-1] == 1e-3
    with pytest.raises(netmodel.NetmodelError, match="lognormal needs service_time_p99") as err:
        plan_comparison(loaded, field, ["exponential", "lognormal"],
                        {"workload.server.service_time_p99": ["1ms", None]})
    assert err.value.field == (f"--vs {field}=lognormal with workload.server.service_time_p99=None")


@pytest.mark.parametrize("also, says", [
    ("cluster.cni_datapath=vxlan", "--vs cluster.cni_datapath: give one value per setting of "
                                   "kube_proxy.mode (2), got ['vxlan']"),
    ("cluster.cni_datapath=vxlan,natve", "--vs kube_proxy.mode=ebpf with cluster.cni_datapath=natve"),
    ("kube_proxy.mode=ipvs,nftables", "--vs kube_proxy.mode: compared twice"),
    ("cluster.nope=1,2", "unknown field 'nope'"),
])
def test_a_bad_second_vs_is_one_line_and_exit_2(tiny, capsys, also, says):
    assert main(["compare", str(tiny), "--vs", "kube_proxy.mode=iptables,ebpf", "--vs", also]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netmodel: error: ") and says in err, err


def test_versus_fields_takes_one_or_several():
    assert versus_fields("cluster.mtu=1500,9000") == ("cluster.mtu", [1500, 9000], {})
    assert versus_fields(("cluster.mtu", (1500, 9000))) == ("cluster.mtu", [1500, 9000], {})
    both = ("kube_proxy.mode", ["iptables", "ebpf"], {"cluster.cni_datapath": ["vxlan", "native"]})
    assert versus_fields(["kube_proxy.mode=iptables,ebpf", ("cluster.cni_datapath", ["vxlan", "native"])]) == both
    assert versus_fields(("kube_proxy.mode=iptables,ebpf", "cluster.cni_datapath=vxlan,native")) == both


def test_parse_versus_reads_each_value_as_yaml():
    assert parse_versus("cluster.mtu=1500,9000") == ("cluster.mtu", [1500, 9000])
    assert parse_versus("kube_proxy.min_sync_period=1s, 10s") == ("kube_proxy.min_sync_period",
                                                                  ["1s", "10s"])


def summary_of(p50, programming=None):
    """Two settings over services.count 10, 100, 1000: p50 of each as given (seconds)."""
    rows = []
    for i, (count, mode) in enumerate((c, m) for c in (10, 100, 1000) for m in ("iptables", "ebpf")):
        rows.append({"point_id": i, "services.count": count, "kube_proxy.mode": mode,
                     "traffic": "pod-clusterip", "requests": 1000, "completed": 1000, "dropped": 0,
                     "dropped_stale_endpoint": 0, "in_flight": 0, "measured": 1000,
                     "p50_s": p50[mode][[10, 100, 1000].index(count)], "p99_s": 1e-3,
                     "p99_s_ci95": 1e-5, "setup_p50_s": 2e-4, "setup_p99_s": 4e-4,
                     "rule_lookup_cpu_s_per_request": 1e-6,
                     "softirq_cpu_s_per_request": 1e-4, "conntrack_fill": 0.1,
                     "network_programming_p50_s": (programming or {}).get(mode, math.nan),
                     "network_programming_p99_s": (programming or {}).get(mode, math.nan),
                     "stale_window_p99_s": math.nan, "replications": 2})
    return pd.DataFrame(rows)


def facts(reference=(2, 3)):
    return Facts("kube_proxy.mode", ("iptables", "ebpf"), dict(zip(("iptables", "ebpf"), reference)),
                 10, 1000.0)


def test_the_verdict_says_where_the_settings_diverge_and_by_how_much():
    """iptables' p50 grows to +20% at 1,000 Services; eBPF programs 100x faster."""
    summary = summary_of({"iptables": [5e-4, 5.1e-4, 6e-4], "ebpf": [5e-4, 5e-4, 5e-4]},
                         programming={"iptables": 5.0, "ebpf": 0.05})
    table = decision_table(summary, facts())
    p50 = table[table.metric == "request latency p50"].set_index("setting")
    assert p50.loc["ebpf", "value"] == pytest.approx(0.5) and p50.loc["ebpf", "delta"] == pytest.approx(-0.01)
    cores = table[table.metric.str.startswith("node CPU")].set_index("setting")
    assert cores.loc["iptables", "value"] == pytest.approx(1e-4 * 1000 / 10 * 1e3)   # 10 millicores
    said = verdict(table, summary, facts(), ["services.count", "kube_proxy.mode"])
    assert ("Along services.count, p50 latency of pod-clusterip differs by more than 5% from 1000 on; "
            "at 1000, iptables is +100 µs (+20%) over ebpf.") in said
    assert ("Network programming p50: iptables 5 s; ebpf 0.05 s (−4.95 s, 1/100 of iptables).") in said
    assert any(s.startswith("The same within 5% under every setting: request latency p50 (pod-clusterip")
               for s in said)


def test_the_verdict_follows_the_numbers_not_the_names():
    """Swap which mode is slow and the verdict swaps too: nothing is written by hand."""
    summary = summary_of({"iptables": [5e-4, 5e-4, 5e-4], "ebpf": [5e-4, 5.1e-4, 6e-4]})
    said = verdict(decision_table(summary, facts()), summary, facts(),
                   ["services.count", "kube_proxy.mode"])
    assert any("at 1000, ebpf is +100 µs (+20%) over iptables" in s for s in said)
    flat = summary_of({"iptables": [5e-4] * 3, "ebpf": [5e-4] * 3})
    said = verdict(decision_table(flat, facts()), flat, facts(), ["services.count", "kube_proxy.mode"])
    assert said[0] == "No figure differs by more than 5% between iptables, ebpf at the scenario's own point."
    assert any("stays within 5%" in s for s in said)


@pytest.mark.validation
def test_compare_end_to_end_writes_a_folder_that_opens_and_reports(tiny, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(tiny), "--vs", "kube_proxy.mode=iptables,nftables",
                 "--set", "services.endpoints_per_service=3", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("compare kube_proxy.mode: iptables, nftables (baseline iptables); "
                              "the table at services.count = 20, workload.rate = 1000.0")
    assert "network programming p99" in printed and "verdict:" in printed
    assert "data paths" not in printed   # the settings name them already
    folder = netmodel.open_results(out)
    assert folder.comparison["settings"] == ["iptables", "nftables"]
    assert folder.comparison["verdict"] == [line[4:] for line in printed.splitlines()
                                            if line.startswith("  - ")]
    assert set(folder.decision["setting"]) == {"iptables", "nftables"}
    assert "endpoints_per_service: 3" in folder.scenario_text()       # --set took effect
    assert folder.rollout() is not None and folder.rollout().summary["network_programming_p99_s"].notna().all()
    names = [p.name for p in folder.plots()]
    assert "compare__services.count__pod-clusterip.png" in names
    assert "services.count__pod-clusterip.png" in names
    programming = folder.decision.query("metric == 'network programming p99'").set_index("setting")
    assert programming.loc["nftables", "value"] < programming.loc["iptables", "value"]
    assert json.loads((out / "comparison.json").read_text())["rollout"] == "rollout"
    # Resumable like a sweep: the same command again runs nothing new and decides the same.
    assert main(["compare", str(tiny), "--vs", "kube_proxy.mode=iptables,nftables",
                 "--set", "services.endpoints_per_service=3", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.validation
def test_the_decision_names_the_data_path_an_ebpf_setting_resolved_to(tiny, tmp_path):
    loaded = netmodel.override(netmodel.load(tiny), {"kube_proxy.ebpf.masquerade": "bpf"})
    decision = netmodel.compare(loaded, "kube_proxy.mode=iptables,ebpf", tmp_path / "cmp", quiet=True)
    assert decision.text().splitlines()[1] == \
        "data paths: iptables: iptables; ebpf: cilium eBPF, BPF host routing"
    legacy = netmodel.override(netmodel.load(tiny), {"cluster.kernel": "5.4"})
    decision = netmodel.compare(legacy, "kube_proxy.mode=iptables,ebpf", tmp_path / "old", quiet=True)
    assert decision.dataplanes() == {"iptables": ["iptables"], "ebpf": ["cilium eBPF, legacy host routing"]}


def test_comparing_a_field_of_the_default_range_makes_it_the_compared_axis(tiny):
    plan = plan_comparison(netmodel.load(tiny), "workload.rate", ["500/s", "4000/s"])
    assert dict(plan.loaded.scenario.sweep.axes) == {"services.count": [2, 20, 200],
                                                     "workload.rate": ["500/s", "4000/s"]}
    assert plan.reference == {"services.count": 20}
    assert list(plan.reference_points()) == ["500.0", "4000.0"]
