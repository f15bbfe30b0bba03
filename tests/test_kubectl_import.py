"""`netmodel import kubectl`: kubectl JSON listings of a real cluster -> a scenario."""

import json
import shutil
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Callable

import pytest
import yaml

from netmodel.cluster.kubectl import import_kubectl
from netmodel.errors import NetmodelError
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.sweep import expand_sweep

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "kubectl" / "reference"
SHIPPED = REPO / "scenarios" / "reference-cluster.yaml"

# `kubectl get svc -A -o wide` of the reference cluster, as the reference document shows
# it (SELECTOR of kube-dns cut off there; it is k8s-app=kube-dns).
LISTING = """\
NAMESPACE     NAME                   TYPE           CLUSTER-IP      EXTERNAL-IP   PORT(S)                  AGE   SELECTOR
cilium-test   echo-other-node        NodePort       10.96.24.122    <none>        8080:30492/TCP           44h   name=echo-other-node
cilium-test   echo-same-node         NodePort       10.96.184.59    <none>        8080:40649/TCP           44h   name=echo-same-node
default       echo-a                 ClusterIP      10.96.113.197   <none>        8080/TCP                 43h   name=echo-a
default       echo-b                 NodePort       10.96.87.189    <none>        8080:31414/TCP           43h   name=echo-b
default       echo-b-headless        ClusterIP      None            <none>        8080/TCP                 43h   name=echo-b
default       echo-b-host-headless   ClusterIP      None            <none>        <none>                   43h   name=echo-b-host
default       kubernetes             ClusterIP      10.96.0.1       <none>        443/TCP                  37d   <none>
kube-system   hubble-relay           ClusterIP      10.96.34.228    <none>        80/TCP                   44h   k8s-app=hubble-relay
kube-system   hubble-ui              NodePort       10.96.98.23     <none>        80:45584/TCP             44h   k8s-app=hubble-ui
kube-system   kube-dns               ClusterIP      10.96.0.2       <none>        53/UDP,53/TCP,9153/TCP   44h   k8s-app=kube-dns
"""


@pytest.fixture
def cluster(tmp_path) -> Path:
    """A copy of the reference cluster's listings to change."""
    return Path(shutil.copytree(REFERENCE, tmp_path / "cluster"))


def edit(folder: Path, file: str, change: Callable[[dict], None]) -> None:
    path = folder / file
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=4))


def item(data: dict, name: str) -> dict:
    [found] = [i for i in data["items"] if i["metadata"]["name"] == name]
    return found


def service(imported, name: str) -> dict:
    [found] = [s for s in imported.scenario["inventory"]["services"] if s["name"] == name]
    return found


def error_of(folder: Path) -> str:
    with pytest.raises(NetmodelError) as err:
        import_kubectl(folder)
    message = str(err.value)
    assert "\n" not in message
    return message.replace(str(folder), "DIR")


# --- mapping --------------------------------------------------------------------------

def test_nodes_keep_their_addresses_and_pod_cidr():
    imported = import_kubectl(REFERENCE)
    assert imported.scenario["inventory"]["nodes"] == [
        {"name": f"k8s-{name}", "internal_ip": f"192.168.80.{240 + i}",
         "hostname": f"k8s-{name}", "pod_cidr": f"10.244.{i}.0/24"}
        for i, name in enumerate(["master", "node01", "node02"])]
    # EXTERNAL-IP <none> on every node: a bare-metal cluster
    assert imported.scenario["cluster"] == {"provider": "bare-metal"}


def test_services_show_as_kubectl_lists_them():
    imported = import_kubectl(REFERENCE)
    rows = []
    for svc in imported.scenario["inventory"]["services"]:
        ports = ",".join(f"{p['port']}{':' + str(p['node_port']) if 'node_port' in p else ''}"
                         f"/{p['protocol']}" for p in svc["ports"]) or "<none>"
        selector = ",".join(f"{k}={v}" for k, v in svc["selector"].items()) or "<none>"
        rows.append([svc["namespace"], svc["name"], svc["type"], svc["cluster_ip"], ports,
                     selector])
    expected = [[r[0], r[1], r[2], r[3], r[5], r[7]]
                for r in (line.split() for line in LISTING.splitlines()[1:])]
    assert rows == expected


