"""Scenario files: schema defaults, safe YAML, line-numbered one-line errors, digest."""

import textwrap
from pathlib import Path

import pytest

from netmodel.costs.profile import load_profile
from netmodel.errors import NetmodelError
from netmodel.scenario.loader import load_scenario, parse_scenario
from netmodel.scenario.schema import Scenario
from netmodel.scenario.sweep import expand_sweep

REPO = Path(__file__).parents[1]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The one-line error of loading `text`, with the tmp folder cut off."""
    path = write(tmp_path, text)
    with pytest.raises(NetmodelError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message
    return message.replace(str(path), "s.yaml")


# --- schema defaults ---------------------------------------------------------------

def test_defaults_of_a_scenario_with_only_a_name(tmp_path):
    loaded = load_scenario(write(tmp_path, "name: tiny\n"))
    s = loaded.scenario
    assert (s.profile, s.costs, s.sweep, s.description) == ("default", {}, None, "")
    assert (s.cluster.nodes, s.cluster.pods_per_node, s.cluster.nic_speed, s.cluster.mtu) == (3, 110, 10e9, 1500)
    assert (s.cluster.cni_datapath, s.cluster.offloads, s.cluster.softirq_cores) == ("vxlan", True, 2)
    assert (s.services.count, s.services.endpoints_per_service, s.services.popularity) == (10, 3, "uniform")
    assert s.kube_proxy.mode == "iptables"
    assert (s.workload.rate, s.workload.request_size, s.workload.response_size) == (1000.0, 100.0, 1024.0)
    assert s.workload.mix == {"pod-clusterip": 1.0}
    assert (s.workload.server.workers, s.workload.server.service_time) == (4, 100e-6)
    assert s.run.length == ("requests", 10_000.0)
    assert (s.run.seed, s.run.replications, s.run.warmup) == (1, 1, 0.0)


def test_units_are_parsed_to_si(tmp_path):
    loaded = load_scenario(write(tmp_path, """\
        name: units
        cluster:
          nic_speed: 25Gbps
        workload:
          rate: 2k/s
          response_size: 64KiB
          server:
            service_time: 1.5ms
        run:
          duration: 2min
        """))
    s = loaded.scenario
    assert (s.cluster.nic_speed, s.workload.rate, s.workload.response_size) == (25e9, 2000.0, 65536.0)
    assert s.workload.server.service_time == 1.5e-3
    assert s.run.length == ("duration", 120.0)


def test_raw_data_and_lines(tmp_path):
    path = write(tmp_path, """\
        # a comment
        name: lines
        cluster:
          nodes: 4

          mtu: 9000
        sweep:
          axes:
            kube_proxy.mode: [iptables, ipvs]
          zip:
            - [kube_proxy.mode]
        """)
    loaded = load_scenario(str(path))
    assert loaded.path == path and loaded.file == str(path) and loaded.base_dir == tmp_path
    assert loaded.raw["cluster"] == {"nodes": 4, "mtu": 9000}
    assert loaded.lines[("name",)] == 2
    assert loaded.lines[("cluster", "mtu")] == 6
    assert loaded.lines[("sweep", "axes", "kube_proxy.mode")] == 9
    assert loaded.lines[("sweep", "zip", 0)] == 11
    assert loaded.lines[("sweep", "zip", 0, 0)] == 11


def test_parse_scenario_from_text():
    loaded = parse_scenario("name: t\nservices: {count: 7}\n", "inline.yaml", Path("."))
    assert loaded.path is None and loaded.file == "inline.yaml"
    assert loaded.scenario.services.count == 7


def test_anchors_and_merge_keys_are_plain_yaml(tmp_path):
    loaded = load_scenario(write(tmp_path, """\
        name: anchors
        cluster: &big
          nodes: 50
        workload:
          server:
            <<: {workers: 8}
            queue_limit: 16
        """))
    assert loaded.scenario.cluster.nodes == 50
    assert (loaded.scenario.workload.server.workers, loaded.scenario.workload.server.queue_limit) == (8, 16)


# --- errors: one line, file:line: field: message ------------------------------------

def test_unknown_key_names_line_and_known_keys(tmp_path):
    assert error_of(tmp_path, """\
        name: x
        cluster:
          nodes: 3
          nodez: 4
        """) == ("s.yaml:4: cluster.nodez: unknown field 'nodez' (known: nodes, pods_per_node, "
                 "nic_speed, mtu, cni_datapath, offloads, softirq_cores, provider, "
                 "node_network, pod_cidr, node_cidr_mask, service_cidr, conntrack_max, "
                 "conntrack_time_wait, netdev_max_backlog, nic_rx_ring, tcp_syn_retries, "
                 "tcp_retries2, tcp_rto_min, kernel)")


def test_unknown_top_level_section(tmp_path):
    # the sections in schema order (name, description, profile, costs, cluster, ...)
    sections = ", ".join(Scenario.model_fields)
    assert sections.startswith("name, description, profile, costs, cluster, services, ")
    assert sections.endswith(", inventory, sweep")
    assert error_of(tmp_path, "name: x\nkubeproxy:\n  mode: ipvs\n") == (
        f"s.yaml:2: kubeproxy: unknown field 'kubeproxy' (known: {sections})")


def test_constraint_error(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  mtu: 80\n") == \
        "s.yaml:3: cluster.mtu: expected an integer >= 1280, got 80"


def test_wrong_type(tmp_path):
    assert error_of(tmp_path, "name: x\nservices:\n  count: many\n") == \
        "s.yaml:3: services.count: expected an integer, got 'many'"
    assert error_of(tmp_path, "name: x\ncluster:\n  offloads: maybe\n") == \
        "s.yaml:3: cluster.offloads: expected true or false, got 'maybe'"
    assert error_of(tmp_path, "name: x\ncluster: [1, 2]\n") == \
        "s.yaml:2: cluster: expected a mapping, got [1, 2]"


def test_literal_error_lists_the_choices(tmp_path):
    assert error_of(tmp_path, "name: x\nkube_proxy:\n  mode: ipvss\n") == (
        "s.yaml:3: kube_proxy.mode: expected one of 'iptables', 'ipvs', 'nftables' or 'ebpf', "
        "got 'ipvss'")


def test_unknown_traffic_kind_points_at_the_key(tmp_path):
    assert error_of(tmp_path, "name: x\nworkload:\n  mix:\n    pod-clusterip: 1\n    pod-nodeport: 1\n") == (
        "s.yaml:5: workload.mix.pod-nodeport: expected one of 'pod-pod-same-node', "
        "'pod-pod-cross-node', 'pod-clusterip', 'external-nodeport', 'external-loadbalancer', "
        "'external-ingress', 'kubectl-proxy' or 'kubectl-port-forward', got 'pod-nodeport'")


def test_unit_error_keeps_the_units_text(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  nic_speed: 10Gbs\n") == (
        "s.yaml:3: cluster.nic_speed: unknown bitrate unit 'Gbs' in '10Gbs' "
        "(accepted: bps, Kbps, Mbps, Gbps, Tbps)")


def test_negative_duration(tmp_path):
    assert error_of(tmp_path, "name: x\nworkload:\n  server:\n    service_time: -1ms\n") == \
        "s.yaml:4: workload.server.service_time: expected a value >= 0, got '-1ms'"


def test_name_is_required(tmp_path):
    assert error_of(tmp_path, "\n# no name\ncluster:\n  nodes: 3\n") == \
        "s.yaml:3: name: required field 'name' is missing"


def test_bad_name(tmp_path):
    assert error_of(tmp_path, "name: my scenario\n") == \
        "s.yaml:1: name: expected text matching ^[A-Za-z0-9][A-Za-z0-9_.-]*$, got 'my scenario'"


def test_requests_and_duration_both_given(tmp_path):
    assert error_of(tmp_path, "name: x\nrun:\n  requests: 100\n  duration: 1s\n") == \
        "s.yaml:2: run: give either requests or duration, not both"


def test_pods_must_fit_on_the_nodes(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  nodes: 2\nservices:\n  count: 100\n") == (
        "s.yaml:1: services.count x endpoints_per_service = 300 endpoint Pods do not fit on "
        "cluster.nodes x pods_per_node = 220")


def test_several_errors_report_the_first_by_line(tmp_path):
    assert error_of(tmp_path, "name: x\nrun:\n  seed: -1\ncluster:\n  nodes: 0\n  mtu: 1\n") == \
        "s.yaml:3: run.seed: expected an integer >= 0, got -1 (and 2 more errors)"


def test_sweep_axis_that_is_neither_list_nor_range(tmp_path):
    assert error_of(tmp_path, "name: x\nsweep:\n  axes:\n    services.count: 5\n") == \
        "s.yaml:4: sweep.axes.services.count: expected a list or a mapping, got 5"


def test_sweep_range_errors(tmp_path):
    assert error_of(tmp_path, "name: x\nsweep:\n  axes:\n    services.count:\n      log: [1, 10]\n") == \
        "s.yaml:4: sweep.axes.services.count: a log range needs 'num' (number of values)"
    assert error_of(tmp_path, "name: x\nsweep:\n  axes:\n    a:\n      log: [1, 10]\n      num: 3\n"
                              "      nm: 3\n") == \
        "s.yaml:7: sweep.axes.a.nm: unknown field 'nm' (known: log, linear, num, step)"
    assert error_of(tmp_path, "name: x\nsweep:\n  axes:\n    a:\n      linear: [1, 2, 3]\n      num: 3\n") == \
        "s.yaml:5: sweep.axes.a.linear: expected at most 2 items, got 3"


def test_duplicate_key(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  nodes: 3\n  mtu: 1500\n  nodes: 5\n") == \
        "s.yaml:5: cluster.nodes: duplicate key 'nodes' (first at line 3)"


def test_yaml_syntax_error_line(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  nodes: 3\n   mtu: 1500\n") == \
        "s.yaml:4: not valid YAML: mapping values are not allowed in this context"


def test_python_tags_are_refused(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster: !!python/object/apply:os.system ['true']\n") == (
        "s.yaml:2: cluster: YAML tag '!!python/object/apply:os.system' is not allowed: "
        "a scenario is plain data")
    assert error_of(tmp_path, "name: x\ndescription: !!python/object:builtins.dict {}\n") == (
        "s.yaml:2: description: YAML tag '!!python/object:builtins.dict' is not allowed: "
        "a scenario is plain data")


def test_explicit_tag_on_unreadable_text(tmp_path):
    assert error_of(tmp_path, "name: x\nrun: {seed: !!int ten}\n") == \
        "s.yaml: not valid YAML: invalid literal for int() with base 10: 'ten'"


def test_alias_bomb_is_refused(tmp_path):
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    assert error_of(tmp_path, "name: x\n" + "\n".join(levels) + "\n") == \
        "s.yaml:8: a6: the scenario has more than 5,000,000 values, aliases expanded (the limit; " \
        "raise it with the environment variable NETMODEL_MAX_VALUES)"


def test_one_more_error_is_singular(tmp_path):
    assert error_of(tmp_path, "name: x\ncluster:\n  mtu: 80\n  nodes: 0\n") == \
        "s.yaml:3: cluster.mtu: expected an integer >= 1280, got 80 (and 1 more error)"


def test_empty_file_and_wrong_top_level(tmp_path):
    assert error_of(tmp_path, "# nothing here\n") == \
        "s.yaml: empty scenario file: expected a mapping with at least 'name'"
    assert error_of(tmp_path, "- name: x\n") == \
        "s.yaml:1: a scenario is a mapping of sections (name, cluster, services, ...), got [{'name': 'x'}]"


def test_missing_file(tmp_path):
    with pytest.raises(NetmodelError) as err:
        load_scenario(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: scenario file not found"


# --- cost profile and overrides ------------------------------------------------------

def test_cost_overrides_are_applied_and_sourced(tmp_path):
    loaded = load_scenario(write(tmp_path, "name: x\ncosts:\n  iptables_rule: 20ns\n  veth: 3us\n"))
    assert loaded.profile["iptables_rule"] == pytest.approx(20e-9, rel=1e-12)
    assert loaded.profile["veth"] == pytest.approx(3e-6, rel=1e-12)
    assert loaded.profile.parameters["veth"].source == "scenario override"
    assert loaded.profile["bridge"] == load_profile("default")["bridge"]


def test_unknown_cost_parameter(tmp_path):
    message = error_of(tmp_path, "name: x\ncosts:\n  veth: 2us\n  iptables_rules: 1ns\n")
    assert message.startswith("s.yaml:4: costs.iptables_rules: unknown cost parameter (known: tcp_stack_tx, ")
    assert message.endswith(", apiserver_egress, pod_start_median, pod_start_p99)")


def test_cost_override_with_bad_unit(tmp_path):
    assert error_of(tmp_path, "name: x\ncosts:\n  veth: 2 parsecs\n") == \
        "s.yaml:3: costs.veth: unknown time unit 'parsecs' in '2 parsecs' (accepted: ns, us, µs, ms, s, min, h)"
    assert error_of(tmp_path, "name: x\ncosts:\n  veth: 2\n") == \
        "s.yaml:3: costs.veth: give a unit, e.g. '2us'"


def test_unknown_profile_points_at_the_profile_key(tmp_path):
    assert error_of(tmp_path, "name: x\n\nprofile: fast\n") == \
        "s.yaml:3: profile: no shipped cost profile 'fast' (shipped: default; or give a path ending in .yaml)"


def test_profile_file_is_relative_to_the_scenario(tmp_path):
    default = (REPO / "netmodel" / "costs" / "profiles" / "default.yaml").read_text(encoding="utf-8")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "slow.yaml").write_text(
        default.replace("name: default", "name: slow").replace("value: 2us", "value: 9us"), encoding="utf-8")
    loaded = load_scenario(write(tmp_path, "name: x\nprofile: profiles/slow.yaml\n"))
    assert (loaded.profile.name, loaded.profile["veth"]) == ("slow", 9e-6)


# --- digest ---------------------------------------------------------------------------

def test_digest_is_stable_over_formatting_and_units(tmp_path):
    a = load_scenario(write(tmp_path, "name: d\nworkload:\n  server:\n    service_time: 1ms\n", "a.yaml"))
    b = load_scenario(write(tmp_path, "# same, written differently\nname: d\nworkload: {server: "
                                      "{service_time: 0.001}}\n", "b.yaml"))
    assert a.digest == b.digest
    assert len(a.digest) == 64 and int(a.digest, 16) >= 0


def test_digest_changes_with_the_scenario_and_the_costs(tmp_path):
    base = load_scenario(write(tmp_path, "name: d\n", "a.yaml")).digest
    assert load_scenario(write(tmp_path, "name: d\ncluster: {nodes: 4}\n", "b.yaml")).digest != base
    assert load_scenario(write(tmp_path, "name: d\ncosts: {veth: 2.5us}\n", "c.yaml")).digest != base
    # an override is part of the scenario even when it repeats the profile value
    assert load_scenario(write(tmp_path, "name: d\ncosts: {veth: 2us}\n", "d.yaml")).digest != base
    assert load_scenario(write(tmp_path, "name: d\n", "e.yaml")).digest == base


# --- the documented example ----------------------------------------------------------

def test_full_example_loads_and_expands():
    loaded = load_scenario(REPO / "scenarios" / "example-full.yaml")
    assert isinstance(loaded.scenario, Scenario)
    # every section is present but the inventory, which replaces services.count and
    # endpoints_per_service: scenarios/reference-cluster.yaml shows one
    assert set(loaded.raw) == set(Scenario.model_fields) - {"inventory"}
    points = expand_sweep(loaded)
    assert len(points) == 12
    assert points[-1].values == {"services.count": 1000, "kube_proxy.mode": "ipvs",
                                 "cluster.cni_datapath": "native", "cluster.mtu": 9000}


def test_docs_show_the_full_example_verbatim():
    example = (REPO / "scenarios" / "example-full.yaml").read_text(encoding="utf-8")
    docs = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert f"```yaml\n{example}```" in docs


def test_docs_name_every_field_and_cost_parameter():
    from netmodel.costs.profile import PARAMETERS
    from netmodel.scenario.schema import (
        Cluster,
        ControlPlane,
        Ebpf,
        InventoryNode,
        InventoryService,
        KubeProxy,
        NodeFailure,
        RollingUpdate,
        Run,
        Scale,
        Server,
        Services,
        Workload,
    )

    docs = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")
    names = [*PARAMETERS]
    for model in (Scenario, Cluster, Services, KubeProxy, Ebpf, Workload, Server, Run, InventoryNode,
                  InventoryService, ControlPlane, RollingUpdate, Scale, NodeFailure):
        names += [n for n in model.model_fields if n != "sweep"]
    assert [n for n in names if f"| `{n}` |" not in docs and f"### `{n}`" not in docs] == []


def test_docs_inventory_example_loads(tmp_path):
    docs = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")
    [block] = [b for b in docs.split("```yaml\n")[1:] if b.startswith("inventory:")]
    loaded = parse_scenario("name: docs\n" + block.split("```")[0], "docs.yaml", tmp_path)
    [service] = loaded.scenario.inventory.services
    assert (service.type, service.ports[0].node_port, service.endpoints[0].node) == \
        ("NodePort", 31414, "k8s-node02")


@pytest.mark.parametrize("event, expected", [
    ('rolling_update: {max_surge: "x%"}', "s.yaml:4: control_plane.events[0].rolling_update.max_surge: "
                                          "max_surge is a Pod count or a percentage such as '25%', not 'x%'"),
    ('rolling_update: {max_unavailable: "150%"}',
     "s.yaml:4: control_plane.events[0].rolling_update.max_unavailable: "
     "max_unavailable is a Pod count or a percentage from '0%' to '100%', not '150%'"),
    ("scale: {at: 1000h, replicas: 1}", "s.yaml:4: control_plane.events[0].scale.at: "
                                        "expected a time of at most 24h, got '1000h'"),
    ("{rolling_update: {}, scale: {replicas: 1}}",
     "s.yaml:4: control_plane.events[0]: an event is exactly one of rolling_update, scale, node_failure"),
    ("reboot: {node: 1}", "s.yaml:4: control_plane.events[0].reboot: unknown field 'reboot' "
                          "(known: rolling_update, scale, node_failure)"),
    ("rolling_update: {service: 50}", "s.yaml:4: control_plane.events[0].rolling_update.service: "
                                      "the Services are 0..9"),
    ("node_failure: {node: 9}", "s.yaml:4: control_plane.events[0].node_failure.node: "
                                "the cluster has nodes 0..2"),
    ("scale: {}", "s.yaml:4: control_plane.events[0].scale.replicas: required field 'replicas' is missing"),
])
def test_bad_churn_event_is_one_line_at_the_event(tmp_path, event, expected):
    assert error_of(tmp_path, f"name: x\ncontrol_plane:\n  events:\n    - {event}\n") == expected
