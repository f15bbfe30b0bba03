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

from netmodel.errors import NetmodelError
from netmodel.scenario.kubectl import import_kubectl
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.sweep import expand_sweep

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "kubectl" / "reference"
NODE_POOLS = REPO / "tests" / "data" / "kubectl" / "node-pools"
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


def each_node(folder: Path, change: Callable[[int, dict], None]) -> None:
    """Apply change(i, node) to every node of nodes.json."""
    def apply(data):
        for i, node in enumerate(data["items"]):
            change(i, node)
    edit(folder, "nodes.json", apply)


def addresses_of(imported) -> list:
    from netmodel.cluster.addresses import node_addresses
    from netmodel.scenario.loader import parse_scenario

    return node_addresses(parse_scenario(imported.text(), "x.yaml", REPO).scenario)


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
    # EXTERNAL-IP <none> on every node and no providerID: a bare-metal cluster; every node
    # has allocatable pods 110 and a /24 inside the default Pod CIDR 10.244.0.0/16
    assert imported.scenario["cluster"] == {"pods_per_node": 110, "provider": "bare-metal",
                                            "node_cidr_mask": 24, "cni_datapath": "vxlan", "kernel": "5.4.0"}
    assert imported.notes == (CILIUM,)


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
    assert imported.text().splitlines()[:3] == [
        f"# generated by netmodel import kubectl from {REFERENCE}; 3 nodes, 10 Services, "
        "11 endpoints",
        "# read: 3 files: 3 Nodes, 10 Services, 10 EndpointSlices; endpoints from the "
        "EndpointSlices",
        "# skipped: 1 not-ready endpoint (only ready endpoints receive traffic)"]


def test_header_says_nothing_was_skipped(cluster):
    edit(cluster, "endpointslices.json", lambda d: item(d, "kube-dns-xk7pz")["endpoints"].pop())
    assert import_kubectl(cluster).text().splitlines()[2] == "# skipped: nothing"


def test_fields_the_model_does_not_use_do_not_matter(cluster):
    unused = {"managedFields", "ownerReferences", "uid", "resourceVersion",
              "creationTimestamp", "generateName", "generation", "conditions", "images",
              "nodeInfo", "capacity", "daemonEndpoints", "taints", "targetRef",
              "targetPort", "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "apiVersion",
              "kind", "status"}

    def strip(value):
        if isinstance(value, dict):
            keep = {k: strip(v) for k, v in value.items() if k not in unused}
            # node addresses, allocatable Pods and the kernel live under status
            if "addresses" in value.get("status", {}):
                keep["status"] = {"addresses": value["status"]["addresses"],
                                  "allocatable": {"pods": value["status"]["allocatable"]["pods"]},
                                  "nodeInfo": {"kernelVersion":
                                               value["status"]["nodeInfo"]["kernelVersion"]}}
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
    assert stripped.scenario["cluster"] == noisy.scenario["cluster"] == \
        reference.scenario["cluster"]
    assert stripped.skipped == noisy.skipped == reference.skipped


