"""`netmodel trace`: the hop table, JSON for tools, unreachable paths, bad names."""

import json

from netmodel.cli import main

SCENARIO = """\
name: tr
cluster: {nodes: 4}
services: {count: 20, endpoints_per_service: 2, type: NodePort, external_traffic_policy: Local}
"""


def test_trace_prints_every_hop_and_totals(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    assert main(["trace", str(path), "--traffic", "external-nodeport"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("external-nodeport to Service default/svc-0 (ClusterIP 10.96.0.2), "
                      "kube-proxy iptables, CNI vxlan")
    assert "no ExternalIP (bare metal)" in out[1]
    assert out[2].split()[:6] == ["phase", "layer", "where", "component", "zero-load", "station"]
    assert any("nodeport-lookup" in line and "rules walked" in line for line in out)
    assert not any(" snat " in line for line in out)  # Local: the client IP is kept
    assert out[-1].startswith("zero-load total: connect ")


def test_trace_json_matches_the_text(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    assert main(["trace", str(path), "--traffic", "pod-clusterip", "--service", "svc-3",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["service"] == "default/svc-3 (ClusterIP 10.96.0.5)" and doc["reachable"] is True
    assert doc["hops"][1]["component"] == "rule-lookup"
    assert abs(sum(h["cost_s"] for h in doc["hops"]) - sum(doc["totals_s"].values())) < 1e-12


def test_trace_says_why_a_path_is_unreachable(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("type: NodePort", "type: LoadBalancer"))
    assert main(["trace", str(path), "--traffic", "external-loadbalancer"]) == 0
    out = capsys.readouterr().out
    assert "unreachable: the Service stays EXTERNAL-IP <pending>" in out


def test_trace_of_an_unknown_service_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    assert main(["trace", str(path), "--traffic", "pod-clusterip", "--service", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--service: no Service 'nope'" in err


def test_trace_says_a_pod_ip_is_not_reachable_from_outside(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    for target, says in (("external-pod-ip", "a Pod IP is reachable only inside the cluster"),
                         ("external-clusterip", "a ClusterIP is virtual")):
        assert main(["trace", str(path), "--traffic", target]) == 0
        assert f"unreachable: {says}" in capsys.readouterr().out