def test_service_fields_in_detail():
    imported = import_kubectl(REFERENCE)
    assert service(imported, "kube-dns")["ports"] == [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"}]
    # 40649 and 45584 are outside the default NodePort range 30000-32767: kept as listed
    assert service(imported, "echo-same-node")["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP", "node_port": 40649}]
    assert service(imported, "hubble-relay")["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert service(imported, "echo-b")["external_traffic_policy"] == "Cluster"
    assert "external_traffic_policy" not in service(imported, "echo-a")
    headless = service(imported, "echo-b-headless")
    assert headless["cluster_ip"] == "None" and headless["endpoints"] == \
        service(imported, "echo-b")["endpoints"]


def test_ready_endpoints_are_placed_on_their_nodes():
    imported = import_kubectl(REFERENCE)
    placed = {s["name"]: [(e["ip"], e["node"]) for e in s["endpoints"]]
              for s in imported.scenario["inventory"]["services"]}
    assert placed["kube-dns"] == [("10.244.0.213", "k8s-master"), ("10.244.0.178", "k8s-master")]
    assert placed["echo-a"] == [("10.244.1.12", "k8s-node01")]
    # the API server's endpoint has no nodeName: it is the node with that InternalIP
    assert placed["kubernetes"] == [("192.168.80.240", "k8s-master")]
    # a host-network Pod has its node's IP
    assert placed["echo-b-host-headless"] == [("192.168.80.242", "k8s-node02")]
    assert (imported.nodes, imported.services, imported.endpoints) == (3, 10, 11)


def test_not_ready_endpoint_is_skipped_and_counted():
    imported = import_kubectl(REFERENCE)
    assert "10.244.2.91" not in str(imported.scenario)
    assert imported.skipped == {"not-ready endpoint": 1}
    assert imported.text().splitlines()[:2] == [
        f"# generated by netmodel import kubectl from {REFERENCE}; 3 nodes, 10 Services, "
        "11 endpoints",
        "# skipped: 1 not-ready endpoint (only ready endpoints receive traffic)"]


def test_header_says_nothing_was_skipped(cluster):
    edit(cluster, "endpointslices.json", lambda d: item(d, "kube-dns-xk7pz")["endpoints"].pop())
    assert import_kubectl(cluster).text().splitlines()[1] == "# skipped: nothing"


def test_fields_the_model_does_not_use_do_not_matter(cluster):
    unused = {"annotations", "managedFields", "ownerReferences", "uid", "resourceVersion",
              "creationTimestamp", "generateName", "generation", "conditions", "images",
              "nodeInfo", "allocatable", "capacity", "daemonEndpoints", "taints", "targetRef",
              "targetPort", "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "apiVersion",
              "kind", "status"}

    def strip(value):
        if isinstance(value, dict):
            keep = {k: strip(v) for k, v in value.items() if k not in unused}
            # node addresses live under status
            if "addresses" in value.get("status", {}):
                keep["status"] = {"addresses": value["status"]["addresses"]}
            conditions = value.get("conditions")
            if isinstance(conditions, dict) and conditions.get("ready") is False:
                keep["conditions"] = {"ready": False}
            return keep
        return [strip(v) for v in value] if isinstance(value, list) else value

    def add_noise(data):
        data["metadata"]["continue"] = "x"
        for entry in data["items"]:
            entry["metadata"].setdefault("annotations", {})["example.com/new"] = "1"
            entry.setdefault("spec", {})["futureField"] = {"a": [1, 2]}

    def replace(data):
        stripped = strip(data)
        data.clear()
        data.update(stripped)

    for file in ("nodes.json", "services.json", "endpointslices.json"):
        edit(cluster, file, replace)
    stripped = import_kubectl(cluster)
    for file in ("nodes.json", "services.json", "endpointslices.json"):
        edit(cluster, file, add_noise)
    noisy, reference = import_kubectl(cluster), import_kubectl(REFERENCE)
    assert stripped.scenario["inventory"] == noisy.scenario["inventory"] == \
        reference.scenario["inventory"]
    assert stripped.skipped == noisy.skipped == reference.skipped


def test_cloud_nodes_keep_their_external_ip(cluster):
    def external(data):
        for i, node in enumerate(data["items"]):
            node["status"]["addresses"].append({"type": "ExternalIP",
                                                "address": f"203.0.113.{i + 10}"})
    edit(cluster, "nodes.json", external)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"] == {"provider": "cloud"}
    assert [n["external_ip"] for n in imported.scenario["inventory"]["nodes"]] == \
        ["203.0.113.10", "203.0.113.11", "203.0.113.12"]


def test_traffic_policy_local_and_the_old_name_global(cluster):
    def policies(data):
        item(data, "echo-b")["spec"]["externalTrafficPolicy"] = "Local"
        item(data, "hubble-ui")["spec"]["externalTrafficPolicy"] = "Global"
        del item(data, "echo-other-node")["spec"]["externalTrafficPolicy"]
    edit(cluster, "services.json", policies)
    imported = import_kubectl(cluster)
    assert [service(imported, n)["external_traffic_policy"]
            for n in ("echo-b", "hubble-ui", "echo-other-node")] == ["Local", "Cluster", "Cluster"]


def test_ipv6_addresses_are_skipped_and_counted(cluster):
    def nodes(data):
        node = item(data, "k8s-node01")  # IPv6 first: the IPv4 ones are still found
        node["status"]["addresses"].insert(0, {"type": "InternalIP", "address": "fd00::241"})
        node["spec"]["podCIDRs"] = ["fd00:10:244:1::/64", "10.244.1.0/24"]
        node = item(data, "k8s-node02")  # IPv6 after IPv4: counted too
        node["status"]["addresses"].append({"type": "InternalIP", "address": "fd00::242"})
        node["spec"]["podCIDRs"].append("fd00:10:244:2::/64")

    def services(data):
        dual = item(data, "echo-a")["spec"]
        dual["clusterIPs"] = ["fd00:96::8", "10.96.113.197"]
        v6 = json.loads(json.dumps(item(data, "echo-b")))
        v6["metadata"]["name"] = "echo-v6"
        v6["spec"].update(clusterIP="fd00:96::9", clusterIPs=["fd00:96::9"], ipFamilies=["IPv6"])
        data["items"].append(v6)

    def slices(data):
        v6 = json.loads(json.dumps(item(data, "echo-a-tv4xs")))
        v6["metadata"]["name"] = "echo-a-v6"
        v6["addressType"] = "IPv6"
        v6["endpoints"][0]["addresses"] = ["fd00:10:244:1::c"]
        only = json.loads(json.dumps(v6))
        only["metadata"]["name"] = "echo-v6-abcde"
        only["metadata"]["labels"]["kubernetes.io/service-name"] = "echo-v6"
        only["endpoints"] *= 2
        data["items"] += [v6, only]

    edit(cluster, "nodes.json", nodes)
    edit(cluster, "services.json", services)
    edit(cluster, "endpointslices.json", slices)
    imported = import_kubectl(cluster)
    assert imported.scenario["inventory"]["nodes"] == import_kubectl(REFERENCE).scenario[
        "inventory"]["nodes"]
    assert service(imported, "echo-a")["cluster_ip"] == "10.96.113.197"
    assert "echo-v6" not in [s["name"] for s in imported.scenario["inventory"]["services"]]
    assert service(imported, "echo-a")["endpoints"] == [{"ip": "10.244.1.12", "node": "k8s-node01"}]
    # 2 node addresses, 2 Pod CIDRs, ClusterIP of echo-a, echo-a's IPv6 endpoint, echo-v6's
    # two endpoints; echo-v6 itself is counted as a Service
    assert imported.skipped == {"not-ready endpoint": 1, "IPv6 address": 8,
                                "IPv6-only Service": 1}
    assert imported.text().splitlines()[1] == (
        "# skipped: 1 not-ready endpoint (only ready endpoints receive traffic); 8 IPv6 "
        "addresses (the model is IPv4 for now); 1 IPv6-only Service (no IPv4 ClusterIP; their "
        "endpoints are IPv6)")


def test_endpoint_without_node_name_is_placed_through_its_pod(cluster):
    edit(cluster, "endpointslices.json",
         lambda d: item(d, "echo-a-tv4xs")["endpoints"][0].pop("nodeName"))
    imported = import_kubectl(cluster)
    assert service(imported, "echo-a")["endpoints"] == []
    assert imported.skipped["endpoint on no listed node"] == 1
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "echo-a-6575c98b7d-9xkgw", "namespace": "default"},
           "spec": {"nodeName": "k8s-node01"}, "status": {"podIP": "10.244.1.12"}}
    (cluster / "pods.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": [pod]}))
    assert service(import_kubectl(cluster), "echo-a")["endpoints"] == [
        {"ip": "10.244.1.12", "node": "k8s-node01"}]