def test_cloud_nodes_keep_their_external_ip(cluster):
    def external(data):
        for i, node in enumerate(data["items"]):
            node["status"]["addresses"].append({"type": "ExternalIP",
                                                "address": f"203.0.113.{i + 10}"})
    edit(cluster, "nodes.json", external)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["provider"] == "cloud"
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
    assert imported.text().splitlines()[2] == (
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
    assert import_kubectl(cluster).skipped["endpoint listing of no listed Service"] == 1


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


# --- what the nodes say about the cluster -------------------------------------------

CILIUM = ("cni_datapath vxlan: Cilium; the tunnel mode is in the cilium-config ConfigMap, not on "
          "the nodes: Cilium's default, VXLAN, guessed")
"""The note of the reference cluster's CNI: its nodes carry Cilium's annotations."""
NO_CNI = ("the nodes show no CNI (no flannel, Calico or Cilium annotation, no cloud routes): "
          "cni_datapath left at vxlan, a guess")

POOL_NOTES = (
    "nodes differ in status.allocatable.pods (32 on 2 nodes, 110 on 2 nodes): pods_per_node "
    "is 110, the most common, the larger of a tie",
    "nodes differ in the size of their Pod CIDR (/24 on 2 nodes, /26 on 1 node): "
    "node_cidr_mask is 24, the most common",
    "1 node lists no IPv4 spec.podCIDR: the model gives it a block of cluster.pod_cidr", NO_CNI)


def test_node_pools_give_the_cluster_fields():
    imported = import_kubectl(NODE_POOLS)
    # gce:// providerIDs on private nodes (no ExternalIP): still the cloud's load balancers.
    # Pods: 110, 110 (allocatable), 32 (capacity only), 32: a tie, the larger wins.
    # Pod CIDRs 10.4.0.0/24 (+ an IPv6 one), 10.4.1.0/24, 10.4.2.0/26, none: outside the
    # default 10.244.0.0/16, so the smallest network holding them, 10.4.0.0/22.
    assert imported.scenario["cluster"] == {"pods_per_node": 110, "provider": "cloud",
                                            "pod_cidr": "10.4.0.0/22", "node_cidr_mask": 24, "kernel": "6.1.100"}
    assert [n.get("pod_cidr") for n in imported.scenario["inventory"]["nodes"]] == [
        "10.4.0.0/24", "10.4.1.0/24", "10.4.2.0/26", None]
    assert imported.skipped == {"IPv6 address": 1, "endpoint on no listed node": 1}
    assert imported.notes == POOL_NOTES
    assert imported.text().splitlines()[3:7] == [f"# note: {note}" for note in POOL_NOTES[:4]]


def test_node_without_pod_cidr_gets_the_free_block_of_the_spanned_pod_cidr():
    # 10.4.2.0/26 takes the /24 block 10.4.2.0/24 of the grid: 10.4.3.0/24 is the free one
    assert [str(a.pod_cidr) for a in addresses_of(import_kubectl(NODE_POOLS))] == [
        "10.4.0.0/24", "10.4.1.0/24", "10.4.2.0/26", "10.4.3.0/24"]


@pytest.mark.parametrize("provider_id, provider", [
    ("aws:///us-east-1a/i-0a1b2c3d4e5f67890", "cloud"),
    ("gce://demo-project/us-central1-a/gke-demo-pool-a-1", "cloud"),
    ("azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/"
     "providers/Microsoft.Compute/virtualMachineScaleSets/aks-pool1-vmss/virtualMachines/0",
     "cloud"),
    ("oci://ocid1.instance.oc1.iad.anuwcljtexample", "cloud"),
    ("ocid1.instance.oc1.iad.anuwcljtexample", "cloud"),  # OKE: the bare OCID
    ("ibm://a0bc0c5466544e968bff315fba51e594///c0d19dnd0uii3pk7po40/kube-c0d19-w1", "cloud"),
    ("digitalocean://312345678", "cloud"),
    ("linode://41234567", "cloud"),
    ("hcloud://31234567", "cloud"),
    ("openstack:///41c40aab-80e9-4bb6-a280-27976bfc811f", "cloud"),
    ("vsphere://4230a1b2-c3d4-e5f6-0718-293a4b5c6d7e", "bare-metal"),
    ("kind://docker/kind/kind-worker", "bare-metal"),
    ("k3s://k8s-node01", "bare-metal"),
    ("rke2://k8s-node01", "bare-metal"),
    ("", "bare-metal"),  # an empty providerID is none
])
def test_provider_from_provider_id(cluster, provider_id, provider):
    each_node(cluster, lambda i, node: node["spec"].update(providerID=provider_id))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["provider"] == provider
    assert imported.notes == (CILIUM,)


def test_without_a_cloud_provider_id_external_ips_decide(cluster):
    def kind_with_external_ip(i, node):
        node["spec"]["providerID"] = f"kind://docker/kind/{node['metadata']['name']}"
        if i == 2:
            node["status"]["addresses"].append({"type": "ExternalIP", "address": "203.0.113.9"})
    each_node(cluster, kind_with_external_ip)
    assert import_kubectl(cluster).scenario["cluster"]["provider"] == "cloud"


def test_mixed_and_unknown_provider_ids_are_noted(cluster):
    # one cloud node is enough: its cloud controller serves the whole cluster
    each_node(cluster, lambda i, node: node["spec"].update(providerID="aws:///us-east-1a/i-01")
              if i == 1 else None)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["provider"] == "cloud"
    assert imported.notes == ("nodes differ in spec.providerID (aws on 1 node, none on 2 "
                              "nodes): provider cloud, as aws says", CILIUM)

    ids = ["metal://rack1/7", "metal://rack1/8", "i-0a1b2c"]
    each_node(cluster, lambda i, node: node["spec"].update(providerID=ids[i]))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["provider"] == "bare-metal"
    assert imported.notes == (
        "nodes differ in spec.providerID (metal on 2 nodes, no scheme on 1 node)",
        "spec.providerID with no scheme, metal://: not a known cloud, provider from the "
        "nodes' ExternalIPs", CILIUM)


def test_provider_id_must_be_a_string(cluster):
    each_node(cluster, lambda i, node: node["spec"].update(providerID=42) if i == 1 else None)
    assert error_of(cluster) == ("DIR/nodes.json: items[1].spec.providerID: expected a string, "
                                 "got 42")


def test_pods_per_node_is_the_most_common_value(cluster):
    pods = ["110", "250", "250"]
    each_node(cluster, lambda i, node: node["status"]["allocatable"].update(pods=pods[i]))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["pods_per_node"] == 250
    assert imported.notes == ("nodes differ in status.allocatable.pods (250 on 2 nodes, 110 on "
                              "1 node): pods_per_node is 250, the most common", CILIUM)

    def tie(i, node):  # 110, 250 and a node that lists no Pods at all
        if i == 2:
            del node["status"]["allocatable"]["pods"], node["status"]["capacity"]["pods"]
    each_node(cluster, tie)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["pods_per_node"] == 250
    assert imported.notes == ("nodes differ in status.allocatable.pods (110 on 1 node, 250 on "
                              "1 node, none on 1 node): pods_per_node is 250, the most common, "
                              "the larger of a tie", CILIUM)


def test_pods_per_node_from_capacity_and_quantities(cluster):
    def capacity_only(i, node):
        del node["status"]["allocatable"]["pods"]
        node["status"]["capacity"]["pods"] = [64, "64", " 64 "][i]
    each_node(cluster, capacity_only)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["pods_per_node"] == 64
    assert imported.notes == (CILIUM,)


def test_pods_that_do_not_fit_a_node_block_keep_the_default(cluster, tmp_path):
    # EKS with the VPC CNI: Pod IPs come from the VPC, nodes list no podCIDR, and a big
    # instance allows 737 Pods; the model's /24 node blocks hold 254 Pod IPs
    def eks(i, node):
        del node["spec"]["podCIDR"], node["spec"]["podCIDRs"]
        node["spec"]["providerID"] = f"aws:///us-east-1a/i-0{i}"
        node["status"]["allocatable"]["pods"] = "737"
    each_node(cluster, eks)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"] == {"provider": "cloud", "cni_datapath": "vxlan", "kernel": "5.4.0"}
    assert imported.notes == (
        "pods_per_node left at 110: 737 Pods do not fit the /24 Pod block the model gives a "
        "node that lists no spec.podCIDR (254 Pod IPs); the model gives every Pod an IP of "
        "its node's block", CILIUM)
    out = tmp_path / "eks.yaml"
    out.write_text(imported.text())
    assert run_cli("check", out).returncode == 0

    # listed /24 blocks and 1k (1,000) Pods: Calico-style IPAM that ignores spec.podCIDR
    shutil.copy(REFERENCE / "nodes.json", cluster / "nodes.json")
    each_node(cluster, lambda i, node: node["status"]["allocatable"].update(pods="1k"))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"] == {"provider": "bare-metal", "node_cidr_mask": 24,
                                            "cni_datapath": "vxlan", "kernel": "5.4.0"}
    assert imported.notes == (
        "pods_per_node left at 110: 1,000 Pods do not fit the nodes' /24 Pod CIDRs (254 Pod "
        "IPs); the model gives every Pod an IP of its node's block", CILIUM)


