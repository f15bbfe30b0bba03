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
    assert out[0] == ("external-nodeport to Service default/svc-0 (ClusterIP 10.96.0.2); "
                      "kube-proxy iptables, netfilter conntrack, vxlan Pod network")
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


def test_a_kind_that_cannot_work_is_one_line_and_exit_2_as_in_run(tmp_path, capsys):
    """`run` refuses a kind in the mix that cannot work (exit 2, one line); `trace` of it
    says the same the same way."""
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("type: NodePort", "type: LoadBalancer"))
    assert main(["trace", str(path), "--traffic", "external-loadbalancer"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--traffic: traffic kind external-loadbalancer cannot work "
                                     "here: the Service stays EXTERNAL-IP <pending>") in err
    assert main(["run", str(path), "--set", "workload.mix.external-loadbalancer=1"]) == 2
    run_err = capsys.readouterr().err
    reason = err.split("cannot work here: ")[1].strip()
    assert run_err.count("\n") == 1 and run_err.split("cannot work here: ")[1].startswith(reason)


def test_trace_of_pod_to_pod_names_the_pods_and_the_receiving_side(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    assert main(["trace", str(path), "--traffic", "pod-pod-same-node"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("pod-pod-same-node to Pod endpoint 0 of default/svc-0 on node-")
    assert "called by its Pod IP: no Service rules" in out[0] and "ClusterIP" not in out[0]
    rows = [line.split() for line in out[3:-1]]
    # The SYN enters the server's Pod, the SYN-ACK the client's, though both share a node.
    delivered = [(r[0], r[2].split("@")[0]) for r in rows if r[3] in ("tcp-stack-rx", "wakeup")]
    assert delivered[:2] == [("connect", "server"), ("connect", "client")]
    assert [side for phase, side in delivered if phase == "request"] == ["server", "server",
                                                                         "client", "client"]


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
        assert main(["trace", str(path), "--traffic", target]) == 2
        assert f"cannot work here: {says}" in capsys.readouterr().err