def test_endpoint_slices_of_unknown_services_are_counted(cluster):
    def orphan(data):
        stray = json.loads(json.dumps(item(data, "echo-a-tv4xs")))
        stray["metadata"]["name"] = "gone-12345"
        stray["metadata"]["labels"]["kubernetes.io/service-name"] = "gone"
        data["items"].append(stray)
    edit(cluster, "endpointslices.json", orphan)
    assert import_kubectl(cluster).skipped["EndpointSlice of no listed Service"] == 1


def test_svc_json_is_accepted(cluster):
    (cluster / "services.json").rename(cluster / "svc.json")
    assert import_kubectl(cluster).scenario["inventory"] == \
        import_kubectl(REFERENCE).scenario["inventory"]
    shutil.copy(cluster / "svc.json", cluster / "services.json")
    assert error_of(cluster) == \
        "DIR/services.json: both services.json and svc.json are here; keep one"


def test_single_object_and_plain_array_are_accepted(cluster):
    data = json.loads((cluster / "nodes.json").read_text())
    (cluster / "nodes.json").write_text(json.dumps(data["items"]))
    assert import_kubectl(cluster).nodes == 3
    (cluster / "nodes.json").write_text(json.dumps(data["items"][0]))  # k8s-master alone
    imported = import_kubectl(cluster)
    assert (imported.nodes, imported.endpoints) == (1, 3)  # kube-dns x2, kubernetes
    assert imported.skipped["endpoint on no listed node"] == 8