@pytest.mark.parametrize("pods, message", [
    ("many", "expected a number of Pods, got 'many'"),
    ("110m", "expected a number of Pods, got '110m'"),
    (True, "expected a number of Pods, got True"),
    ("0", "expected 1 to 10,000 Pods a node, got 0"),
    ("20k", "expected 1 to 10,000 Pods a node, got 20,000"),
])
def test_bad_pods_value_names_the_field(cluster, pods, message):
    each_node(cluster, lambda i, node: node["status"]["allocatable"].update(pods=pods)
              if i == 2 else None)
    assert error_of(cluster) == f"DIR/nodes.json: items[2].status.allocatable.pods: {message}"


def test_pod_cidrs_outside_the_default_are_spanned(cluster):
    def k3s(i, node):  # k3s allocates 10.42.0.0/16
        node["spec"].update(podCIDR=f"10.42.{i}.0/24", podCIDRs=[f"10.42.{i}.0/24"],
                            providerID=f"k3s://{node['metadata']['name']}")
    each_node(cluster, k3s)
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"] == {"pods_per_node": 110, "provider": "bare-metal",
                                            "pod_cidr": "10.42.0.0/22", "node_cidr_mask": 24,
                                            "cni_datapath": "vxlan", "kernel": "5.4.0"}
    assert imported.notes == (CILIUM,)


