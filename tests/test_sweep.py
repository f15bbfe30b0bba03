"""Sweep expansion: axes, ranges, grid order, zip groups, errors with lines."""

import textwrap
from pathlib import Path

import pytest

from netmodel.errors import NetmodelError
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import expand_sweep

BASE = """\
name: sweep
cluster:
  nodes: 100
"""


def points_of(tmp_path: Path, sweep: str, base: str = BASE):
    path = tmp_path / "s.yaml"
    path.write_text(base + textwrap.dedent(sweep), encoding="utf-8")
    return expand_sweep(load_scenario(path))


def values_of(tmp_path: Path, sweep: str, base: str = BASE) -> list[dict]:
    return [p.values for p in points_of(tmp_path, sweep, base)]


def error_of(tmp_path: Path, sweep: str, base: str = BASE) -> str:
    with pytest.raises(NetmodelError) as err:
        points_of(tmp_path, sweep, base)
    return str(err.value).replace(str(tmp_path / "s.yaml"), "s.yaml")


def test_no_sweep_is_one_point(tmp_path):
    [point] = points_of(tmp_path, "")
    assert (point.point_id, point.values) == (0, {})
    assert point.scenario.cluster.nodes == 100 and point.scenario.sweep is None
    assert point.profile["veth"] == 2e-6


def test_list_axis(tmp_path):
    points = points_of(tmp_path, """\
        sweep:
          axes:
            kube_proxy.mode: [iptables, ipvs, ebpf]
        """)
    assert [p.point_id for p in points] == [0, 1, 2]
    assert [p.scenario.kube_proxy.mode for p in points] == ["iptables", "ipvs", "ebpf"]
    assert all(p.scenario.sweep is None and p.scenario.cluster.nodes == 100 for p in points)


def test_values_are_si_numbers(tmp_path):
    assert values_of(tmp_path, """\
        sweep:
          axes:
            cluster.nic_speed: [10Gbps, 25Gbps]
        """) == [{"cluster.nic_speed": 10e9}, {"cluster.nic_speed": 25e9}]


def test_log_range_on_an_integer_field_rounds(tmp_path):
    assert [v["services.count"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            services.count:
              log: [10, 10000]
              num: 7
        """, base="name: big\ncluster:\n  nodes: 300\n  pod_cidr: 10.244.0.0/14\n")] == \
        [10, 32, 100, 316, 1000, 3162, 10000]


def test_rounding_drops_duplicates_in_order(tmp_path):
    counts = [v["services.count"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            services.count:
              log: [1, 10]
              num: 8
        """)]
    assert counts == [1, 2, 3, 4, 5, 7, 10]
    assert all(isinstance(c, int) for c in counts)


def test_log_range_of_floats(tmp_path):
    assert [v["workload.rate"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            workload.rate:
              log: [100/s, 100k/s]
              num: 4
        """)] == [100.0, 1000.0, 10000.0, 100000.0]


def test_linear_range_with_num(tmp_path):
    assert [v["services.zipf_exponent"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            services.zipf_exponent:
              linear: [0.5, 1.5]
              num: 5
        """)] == [0.5, 0.75, 1.0, 1.25, 1.5]


def test_linear_range_with_step_includes_the_end_on_the_grid(tmp_path):
    assert [v["workload.server.workers"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            workload.server.workers:
              linear: [2, 10]
              step: 4
        """)] == [2, 6, 10]
    assert [v["services.zipf_exponent"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            services.zipf_exponent:
              linear: [0.1, 0.7]
              step: 0.2
        """)] == [0.1, 0.3, 0.5, 0.7]


def test_linear_range_with_step_stops_before_an_end_off_the_grid(tmp_path):
    assert [v["workload.server.workers"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            workload.server.workers:
              linear: [2, 11]
              step: 4
        """)] == [2, 6, 10]


def test_linear_range_with_unit_ends(tmp_path):
    points = points_of(tmp_path, """\
        sweep:
          axes:
            workload.server.service_time:
              linear: ['1ms', '3ms']
              num: 3
        """)
    assert [p.values["workload.server.service_time"] for p in points] == [0.001, 0.002, 0.003]
    assert [p.scenario.workload.server.service_time for p in points] == [0.001, 0.002, 0.003]


def test_linear_range_with_unit_step(tmp_path):
    assert [v["workload.timeout"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            workload.timeout:
              linear: [1s, 2s]
              step: 250ms
        """)] == [1.0, 1.25, 1.5, 1.75, 2.0]