# --- errors -------------------------------------------------------------------------

def test_text_output_asks_for_json(cluster):
    (cluster / "services.json").write_text(LISTING)
    assert error_of(cluster) == ("DIR/services.json: this is kubectl's text output; run "
                                 "'kubectl get svc -A -o json > services.json'")


def test_yaml_output_asks_for_json(cluster):
    (cluster / "nodes.json").write_text("apiVersion: v1\nitems: []\nkind: List\n")
    assert error_of(cluster) == ("DIR/nodes.json: this is YAML (-o yaml); run "
                                 "'kubectl get nodes -o json > nodes.json'")


def test_missing_file_names_the_command(cluster):
    (cluster / "endpointslices.json").unlink()
    assert error_of(cluster) == ("DIR/endpointslices.json: missing; run 'kubectl get "
                                 "endpointslices -A -o json > endpointslices.json'")
    (cluster / "services.json").unlink()
    assert error_of(cluster) == ("DIR/services.json: missing; run 'kubectl get svc -A -o json "
                                 "> services.json' (also accepted: svc.json)")


def test_bad_json_gives_its_line(cluster):
    lines = (cluster / "services.json").read_text().splitlines()
    index = next(i for i in range(40, len(lines)) if lines[i].endswith('",'))
    lines[index] = lines[index].rstrip(",")  # a missing comma: seen on the next line
    (cluster / "services.json").write_text("\n".join(lines))
    with pytest.raises(NetmodelError) as err:
        import_kubectl(cluster)
    assert err.value.line == index + 2
    assert str(err.value).startswith(f"{cluster}/services.json:{index + 2}: not valid JSON: "
                                     "Expecting ',' delimiter")


def test_wrong_listing_in_a_file(cluster):
    shutil.copy(cluster / "nodes.json", cluster / "endpointslices.json")
    assert error_of(cluster) == ("DIR/endpointslices.json: items[0]: this is a Node, expected an "
                                 "EndpointSlice; run 'kubectl get endpointslices -A -o json > "
                                 "endpointslices.json'")


def test_bad_value_names_the_field(cluster):
    edit(cluster, "services.json",
         lambda d: item(d, "echo-a")["spec"]["ports"][0].update(port="http"))
    assert error_of(cluster) == ("DIR/services.json: items[2].spec.ports[0].port: expected a "
                                 "port number, got 'http'")
    edit(cluster, "services.json", lambda d: item(d, "echo-a")["spec"].update(type="Magic"))
    assert error_of(cluster) == ("DIR/services.json: items[2].spec.type: expected one of "
                                 "ClusterIP, NodePort, LoadBalancer, ExternalName, got 'Magic'")


def test_not_a_folder(tmp_path):
    message = error_of(tmp_path / "nowhere")
    assert message == ("DIR: not a folder; put the output of 'kubectl get nodes -o json > "
                       "nodes.json', 'kubectl get svc -A -o json > services.json', 'kubectl get "
                       "endpointslices -A -o json > endpointslices.json' in one")


# --- the scenario it writes ---------------------------------------------------------