def test_a_full_span_leaves_the_default_pod_cidr(cluster):
    # two IPv4 blocks fill 10.42.0.0/23; the third node is IPv6-only: no room in the span
    cidrs = [["10.42.0.0/24"], ["10.42.1.0/24"], ["fd00:10:42:2::/64"]]
    each_node(cluster, lambda i, node: node["spec"].update(podCIDR=cidrs[i][0],
                                                           podCIDRs=cidrs[i]))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"] == {"pods_per_node": 110, "provider": "bare-metal",
                                            "node_cidr_mask": 24, "cni_datapath": "vxlan", "kernel": "5.4.0"}
    assert imported.skipped["IPv6 address"] == 1
    assert imported.notes == (
        "1 node lists no IPv4 spec.podCIDR: the model gives it a block of cluster.pod_cidr",
        "pod_cidr left at 10.244.0.0/16: 10.42.0.0/23, the smallest network holding the "
        "nodes' Pod CIDRs, has no free /24 for the 1 node without one", CILIUM)
    assert [str(a.pod_cidr) for a in addresses_of(imported)] == [
        "10.42.0.0/24", "10.42.1.0/24", "10.244.0.0/24"]


@pytest.mark.parametrize("spec, message", [
    ({"podCIDRs": "10.244.0.0/24"},
     "items[0].spec.podCIDRs: expected a list, got '10.244.0.0/24'"),
    ({"podCIDRs": ["10.244.0.0/31"]},
     "items[0].spec.podCIDRs[0]: expected a node Pod CIDR of /8 to /30, got 10.244.0.0/31"),
    ({"podCIDRs": None, "podCIDR": "banana"},
     "items[0].spec.podCIDR: expected a CIDR, got 'banana'"),
])
def test_bad_pod_cidr_names_the_field(cluster, spec, message):
    each_node(cluster, lambda i, node: node["spec"].update(spec) if i == 0 else None)
    assert error_of(cluster) == f"DIR/nodes.json: {message}"


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
    assert error_of(cluster) == ("DIR/endpointslices.json: no endpoints to read: run 'kubectl get "
                                 "endpointslices -A -o json > endpointslices.json' (or give "
                                 "endpoints.json or pods.json)")
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