def test_grid_product_last_axis_fastest(tmp_path):
    values = values_of(tmp_path, """\
        sweep:
          axes:
            services.count: [10, 20]
            kube_proxy.mode: [iptables, ipvs, nftables]
            cluster.mtu: [1500, 9000]
        """)
    assert len(values) == 12
    assert [(v["services.count"], v["kube_proxy.mode"], v["cluster.mtu"]) for v in values[:4]] == [
        (10, "iptables", 1500), (10, "iptables", 9000), (10, "ipvs", 1500), (10, "ipvs", 9000)]
    assert (values[-1]["services.count"], values[-1]["kube_proxy.mode"], values[-1]["cluster.mtu"]) == \
        (20, "nftables", 9000)
    assert list(values[0]) == ["services.count", "kube_proxy.mode", "cluster.mtu"]


def test_zip_group_varies_together_at_its_first_member(tmp_path):
    values = values_of(tmp_path, """\
        sweep:
          axes:
            cluster.cni_datapath: [vxlan, native]
            kube_proxy.mode: [iptables, ipvs]
            cluster.mtu: [1500, 9000]
          zip:
            - [cluster.mtu, cluster.cni_datapath]
        """)
    assert [(v["cluster.cni_datapath"], v["cluster.mtu"], v["kube_proxy.mode"]) for v in values] == [
        ("vxlan", 1500, "iptables"), ("vxlan", 1500, "ipvs"),
        ("native", 9000, "iptables"), ("native", 9000, "ipvs")]
    assert list(values[0]) == ["cluster.cni_datapath", "kube_proxy.mode", "cluster.mtu"]


def test_zip_group_of_unequal_lengths(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            services.count: [10, 20, 30]
            cluster.mtu: [1500, 9000]
          zip:
            - [services.count, cluster.mtu]
        """) == ("s.yaml:9: sweep.zip[0]: zipped axes need the same number of values, "
                 "got services.count: 3, cluster.mtu: 2")


def test_zip_name_that_is_not_an_axis(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            services.count: [10, 20]
          zip:
            - [services.count,
               cluster.mtu]
        """) == "s.yaml:9: sweep.zip[0][1]: 'cluster.mtu' is not an axis (axes: services.count)"


def test_axis_in_two_zip_groups(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            services.count: [10, 20]
            cluster.mtu: [1500, 9000]
            kube_proxy.mode: [iptables, ipvs]
          zip:
            - [services.count, cluster.mtu]
            - [kube_proxy.mode, services.count]
        """) == "s.yaml:11: sweep.zip[1][1]: axis 'services.count' is already in zip group 0"


def test_unknown_axis_path_names_the_known_fields(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            kube_proxy.mode: [ipvs]
            services.cout: [10, 20]
        """) == ("s.yaml:7: sweep.axes.services.cout: unknown field 'cout' in services "
                 "(known: count, endpoints_per_service, popularity, zipf_exponent, endpoints_max, type, "
                 "external_traffic_policy)")


def test_unknown_top_level_axis_and_unsweepable_fields(tmp_path):
    sweepable = [name for name in Scenario.model_fields
                 if name not in ("name", "sweep", "inventory")]
    assert sweepable[:5] == ["description", "profile", "costs", "cluster", "services"]
    assert error_of(tmp_path, "sweep:\n  axes:\n    nodes: [1, 2]\n") == (
        "s.yaml:6: sweep.axes.nodes: unknown field 'nodes' in the scenario (known: "
        f"{', '.join(sweepable)})")
    assert error_of(tmp_path, "sweep:\n  axes:\n    name: [a, b]\n") == \
        "s.yaml:6: sweep.axes.name: 'name' cannot be swept"
    assert error_of(tmp_path, "sweep:\n  axes:\n    inventory.nodes: [[]]\n") == \
        "s.yaml:6: sweep.axes.inventory.nodes: 'inventory' cannot be swept"
    assert error_of(tmp_path, "sweep:\n  axes:\n    cluster.mtu.bytes: [1500]\n") == \
        "s.yaml:6: sweep.axes.cluster.mtu.bytes: cluster.mtu is a value, it has no field 'bytes'"