def test_name_is_the_folder_name_made_valid(tmp_path):
    folder = shutil.copytree(REFERENCE, tmp_path / "prod cluster (eu)")
    assert import_kubectl(folder).scenario["name"] == "prod-cluster-eu"


def test_an_import_that_is_no_valid_scenario_says_why(cluster):
    edit(cluster, "nodes.json", lambda d: d["items"].append(d["items"][0]))
    assert error_of(cluster) == ("DIR: the imported cluster is not a valid scenario: inventory: "
                                 "node names must be unique")


def test_shipped_reference_scenario_is_reproduced_byte_for_byte(monkeypatch):
    monkeypatch.chdir(REPO)
    text = import_kubectl(Path("tests/data/kubectl/reference")).text()
    assert SHIPPED.read_text(encoding="utf-8") == text


def test_shipped_reference_scenario_loads_and_checks():
    loaded = load_scenario(SHIPPED)
    inventory = loaded.scenario.inventory
    assert loaded.scenario.node_count == 3 and len(inventory.services) == 10
    assert [s.headless for s in inventory.services].count(True) == 2
    assert len(expand_sweep(loaded)) == 1
    assert yaml.safe_load(SHIPPED.read_text())["inventory"]["services"][4]["cluster_ip"] == "None"


def test_shipped_reference_scenario_runs():
    from netmodel.run.point import run_point

    loaded = load_scenario(SHIPPED)
    scenario = loaded.scenario.model_copy(
        update={"run": loaded.scenario.run.model_copy(update={"requests": 300})})
    [row] = run_point(scenario, loaded.profile)
    assert (row["traffic"], row["requests"]) == ("pod-clusterip", 300)
    assert row["completed"] + row["dropped"] + row["in_flight"] == 300


# --- command line -------------------------------------------------------------------

def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "netmodel.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ref.yaml"
    done = run_cli("import", "kubectl", REFERENCE, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"wrote {out}: 3 nodes, 10 Services, 11 endpoints\n"
                           "skipped: 1 not-ready endpoint (only ready endpoints receive traffic)\n")
    assert out.read_text() == import_kubectl(REFERENCE).text()
    assert run_cli("check", out).returncode == 0

    again = run_cli("import", "kubectl", REFERENCE, "-o", out)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == f"netmodel: error: {out}: exists; give --force to replace it\n"
    assert run_cli("import", "kubectl", REFERENCE, "--output", out, "--force").returncode == 0


def test_cli_text_output_is_one_line_exit_2(tmp_path):
    folder = Path(shutil.copytree(REFERENCE, tmp_path / "wide"))
    (folder / "services.json").write_text(LISTING)
    done = run_cli("import", "kubectl", folder, "-o", tmp_path / "out.yaml")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"netmodel: error: {folder}/services.json: this is kubectl's text "
                           "output; run 'kubectl get svc -A -o json > services.json'\n")
    assert not (tmp_path / "out.yaml").exists()


def test_external_name_and_load_balancer_services(cluster):
    from netmodel.cluster.addresses import cluster_ips
    from netmodel.scenario.loader import parse_scenario

    def more(data):
        data["items"] += [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "db", "namespace": "default"},
             "spec": {"type": "ExternalName", "externalName": "db.example.com",
                      "sessionAffinity": "None"}, "status": {"loadBalancer": {}}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "web", "namespace": "default"},
             "spec": {"type": "LoadBalancer", "clusterIP": "10.96.7.7", "clusterIPs": ["10.96.7.7"],
                      "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                      "ports": [{"port": 443, "nodePort": 30443, "targetPort": "https"}],
                      "selector": {"app": "web"}},
             "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.50"}]}}}]
    edit(cluster, "services.json", more)
    imported = import_kubectl(cluster)
    assert service(imported, "db") == {"namespace": "default", "name": "db",
                                       "type": "ExternalName", "ports": [], "selector": {},
                                       "endpoints": []}
    assert service(imported, "web") == {
        "namespace": "default", "name": "web", "type": "LoadBalancer", "cluster_ip": "10.96.7.7",
        "ports": [{"port": 443, "protocol": "TCP", "node_port": 30443}],
        "selector": {"app": "web"}, "external_traffic_policy": "Local", "endpoints": []}
    scenario = parse_scenario(imported.text(), "x.yaml", cluster).scenario
    assert cluster_ips(scenario)[-2:] == [None, IPv4Address("10.96.7.7")]
    assert cluster_ips(scenario)[4:6] == [None, None]  # the two headless Services