def test_a_node_listed_twice_is_kept_once_and_two_different_ones_are_refused(cluster):
    edit(cluster, "nodes.json", lambda d: d["items"].append(d["items"][0]))
    imported = import_kubectl(cluster)
    assert imported.nodes == 3
    assert imported.notes[0] == ("1 node listed twice (the same object in two files or "
                                 "layouts): kept once")
    edit(cluster, "nodes.json", lambda d: d["items"][3]["spec"].update(podCIDR="10.244.9.0/24",
                                                                       podCIDRs=["10.244.9.0/24"]))
    assert error_of(cluster) == ("DIR/nodes.json: items[3]: node k8s-master is also at "
                                 "DIR/nodes.json: items[0] and differs; keep one listing of it")


def test_an_import_that_is_no_valid_scenario_says_why(cluster):
    def external_names(data):
        for entry in data["items"]:
            entry["spec"] = {"type": "ExternalName", "externalName": "example.com"}
    edit(cluster, "services.json", external_names)
    assert error_of(cluster) == (
        "DIR: the imported cluster is not a valid scenario: inventory.services: every listed "
        "Service is type ExternalName (a DNS CNAME with no ClusterIP and no endpoints): no "
        "Service a client could call; list at least one other Service")


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
    from netmodel.runner.point import run_point

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
                           "read: 3 files: 3 Nodes, 10 Services, 10 EndpointSlices; endpoints "
                           "from the EndpointSlices\n"
                           f"note: {CILIUM}\n"
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


def test_node_fields_of_the_wrong_shape_name_the_field(cluster):
    each_node(cluster, lambda i, node: node["status"].update(addresses=True) if i == 1 else None)
    assert error_of(cluster) == ("DIR/nodes.json: items[1].status.addresses: expected a list, "
                                 "got True")
    shutil.copy(REFERENCE / "nodes.json", cluster / "nodes.json")
    each_node(cluster, lambda i, node: node.update(spec=["podCIDR"]) if i == 2 else None)
    assert error_of(cluster) == "DIR/nodes.json: items[2].spec: expected a mapping, got ['podCIDR']"


def test_cli_imports_node_pools_and_the_scenario_checks(tmp_path):
    out = tmp_path / "pools.yaml"
    done = run_cli("import", "kubectl", NODE_POOLS, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"wrote {out}: 4 nodes, 2 Services, 2 endpoints\n"
        "read: 3 files: 4 Nodes, 2 Services, 2 EndpointSlices; endpoints from the EndpointSlices\n"
        + "".join(f"note: {note}\n" for note in POOL_NOTES)
        + "skipped: 1 IPv6 address (the model is IPv4 for now); 1 endpoint on no listed node "
        "(no nodeName, and no Pod or node found for the address)\n")
    assert done.stderr == ("warning: 1 Service with no ready endpoint: a run drops their traffic "
                           "(default/kubernetes)\n")
    check = run_cli("check", out)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"ok: {out}: scenario 'node-pools'")


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


# --- real dumps and the layouts they come in -------------------------------------------

AKS = REPO / "tests" / "data" / "kubectl" / "aks-cluster-info"


def test_a_real_aks_cluster_info_dump_imports_from_its_pods():
    imported = import_kubectl(AKS)
    assert imported.read == {"files": 5, "Node": 1, "Service": 6, "Pod": 10}
    assert imported.endpoints_from.startswith("endpoints derived from the ready Pods")
    assert service(imported, "kube-dns")["endpoints"] == [
        {"ip": "10.244.0.10", "node": "aks-nodepool1-28869405-vmss000000"},
        {"ip": "10.244.0.7", "node": "aks-nodepool1-28869405-vmss000000"}]
    # the crash-looping dashboard Pod is not Ready: counted, and its Service is warned of
    assert imported.skipped == {"not-ready endpoint": 1}
    assert imported.warnings == ("2 Services with no ready endpoint: a run drops their traffic "
                                 "(default/kubernetes, kube-system/kubernetes-dashboard)",)
    # azure:// providerID: a cloud; kubenet: the route controller routes the Pod CIDRs
    assert imported.scenario["cluster"] == {"pods_per_node": 110, "provider": "cloud",
                                            "node_cidr_mask": 24, "cni_datapath": "native", "kernel": "4.15.0"}