def test_invalid_point_names_its_values(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            kube_proxy.mode: [ipvs]
            services.count: [100, 5000]
        """) == ("s.yaml:4: sweep: point 1 (kube_proxy.mode='ipvs', services.count=5000): "
                 "services.count x endpoints_per_service = 15,000 endpoint Pods do not fit on "
                 "cluster.nodes x pods_per_node = 11,000")


def test_invalid_list_value(tmp_path):
    assert error_of(tmp_path, "sweep:\n  axes:\n    cluster.mtu: [1500, 1000]\n") == \
        "s.yaml:4: sweep: point 1 (cluster.mtu=1000): cluster.mtu: expected an integer >= 1280, got 1000"


def test_bad_range_end(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            cluster.nic_speed:
              linear: [1Gbps, 10Gbs]
              num: 4
        """) == ("s.yaml:6: sweep.axes.cluster.nic_speed: range end '10Gbs': cluster.nic_speed: "
                 "unknown bitrate unit 'Gbs' in '10Gbs' (accepted: bps, Kbps, Mbps, Gbps, Tbps)")


def test_range_over_a_non_numeric_field(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            cluster.offloads:
              linear: [0, 1]
              num: 2
        """) == ("s.yaml:6: sweep.axes.cluster.offloads: a range needs a numeric field, "
                 "cluster.offloads takes False; give a list of values instead")


def test_dict_key_axis(tmp_path):
    points = points_of(tmp_path, """\
        sweep:
          axes:
            workload.mix.pod-clusterip: [0.5, 1]
        """, base=BASE + "workload:\n  mix:\n    pod-pod-same-node: 1\n")
    assert [p.values for p in points] == [{"workload.mix.pod-clusterip": 0.5},
                                          {"workload.mix.pod-clusterip": 1.0}]
    assert points[0].scenario.workload.mix == {"pod-pod-same-node": 1.0, "pod-clusterip": 0.5}


def test_unknown_dict_key_axis(tmp_path):
    assert error_of(tmp_path, "sweep:\n  axes:\n    workload.mix.pod-nodeport: [1]\n") == (
        "s.yaml:6: sweep.axes.workload.mix.pod-nodeport: unknown field 'pod-nodeport' in "
        "workload.mix (known: pod-pod-same-node, pod-pod-cross-node, pod-clusterip, "
        "external-nodeport, external-loadbalancer, external-ingress, kubectl-proxy, "
        "kubectl-port-forward)")


def test_axis_inside_another_axis(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            workload.mix: [{pod-clusterip: 1}]
            workload.mix.pod-clusterip: [1, 2]
        """) == ("s.yaml:7: sweep.axes.workload.mix.pod-clusterip: axis 'workload.mix.pod-clusterip' "
                 "is inside axis 'workload.mix'; sweep one of them")


def test_cost_axis_changes_the_point_profile(tmp_path):
    points = points_of(tmp_path, """\
        costs:
          veth: 3us
        sweep:
          axes:
            costs.iptables_rule: [10ns, 20ns]
        """)
    assert [p.values["costs.iptables_rule"] for p in points] == [pytest.approx(1e-8, rel=1e-12),
                                                                  pytest.approx(2e-8, rel=1e-12)]
    assert [p.profile["iptables_rule"] for p in points] == [p.values["costs.iptables_rule"] for p in points]
    assert all(p.profile["veth"] == 3e-6 for p in points)
    assert points[1].scenario.costs == {"veth": "3us", "iptables_rule": "20ns"}


def test_cost_axis_range(tmp_path):
    points = points_of(tmp_path, """\
        sweep:
          axes:
            costs.iptables_rule:
              log: [10ns, 1us]
              num: 3
        """)
    assert [p.profile["iptables_rule"] for p in points] == [1e-8, 1e-7, 1e-6]


def test_unknown_cost_axis(tmp_path):
    message = error_of(tmp_path, "sweep:\n  axes:\n    costs.iptables: [1ns]\n")
    assert message.startswith("s.yaml:6: sweep.axes.costs.iptables: unknown field 'iptables' in costs "
                              "(known: tcp_stack_tx, tcp_stack_rx, ")


def test_cost_axis_values_need_units(tmp_path):
    assert error_of(tmp_path, "sweep:\n  axes:\n    costs.veth: [2us, 3]\n") == \
        "s.yaml:4: sweep: point 1 (costs.veth=3): costs.veth: give a unit, e.g. '3us'"


def test_empty_axis(tmp_path):
    assert error_of(tmp_path, "sweep:\n  axes:\n    cluster.mtu: []\n") == \
        "s.yaml:6: sweep.axes.cluster.mtu: an axis needs at least one value"


def test_log_range_needs_positive_ends(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            run.warmup:
              log: [0, 1s]
              num: 3
        """) == "s.yaml:6: sweep.axes.run.warmup: a log range needs ends > 0, got 0 and 1"


def test_descending_linear_range_with_step(tmp_path):
    assert [v["workload.rate"] for v in values_of(tmp_path, """\
        sweep:
          axes:
            workload.rate:
              linear: [1k/s, 100/s]
              step: 300/s
        """)] == [1000.0, 700.0, 400.0, 100.0]


def test_step_range_too_long(tmp_path):
    assert error_of(tmp_path, """\
        sweep:
          axes:
            run.seed:
              linear: [0, 100000]
              step: 1
        """) == "s.yaml:6: sweep.axes.run.seed: the range gives 100,001 values, more than 10,000"


def test_whole_section_axis_takes_defaults_for_what_it_does_not_give(tmp_path):
    points = points_of(tmp_path, "sweep:\n  axes:\n    cluster: [{nodes: 5}, {mtu: 9000}]\n")
    assert [(p.scenario.cluster.nodes, p.scenario.cluster.mtu) for p in points] == [(5, 1500), (3, 9000)]
    assert points[0].values["cluster"]["nodes"] == 5


def test_profile_axis_loads_each_profile(tmp_path):
    default = (Path(__file__).parents[1] / "netmodel" / "costs" / "profiles" / "default.yaml")
    (tmp_path / "slow.yaml").write_text(
        default.read_text(encoding="utf-8").replace("value: 2us", "value: 9us"), encoding="utf-8")
    points = points_of(tmp_path, """\
        costs:
          bridge: 4us
        sweep:
          axes:
            profile: [default, slow.yaml]
        """)
    assert [p.values["profile"] for p in points] == ["default", "slow.yaml"]
    assert [p.profile["veth"] for p in points] == [2e-6, 9e-6]
    assert [p.profile["bridge"] for p in points] == [4e-6, 4e-6]


INVENTORY = """\
name: listed
inventory:
  nodes: [{name: a}, {name: b}]
  services:
  - {name: web, endpoints: [{ip: 10.244.0.5, node: a}, {ip: 10.244.1.5, node: b}]}
"""


def test_inventory_scenario_expands_as_written(tmp_path):
    """Points are validated from the fields the file gives, so the checks on what was
    given (cluster.nodes, services.count next to an inventory) see the file as written."""
    [point] = points_of(tmp_path, "", base=INVENTORY)
    assert point.scenario.node_count == 2 and point.scenario.inventory is not None
    modes = points_of(tmp_path, "sweep:\n  axes:\n    kube_proxy.mode: [iptables, ipvs]\n",
                      base=INVENTORY)
    assert [p.scenario.kube_proxy.mode for p in modes] == ["iptables", "ipvs"]
    assert error_of(tmp_path, "sweep:\n  axes:\n    services.count: [5]\n", base=INVENTORY) == (
        "s.yaml:6: sweep: point 0 (services.count=5): services.count does not apply with an "
        "inventory: its Services and endpoints are listed")


def test_one_key_of_an_unwritten_mapping_keeps_its_default_keys(tmp_path):
    [point] = points_of(tmp_path, "sweep:\n  axes:\n    workload.mix.pod-pod-same-node: [0.5]\n")
    assert point.scenario.workload.mix == {"pod-clusterip": 1.0, "pod-pod-same-node": 0.5}
    [point] = points_of(tmp_path, "sweep:\n  axes:\n    external.ingress.replicas: [5]\n")
    assert point.scenario.external.ingress.replicas == 5 and point.scenario.cluster.nodes == 100