def test_trace_on_a_real_dump_picks_a_service_it_can_call(tmp_path):
    out = tmp_path / "aks.yaml"
    assert run_cli("import", "kubectl", AKS, "-o", out).returncode == 0
    done = run_cli("trace", out, "--traffic", "pod-clusterip")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pod-clusterip to Service kube-system/dashboard-metrics-scraper "
                                  "(ClusterIP 10.0.248.72)")


def test_a_support_bundle_layout_and_items_null(tmp_path):
    bundle = tmp_path / "bundle" / "cluster-resources"
    for kind in ("services", "endpointslices"):
        (bundle / kind).mkdir(parents=True)
        data = json.loads((REFERENCE / f"{kind}.json").read_text())
        for namespace in {i["metadata"]["namespace"] for i in data["items"]}:
            items = [i for i in data["items"] if i["metadata"]["namespace"] == namespace]
            (bundle / kind / f"{namespace}.json").write_text(json.dumps({**data, "items": items}))
        (bundle / kind / "empty.json").write_text('{"kind": "List", "items": null}')
    shutil.copy(REFERENCE / "nodes.json", bundle / "nodes.json")
    imported = import_kubectl(tmp_path / "bundle")
    assert imported.read["files"] == 1 + 2 * 4
    assert imported.scenario["inventory"]["services"] == sorted(
        import_kubectl(REFERENCE).scenario["inventory"]["services"],
        key=lambda s: s["namespace"])


def test_endpoints_from_core_v1_endpoints(cluster):
    (cluster / "endpointslices.json").unlink()
    endpoints = {"kind": "EndpointsList", "items": [
        {"kind": "Endpoints", "metadata": {"name": "echo-a", "namespace": "default"},
         "subsets": [{"addresses": [{"ip": "10.244.1.12", "nodeName": "k8s-node01"}],
                      "notReadyAddresses": [{"ip": "10.244.1.13", "nodeName": "k8s-node01"}]}]},
        {"kind": "Endpoints", "metadata": {"name": "gone", "namespace": "default"}, "subsets": []}]}
    (cluster / "endpoints.json").write_text(json.dumps(endpoints))
    imported = import_kubectl(cluster)
    assert imported.endpoints_from == "endpoints from the Endpoints (there are no EndpointSlices)"
    assert service(imported, "echo-a")["endpoints"] == [{"ip": "10.244.1.12", "node": "k8s-node01"}]
    assert imported.skipped == {"not-ready endpoint": 1, "endpoint listing of no listed Service": 1}


def test_terminating_endpoints_are_counted(cluster):
    edit(cluster, "endpointslices.json", lambda d: item(d, "echo-a-tv4xs")["endpoints"][0].update(
        conditions={"ready": False, "serving": True, "terminating": True}))
    imported = import_kubectl(cluster)
    assert imported.skipped["terminating endpoint"] == 1
    assert service(imported, "echo-a")["endpoints"] == []


def test_load_balancer_ingress_is_served_on_bare_metal(cluster, tmp_path):
    def lb(data):
        spec = item(data, "echo-b")["spec"]
        spec["type"] = "LoadBalancer"
        item(data, "echo-b")["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.80.241"}]}}
    edit(cluster, "services.json", lb)
    imported = import_kubectl(cluster)
    assert imported.scenario["external"] == {"load_balancer": {"provider": "metallb"}}
    assert any("k3s ServiceLB" in note for note in imported.notes)
    out = tmp_path / "lb.yaml"
    out.write_text(imported.text())
    done = run_cli("trace", out, "--traffic", "external-loadbalancer")
    assert done.returncode == 0 and "unreachable" not in done.stdout, done.stdout


@pytest.mark.parametrize("annotations, datapath, words", [
    ({"flannel.alpha.coreos.com/backend-type": "host-gw"}, "native", "flannel backend host-gw"),
    ({"flannel.alpha.coreos.com/backend-type": "vxlan"}, "vxlan", "flannel backend vxlan"),
    ({"projectcalico.org/IPv4Address": "192.168.80.240/24"}, "native", "Calico BGP"),
    ({"projectcalico.org/IPv4IPIPTunnelAddr": "10.244.0.1"}, "vxlan", "Calico IP-in-IP"),
])
def test_cni_data_path_from_node_annotations(cluster, annotations, datapath, words):
    each_node(cluster, lambda i, node: node["metadata"].update(annotations=annotations))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["cni_datapath"] == datapath
    assert imported.notes[-1].startswith(f"cni_datapath {datapath}: {words}")


def test_duplicate_services_cluster_ips_and_node_ports(cluster):
    edit(cluster, "services.json", lambda d: d["items"].append(json.loads(json.dumps(
        item(d, "echo-a")))))
    assert import_kubectl(cluster).services == 10
    edit(cluster, "services.json", lambda d: d["items"][-1]["spec"].update(ports=[{"port": 81}]))
    assert error_of(cluster) == ("DIR/services.json: items[10]: Service default/echo-a is also at "
                                 "DIR/services.json: items[2] and differs; keep one listing of it")
    edit(cluster, "services.json", lambda d: d["items"].pop())
    edit(cluster, "services.json", lambda d: item(d, "hubble-ui")["spec"]["ports"][0].update(
        nodePort=31414))
    assert error_of(cluster) == ("DIR/services.json: items[8].spec.ports: node port 31414/TCP is "
                                 "also Service default/echo-b's: a node port belongs to one Service")


def test_a_redacted_dump_says_so(cluster):
    each_node(cluster, lambda i, node: node["status"]["addresses"][0].update(address="***HIDDEN***"))
    assert error_of(cluster) == (
        "DIR/nodes.json: items[0].status.addresses[0].address: the dump is redacted "
        "('***HIDDEN***' in place of an address); the import needs the real addresses: collect "
        "it again without redaction (support-bundle --redact=false)")


@pytest.mark.parametrize("change, message", [
    (lambda d: item(d, "echo-a").update(spec="x"), "items[2].spec: expected a mapping, got 'x'"),
    (lambda d: item(d, "echo-b")["spec"].update(externalTrafficPolicy=["x"]),
     "items[3].spec.externalTrafficPolicy: expected a string, got ['x']"),
    (lambda d: item(d, "echo-a")["spec"].update(clusterIP=167772161, clusterIPs=None),
     "items[2].spec.clusterIP: expected a string, got 167772161"),
    (lambda d: item(d, "echo-a")["spec"].update(selector=["a"]),
     "items[2].spec.selector: expected a mapping, got ['a']"),
])
def test_wrong_types_name_the_json_path(cluster, change, message):
    edit(cluster, "services.json", change)
    assert error_of(cluster) == f"DIR/services.json: {message}"


@pytest.mark.validation
def test_a_70000_service_cluster_imports_and_checks_within_the_limits(tmp_path):
    from tests.kubectl_dumps import synthetic_dump

    synthetic_dump(tmp_path / "big", services=70_000, nodes=500)
    out = tmp_path / "big.yaml"
    done = run_cli("import", "kubectl", tmp_path / "big", "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: 500 nodes, 70,000 Services, 140,000 endpoints")
    check = run_cli("check", out)
    assert check.returncode == 0, check.stderr


def test_the_kernel_is_the_oldest_a_node_reports(cluster):
    versions = ["6.6.117-45.11.2.tl4.x86_64", "5.15.0-1051-azure", "6.1.100+"]
    each_node(cluster, lambda i, node: node["status"]["nodeInfo"].update(kernelVersion=versions[i]))
    imported = import_kubectl(cluster)
    assert imported.scenario["cluster"]["kernel"] == "5.15.0"
    assert "nodes run different kernels (3 versions): cluster.kernel 5.15.0, the oldest " \
           "(5.15.0-1051-azure)" in imported.notes
    each_node(cluster, lambda i, node: node["status"]["nodeInfo"].update(kernelVersion="unknown"))
    assert "kernel" not in import_kubectl(cluster).scenario["cluster"]
    each_node(cluster, lambda i, node: node["status"]["nodeInfo"].update(kernelVersion=[5]))
    with pytest.raises(NetmodelError, match="kernelVersion"):
        import_kubectl(cluster)
