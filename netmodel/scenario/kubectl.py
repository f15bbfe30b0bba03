"""A real cluster as a scenario: `netmodel import kubectl DIR -o scenario.yaml`.

DIR holds what kubectl prints with `-o json`, in any of the layouts real dumps come in
(`kubectl_listings.py`: single files, a `kubectl cluster-info dump --output-directory`, a
support bundle's `cluster-resources/`):

| listing | made by | |
|---|---|---|
| nodes | `kubectl get nodes -o json` | required |
| Services | `kubectl get svc -A -o json` | required |
| EndpointSlices | `kubectl get endpointslices -A -o json` | endpoints from these, |
| Endpoints | `kubectl get endpoints -A -o json` | else from these, |
| Pods | `kubectl get pods -A -o json` | else from the ready Pods each selector matches |

The result is a scenario with an explicit `inventory:` (nodes with their addresses and
Pod CIDR; Services with type, ClusterIP, ports, node ports, selector, traffic policy and
their ready endpoints placed on nodes) that loads and runs as it is. Only what the
model uses is read; everything else (annotations, managedFields, status conditions,
...) is ignored. Every value read is type-checked, and an error names the file and the
JSON path. Not-ready and terminating endpoints and IPv6 addresses (the model is IPv4 for
now) are left out and counted in a comment at the top of the scenario.

From the nodes also come the `cluster` fields that hold for all of them:

- `provider`: `cloud` when a node's `spec.providerID` names a cloud whose controller
  answers `type: LoadBalancer` (`CLOUD_PROVIDER_IDS`); otherwise (kind, k3s, vSphere, an
  unknown scheme or no providerID) `cloud` when a node has an ExternalIP, else
  `bare-metal`;
- `pods_per_node`: the most common `status.allocatable.pods` (else `capacity.pods`), the
  larger on a tie;
- `node_cidr_mask`: the most common prefix length of the nodes' IPv4 Pod CIDRs, the
  shorter on a tie; `pod_cidr`: the default 10.244.0.0/16 when it holds every listed
  node block, else the smallest network that holds them all;
- `cni_datapath`: from flannel's backend-type annotation, Calico's or Cilium's node
  annotations, or routes the cloud created (`DATAPATH_SIGNS`); a guess that says so where
  the nodes show none;
- `kernel`: the oldest `status.nodeInfo.kernelVersion`, what an eBPF data plane can use.

LoadBalancer Services with an address in `status.loadBalancer.ingress` on a cluster
without a cloud provider are answered by something in the cluster (k3s ServiceLB,
MetalLB): `external.load_balancer.provider: metallb`. Where the nodes differ or a value
is guessed, a `# note:` line at the top of the scenario says so.

An endpoint's node is its `nodeName`; failing that the `kubernetes.io/hostname` of
its (v1beta1) `topology`, the node of the Pod its `targetRef` names in the Pods, or
the node whose InternalIP it is (the `kubernetes` Service's API server, host-network
Pods).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from netmodel.cluster.addresses import blocks_taken
from netmodel.errors import NetmodelError
from netmodel.scenario.kubectl_endpoints import IPV6, IPV6_SERVICE, WHY, Collector, Placer
from netmodel.scenario.kubectl_listings import (
    ASKED,
    ENDPOINT_SLICES,
    ENDPOINTS,
    NODES,
    PODS,
    SERVICES,
    SOURCES,
    Item,
    Listings,
    show,
)
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Cluster
from netmodel.units import format_count
from netmodel.writing import yaml_text

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
TRAFFIC_POLICIES = {"Cluster": "Cluster", "Local": "Local", "Global": "Cluster"}
"""spec.externalTrafficPolicy -> the model's; 'Global' is the old name of Cluster."""
REQUESTS = 2000
"""`run.requests` of an imported scenario: a short first run."""

# `spec.providerID` is `<scheme>://<id>`, written by the cloud controller manager (or the
# kubelet's --provider-id). The model's `cluster.provider: cloud` means "a cloud load
# balancer answers type: LoadBalancer", so a scheme counts as cloud only if the
# controller behind it implements LoadBalancer as a matter of course.
CLOUD_PROVIDER_IDS = {
    "aws": "EC2/EKS (aws:///<zone>/<instance>): ELB/NLB",
    "gce": "GCE/GKE (gce://<project>/<zone>/<instance>): Cloud Load Balancing",
    "azure": "Azure/AKS (azure:///subscriptions/...): Azure Load Balancer",
    "oci": "Oracle Cloud/OKE (oci://ocid1.instance... or the bare OCID): OCI Load Balancer",
    "ibm": "IBM Cloud/IKS (ibm://<account>///<cluster>/<worker>): its load balancers",
    "digitalocean": "DigitalOcean (digitalocean://<droplet>): DO Load Balancers",
    "linode": "Akamai/Linode (linode://<id>): NodeBalancers",
    "hcloud": "Hetzner Cloud (hcloud://<server>): Hetzner Load Balancers",
    "openstack": "OpenStack (openstack:///<uuid>): Octavia, which openstack-cloud-controller-"
                 "manager drives by default (clouds without Octavia: set "
                 "external.load_balancer.provider)",
}
"""providerID schemes whose cluster gets `provider: cloud`, and why."""
LOCAL_PROVIDER_IDS = {
    "kind": "Docker containers; no load balancer unless cloud-provider-kind is added",
    "k3s": "ServiceLB answers LoadBalancer with host ports on the nodes, not a cloud LB",
    "rke2": "as k3s",
    "vsphere": "the vSphere CPI does nodes and zones; its LoadBalancer needs NSX-T and is "
               "off by default (MetalLB, kube-vip or NSX ALB are used instead)",
}
"""providerID schemes known to come without a cloud load balancer: the ExternalIP rule
decides, as with no providerID at all."""
OCI_ID = "ocid1."
"""OKE nodes may carry the bare instance OCID as their providerID, with no scheme."""


def _bounds(name: str) -> range:
    """The values the schema allows for the integer field `cluster.<name>`."""
    meta = Cluster.model_fields[name].metadata
    low = next(m.ge for m in meta if hasattr(m, "ge"))
    high = next(m.le for m in meta if hasattr(m, "le"))
    return range(low, high + 1)


PODS_PER_NODE = _bounds("pods_per_node")
NODE_CIDR_MASKS = _bounds("node_cidr_mask")
DEFAULT_PODS_PER_NODE: int = Cluster.model_fields["pods_per_node"].default
DEFAULT_POD_CIDR: IPv4Network = Cluster.model_fields["pod_cidr"].default
DEFAULT_NODE_CIDR_MASK: int = Cluster.model_fields["node_cidr_mask"].default
QUANTITY_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "Ki": 2**10, "Mi": 2**20}
"""Suffixes of a Kubernetes quantity that a Pod count may carry (1000 Pods print as '1k')."""

DATAPATH_SIGNS = (
    ("flannel.alpha.coreos.com/backend-type", {"vxlan": "vxlan", "host-gw": "native"},
     "flannel backend {}"),
    ("projectcalico.org/IPv4VXLANTunnelAddr", None, "Calico VXLAN"),
    ("projectcalico.org/IPv4IPIPTunnelAddr", None, "Calico IP-in-IP"),
    ("projectcalico.org/IPv4Address", None, "Calico BGP"),
    ("io.cilium.network.ipv4-cilium-host", None, "Cilium"),
    ("network.cilium.io/ipv4-cilium-host", None, "Cilium"),
)
"""Node annotations that show the CNI: (annotation, its value -> cni_datapath, what it is).
The first one a node has decides; `_DATAPATH` says what each finding means."""
_DATAPATH = {
    "Calico VXLAN": ("vxlan", ""),
    "Calico IP-in-IP": ("vxlan", "IP-in-IP encapsulates as VXLAN does (20 bytes, not 50): "
                                 "modelled as the vxlan overlay"),
    "Calico BGP": ("native", "no tunnel address: routed (BGP)"),
    "Cilium": ("vxlan", "the tunnel mode is in the cilium-config ConfigMap, not on the nodes: "
                        "Cilium's default, VXLAN, guessed"),
    "cloud routes": ("native", "the cloud's route controller routes the Pod CIDRs (node "
                               "condition NetworkUnavailable: RouteCreated, as kubenet)"),
}

@dataclass(frozen=True)
class KubectlImport:
    """A cluster read from kubectl JSON, as scenario data."""

    source: str
    """DIR as given."""
    scenario: dict[str, Any]
    """The scenario document (plain data, the schema's field names)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """What was left out -> how many (only reasons that occurred)."""
    notes: tuple[str, ...] = ()
    """Where the nodes differ, a cluster field was guessed or could not be taken from them,
    and which source the endpoints came from."""
    read: dict[str, int] = field(default_factory=dict)
    """What was read: 'files', and items of each kind ('Node', 'Service', ...)."""
    endpoints_from: str = ""
    """Which source the endpoints came from, in words."""
    warnings: tuple[str, ...] = ()
    """What a run would suffer from (Services with no ready endpoint)."""

    @property
    def nodes(self) -> int:
        return len(self.scenario["inventory"]["nodes"])

    @property
    def services(self) -> int:
        return len(self.scenario["inventory"]["services"])

    @property
    def endpoints(self) -> int:
        return sum(len(s["endpoints"]) for s in self.scenario["inventory"]["services"])

    def counts(self) -> str:
        """'3 nodes, 10 Services, 11 endpoints'."""
        return (f"{format_count(self.nodes, 'node')}, {format_count(self.services, 'Service')}, "
                f"{format_count(self.endpoints, 'endpoint')}")

    def skipped_text(self) -> str:
        """'1 not-ready endpoint (only ready endpoints receive traffic); ...' or 'nothing'."""
        return "; ".join(f"{format_count(n, what, WHY[what][0])} ({WHY[what][1]})"
                         for what, n in self.skipped.items()) or "nothing"

    def read_text(self) -> str:
        """'3 files: 3 Nodes, 10 Services, 10 EndpointSlices; endpoints from the EndpointSlices'."""
        kinds = [format_count(n, kind, "" if kind == "Endpoints" else "s")
                 for kind, n in self.read.items() if kind != "files"]
        return (f"{format_count(self.read.get('files', 0), 'file')}: {', '.join(kinds)}; "
                f"{self.endpoints_from}")

    def text(self) -> str:
        """The scenario YAML, headed by a comment saying where it came from and what was
        left out."""
        header = (f"# generated by netmodel import kubectl from {self.source}; {self.counts()}\n"
                  f"# read: {self.read_text()}\n"
                  f"# skipped: {self.skipped_text()}\n"
                  + "".join(f"# note: {note}\n" for note in self.notes)
                  + "".join(f"# warning: {warning}\n" for warning in self.warnings))
        return header + yaml_text(self.scenario)


def import_kubectl(directory: str | Path) -> KubectlImport:
    """Return the scenario of the cluster whose kubectl JSON listings are in `directory`.

    Raises NetmodelError (one line, naming the file and the JSON path) for a missing
    listing, kubectl's text or YAML output instead of JSON, bad JSON (with its line), a
    redacted dump, duplicates that disagree, or a value the model cannot take.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise NetmodelError("not a folder; put the output of "
                            + ", ".join(f"'{s.command} > {s.names[0]}'" for s in ASKED)
                            + " in one", file=str(directory))
    listings, reader = Listings(folder), _Reader()
    items = {source: listings.items(source) for source in SOURCES}
    notes: list[str] = []
    nodes, facts = reader.nodes(items[NODES], listings, notes)
    services = reader.services(items[SERVICES], listings, notes)
    placer = Placer(nodes, items[PODS])
    collector = Collector({(s["namespace"], s["name"]): s for s in services},
                          reader.ipv6_services, placer, reader.skip)
    endpoints_from = _endpoints(collector, listings, items)
    folder_name = folder.resolve().name
    cluster = _cluster(nodes, facts, notes)  # nodes: the inventory's
    cluster.update(_datapath([item for item in items[NODES]], notes))
    cluster.update(_kernel(items[NODES], notes))
    scenario = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "-", folder_name).strip("_.-") or "imported",
        "description": f"the cluster listed by kubectl in {folder_name}/",
        "cluster": cluster,
        **_load_balancers(reader.ingress, nodes, cluster["provider"], notes),
        "workload": {"mix": {"pod-clusterip": 1}},
        "run": {"requests": REQUESTS},
        "inventory": {"nodes": nodes, "services": services},
    }
    _check(scenario, str(directory))
    skipped = {what: reader.skipped[what] for what in WHY if reader.skipped.get(what)}
    read = {"files": sum(len(f) for f in listings.files.values()),
            **{s.kind: len(items[s]) for s in SOURCES if listings.present(s)}}
    return KubectlImport(str(directory), scenario, skipped, tuple(notes), read, endpoints_from,
                         _warnings(services))


def _endpoints(collector: Collector, listings: Listings, items: dict) -> str:
    """Fill in the Services' endpoints from the best source there is; say which."""
    if listings.present(ENDPOINT_SLICES):
        for item in items[ENDPOINT_SLICES]:
            collector.endpoint_slice(item)
        return "endpoints from the EndpointSlices"
    if listings.present(ENDPOINTS):
        for item in items[ENDPOINTS]:
            collector.endpoints(item)
        return "endpoints from the Endpoints (there are no EndpointSlices)"
    if listings.present(PODS):
        collector.pods(items[PODS])
        return ("endpoints derived from the ready Pods each Service's selector matches (there "
                "are neither EndpointSlices nor Endpoints; Services without a selector get none)")
    raise NetmodelError("no endpoints to read: run "
                        f"'{ENDPOINT_SLICES.command} > {ENDPOINT_SLICES.names[0]}' (or give "
                        f"{ENDPOINTS.names[0]} or {PODS.names[0]})",
                        file=str(listings.root / ENDPOINT_SLICES.names[0]))


def _warnings(services: list[dict]) -> tuple[str, ...]:
    """Services a client could call but whose traffic a run would drop: no ready endpoint."""
    empty = [f"{s['namespace']}/{s['name']}" for s in services
             if s["type"] != "ExternalName" and not s["endpoints"]]
    if not empty:
        return ()
    shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5:,} more" if len(empty) > 5 else "")
    return (f"{format_count(len(empty), 'Service')} with no ready endpoint: a run drops "
            f"their traffic ({shown})",)


def _datapath(nodes: list[Item], notes: list[str]) -> dict[str, str]:
    """`cni_datapath` from what the nodes show of their CNI (`DATAPATH_SIGNS`), else a guess
    that a note states."""
    found = Counter(sign for node in nodes if (sign := _datapath_sign(node)) is not None)
    if not found:
        notes.append("the nodes show no CNI (no flannel, Calico or Cilium annotation, no cloud "
                      "routes): cni_datapath left at vxlan, a guess")
        return {}
    sign = max(found.items(), key=lambda kv: kv[1])[0]
    datapath, why = _DATAPATH.get(sign, (None, ""))
    if datapath is None:  # a flannel backend
        backend = sign.split()[-1]
        datapath = {"vxlan": "vxlan", "host-gw": "native"}.get(backend, "vxlan")
        why = "" if backend in ("vxlan", "host-gw") else \
            "an encapsulating backend other than VXLAN: modelled as the vxlan overlay"
    if len(found) > 1:
        notes.append("nodes differ in their CNI (" + _tally(found, len(nodes), "{}")
                     + f"): cni_datapath from {sign}, the most common")
    notes.append(f"cni_datapath {datapath}: {sign}" + (f"; {why}" if why else ""))
    return {"cni_datapath": datapath}


def _kernel(nodes: list[Item], notes: list[str]) -> dict[str, str]:
    """`kernel`: the oldest `status.nodeInfo.kernelVersion` ('5.15.0-1051-azure' -> 5.15.0),
    what the eBPF data plane can count on; nothing when no node says."""
    found = {}
    for node in nodes:
        text = node.text("status", "nodeInfo", "kernelVersion") or ""
        if (m := re.match(r"([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,5}))?", text)):
            found[text] = tuple(int(g or 0) for g in m.groups())
    if not found:
        return {}
    oldest = min(found, key=found.get)
    version = ".".join(str(v) for v in found[oldest])
    if len(set(found.values())) > 1:
        notes.append(f"nodes run different kernels ({len(found)} versions): cluster.kernel "
                     f"{version}, the oldest ({oldest})")
    return {"kernel": version}


def _datapath_sign(node: Item) -> str | None:
    annotations = node.mapping("metadata", "annotations")
    for annotation, values, what in DATAPATH_SIGNS:
        if annotation in annotations:
            return what.format(annotations[annotation]) if values is not None else what
    routed = any(c.get("type") == "NetworkUnavailable" and c.get("reason") == "RouteCreated"
                 for _, c in node.items("status", "conditions"))
    return "cloud routes" if routed else None


def _load_balancers(ingress: dict[tuple[str, str], list[str]], nodes: list[dict], provider: str,
                    notes: list[str]) -> dict[str, Any]:
    """`external.load_balancer` when LoadBalancer Services have addresses that no cloud gave."""
    served = {key: ips for key, ips in ingress.items() if ips}
    pending = len(ingress) - len(served)
    if pending:
        notes.append(f"{format_count(pending, 'LoadBalancer Service')} without "
                     "status.loadBalancer.ingress (EXTERNAL-IP <pending>)")
    if not served or provider == "cloud":
        return {}
    node_ips = {n.get(k) for n in nodes for k in ("internal_ip", "external_ip")}
    on_nodes = all(ip in node_ips for ips in served.values() for ip in ips)
    by = ("k3s ServiceLB (klipper-lb): their addresses are the nodes'" if on_nodes else
          "an in-cluster load balancer such as MetalLB")
    notes.append(f"{format_count(len(served), 'LoadBalancer Service')} with an address in "
                 f"status.loadBalancer.ingress on a cluster without a cloud provider, answered by "
                 f"{by}: modelled as external.load_balancer.provider metallb (L2)")
    return {"external": {"load_balancer": {"provider": "metallb"}}}


@dataclass(frozen=True)
class _NodeFacts:
    """What a node says about the whole cluster."""

    provider_id: str | None
    """The scheme of spec.providerID ('aws', 'gce', ...; 'oci' for a bare OCID), '' when
    it has no scheme, None when there is none."""
    pods: int | None
    """status.allocatable.pods (else capacity.pods), None when neither is given."""


def _cluster(nodes: list[dict], facts: list[_NodeFacts], notes: list[str]) -> dict[str, Any]:
    """The `cluster` section the nodes agree on (in the schema's field order), adding to
    `notes` where they differ or a value cannot be used."""
    cluster: dict[str, Any] = {}
    mask = Counter(IPv4Network(n["pod_cidr"]).prefixlen for n in nodes if "pod_cidr" in n)
    block = max(mask.items(), key=lambda kv: (kv[1], -kv[0]))[0] if mask else None
    cluster.update(_pods_per_node(facts, block, notes))
    cluster["provider"] = _provider(nodes, facts, notes)
    if block is not None:
        cluster.update(_pod_cidr(nodes, mask, block, notes))
    return cluster


def _pods_per_node(facts: list[_NodeFacts], block: int | None, notes: list[str]) -> dict[str, int]:
    """`pods_per_node`: the nodes' most common allocatable Pods, if their Pod blocks hold it."""
    pods = Counter(f.pods for f in facts if f.pods is not None)
    if pods:
        per_node = max(pods.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if len(pods) > 1 or sum(pods.values()) < len(facts):
            tie = list(pods.values()).count(pods[per_node]) > 1
            notes.append("nodes differ in status.allocatable.pods ("
                         + _tally(pods, len(facts), "{}") + f"): pods_per_node is {per_node}, "
                         "the most common" + (", the larger of a tie" if tie else ""))
        room = _host_count(block if block is not None else DEFAULT_NODE_CIDR_MASK)
        if per_node <= room:
            return {"pods_per_node": per_node}
        where = (f"the nodes' /{block} Pod CIDRs" if block is not None else
                 f"the /{DEFAULT_NODE_CIDR_MASK} Pod block the model gives a node that "
                 f"lists no spec.podCIDR")
        notes.append(f"pods_per_node left at {DEFAULT_PODS_PER_NODE}: {per_node:,} Pods "
                     f"do not fit {where} ({room:,} Pod IPs); the model gives every Pod an "
                     "IP of its node's block")
    return {}


def _provider(nodes: list[dict], facts: list[_NodeFacts], notes: list[str]) -> str:
    """'cloud' when a node's providerID names a cloud or a node has an ExternalIP."""
    ids = Counter(f.provider_id for f in facts)
    clouds = sorted(i for i in ids if i in CLOUD_PROVIDER_IDS)
    unknown = sorted(i for i in ids if i is not None and i not in CLOUD_PROVIDER_IDS
                     and i not in LOCAL_PROVIDER_IDS)
    if len(ids) > 1:
        notes.append("nodes differ in spec.providerID (" + _tally(ids, len(facts), "{}")
                     + ")" + (f": provider cloud, as {clouds[0]} says" if clouds else ""))
    if unknown and not clouds:
        names = ", ".join("with no scheme" if i == "" else f"{i}://" for i in unknown)
        notes.append(f"spec.providerID {names}: not a known cloud, provider from the nodes' "
                     "ExternalIPs")
    external = any("external_ip" in n for n in nodes)
    return "cloud" if clouds or external else "bare-metal"


def _pod_cidr(nodes: list[dict], mask: Counter, block: int, notes: list[str]) -> dict[str, Any]:
    """`pod_cidr` (when the default does not hold the nodes' blocks) and `node_cidr_mask`."""
    cluster: dict[str, Any] = {}
    given = [IPv4Network(n["pod_cidr"]) for n in nodes if "pod_cidr" in n]
    missing = len(nodes) - len(given)
    if len(mask) > 1:
        tie = list(mask.values()).count(mask[block]) > 1
        notes.append("nodes differ in the size of their Pod CIDR ("
                     + _tally(mask, len(given), "/{}") + f"): node_cidr_mask is {block}, "
                     "the most common" + (", the shorter prefix of a tie" if tie else ""))
    if missing:
        notes.append(f"{format_count(missing, 'node')} list{'s' if missing == 1 else ''} no IPv4 "
                     "spec.podCIDR: the model gives "
                     f"{'it a block' if missing == 1 else 'them blocks'} of cluster.pod_cidr")
    default_holds = (block >= DEFAULT_POD_CIDR.prefixlen
                     and all(net.subnet_of(DEFAULT_POD_CIDR) for net in given)
                     and _free_blocks(DEFAULT_POD_CIDR, block, given) >= missing)
    if not default_holds:
        span = given[0]
        while not all(net.subnet_of(span) for net in given):
            span = span.supernet()
        if _free_blocks(span, block, given) >= missing:
            cluster["pod_cidr"] = str(span)
        else:
            notes.append(f"pod_cidr left at {DEFAULT_POD_CIDR}: {span}, the smallest "
                         f"network holding the nodes' Pod CIDRs, has no free /{block} for "
                         f"the {format_count(missing, 'node')} without one")
    cluster["node_cidr_mask"] = block
    return cluster


def _check(scenario: dict[str, Any], source: str) -> None:
    """Raise NetmodelError naming `source` if `scenario` is not a valid scenario."""
    try:
        validate_scenario(scenario)
    except NetmodelError as err:
        raise NetmodelError(f"the imported cluster is not a valid scenario: {err}",
                            file=source) from None


class _Reader:
    """Reads nodes and Services from listing items, counting what it leaves out."""

    def __init__(self):
        self.skipped: dict[str, int] = {}
        self.ipv6_services: set[tuple[str, str]] = set()
        """(namespace, name) of the IPv6-only Services left out."""
        self.ingress: dict[tuple[str, str], list[str]] = {}
        """LoadBalancer Service -> the addresses of its status.loadBalancer.ingress."""

    def skip(self, what: str, n: int = 1) -> None:
        if n:
            self.skipped[what] = self.skipped.get(what, 0) + n

    # --- nodes ------------------------------------------------------------------------

    def nodes(self, items: list[Item], listings: Listings,
              notes: list[str]) -> tuple[list[dict], list["_NodeFacts"]]:
        """The inventory nodes and what each says about the cluster; the same node listed
        twice is kept once (noted), two different nodes of one name are refused."""
        read: dict[str, tuple[dict, _NodeFacts, Item]] = {}
        for item in items:
            node, facts = self.node(item)
            if node["name"] in read:
                _same_or_refuse(read[node["name"]][0], node, read[node["name"]][2], item, "node")
                continue
            read[node["name"]] = (node, facts, item)
        if not read:
            raise NetmodelError(f"no nodes; run '{NODES.command} > {NODES.names[0]}'",
                                file=(listings.files[NODES] or [None])[0])
        _note_duplicates(len(items) - len(read), "node", notes)
        return [n for n, _, _ in read.values()], [f for _, f, _ in read.values()]

    def node(self, item: Item) -> tuple[dict, "_NodeFacts"]:
        """An inventory node (name, internal_ip, external_ip, hostname, pod_cidr) and what
        it says about the cluster."""
        found = self._node_addresses(item)
        item.get("spec", kind=dict)
        pod_cidr = self._node_pod_cidr(item)
        if pod_cidr is not None:
            found["pod_cidr"] = pod_cidr
        node = {"name": item.text("metadata", "name", required=True)}
        node.update((key, found[key]) for key in ("internal_ip", "external_ip", "hostname",
                                                  "pod_cidr") if key in found)
        provider_id = item.text("spec", "providerID")
        pods = None
        for part in ("allocatable", "capacity"):
            value = item.get("status", part, "pods", kind=object)
            if value is not None:
                pods = self.pods(item, f".status.{part}.pods", value)
                break
        return node, _NodeFacts(_provider_scheme(provider_id), pods)

    def _node_addresses(self, item: Item) -> dict[str, str]:
        """The node's first InternalIP and ExternalIP (IPv4) and Hostname."""
        found: dict[str, str] = {}
        for sub, entry in item.items("status", "addresses"):
            kind = entry.get("type")
            if not isinstance(kind, str):
                raise item.error(f"{sub}.type", f"expected a string, got {show(kind)}")
            key = {"InternalIP": "internal_ip", "ExternalIP": "external_ip",
                   "Hostname": "hostname"}.get(kind)
            if key is None:
                continue
            value = entry.get("address")
            if not isinstance(value, str) or not value:
                raise item.error(f"{sub}.address", f"expected a string, got {show(value)}")
            if key == "hostname":
                found.setdefault(key, value)
            elif (ip := item.ip(f"{sub}.address", value)) is not None:
                found.setdefault(key, str(ip))
            else:
                self.skip(IPV6)
        return found

    def _node_pod_cidr(self, item: Item) -> str | None:
        """The node's first IPv4 Pod CIDR (spec.podCIDRs, else spec.podCIDR)."""
        cidrs = item.items("spec", "podCIDRs", kind=str) if item.get("spec", "podCIDRs", kind=object) \
            else [(".spec.podCIDR", c) for c in [item.text("spec", "podCIDR")] if c]
        first = None
        for sub, cidr in cidrs:  # every one read: IPv6 ones are counted
            net = item.network(sub, cidr)
            if net is None:
                self.skip(IPV6)
            elif first is None:
                if net.prefixlen not in NODE_CIDR_MASKS:
                    raise item.error(sub, f"expected a node Pod CIDR of /{NODE_CIDR_MASKS[0]} to "
                                          f"/{NODE_CIDR_MASKS[-1]}, got {net}")
                first = str(net)
        return first

    def pods(self, item: Item, sub: str, value: Any) -> int:
        """A node's Pod count: a whole number, or a quantity string such as '110' or '1k'."""
        count = None
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        elif isinstance(value, str) and (match := re.fullmatch(r"\s*(\d{1,12})([kM]i?)?\s*", value)):
            count = int(match[1]) * QUANTITY_SUFFIXES[match[2] or ""]
        if count is None:
            raise item.error(sub, f"expected a number of Pods, got {show(value)}")
        if count not in PODS_PER_NODE:
            raise item.error(sub, f"expected {PODS_PER_NODE[0]} to {PODS_PER_NODE[-1]:,} Pods a "
                                  f"node, got {count:,}")
        return count

    # --- Services ---------------------------------------------------------------------

    def services(self, items: list[Item], listings: Listings, notes: list[str]) -> list[dict]:
        """The inventory Services; one listed twice is kept once (noted), two different ones
        of one namespace/name, a ClusterIP or a node port used twice are refused."""
        read: dict[tuple[str, str], tuple[dict, Item]] = {}
        for item in items:
            service = self.service(item)
            if service is None:
                continue
            key = (service["namespace"], service["name"])
            if key in read:
                _same_or_refuse(read[key][0], service, read[key][1], item, "Service")
                continue
            read[key] = (service, item)
        if not read:
            raise NetmodelError("no Services with an IPv4 ClusterIP or headless to import",
                                file=(listings.files[SERVICES] or [None])[0])
        _note_duplicates(len(items) - len(read) - self.skipped.get(IPV6_SERVICE, 0), "Service", notes)
        _refuse_shared(read.values())
        return [service for service, _ in read.values()]

    def service(self, item: Item) -> dict | None:
        """An inventory Service, or None for an IPv6-only one."""
        namespace = item.text("metadata", "namespace") or "default"
        name = item.text("metadata", "name", required=True)
        kind = item.text("spec", "type") or "ClusterIP"
        if kind not in SERVICE_TYPES:
            raise item.error(".spec.type", f"expected one of {', '.join(SERVICE_TYPES)}, "
                                           f"got {show(kind)}")
        service: dict[str, Any] = {"namespace": namespace, "name": name, "type": kind}
        if kind != "ExternalName" and not self._cluster_ip(item, service):
            self.skip(IPV6_SERVICE)
            self.ipv6_services.add((namespace, name))
            return None
        service["ports"] = [self.port(item, sub, port) for sub, port in item.items("spec", "ports")]
        service["selector"] = dict(item.mapping("spec", "selector"))
        if kind in ("NodePort", "LoadBalancer"):
            policy = item.text("spec", "externalTrafficPolicy") or "Cluster"
            if policy not in TRAFFIC_POLICIES:
                raise item.error(".spec.externalTrafficPolicy",
                                 f"expected Cluster or Local, got {show(policy)}")
            service["external_traffic_policy"] = TRAFFIC_POLICIES[policy]
        if kind == "LoadBalancer":
            self.ingress[(namespace, name)] = self._ingress(item)
        service["endpoints"] = []
        return service

    def _cluster_ip(self, item: Item, service: dict) -> bool:
        """Set the Service's cluster_ip (IPv4 or 'None'); False for an IPv6-only one."""
        single = item.text("spec", "clusterIP")
        listed = item.items("spec", "clusterIPs", kind=str) or \
            [(".spec.clusterIP", ip) for ip in [single] if ip]
        ips = [(sub, ip) for sub, ip in listed if ip]
        if any(ip == "None" for _, ip in ips):
            service["cluster_ip"] = "None"
            return True
        if not ips:  # none given: allocated from cluster.service_cidr
            return True
        ipv4 = [ip for sub, text in ips if (ip := item.ip(sub, text)) is not None]
        if not ipv4:
            return False
        self.skip(IPV6, len(ips) - len(ipv4))
        service["cluster_ip"] = str(ipv4[0])
        return True

    def _ingress(self, item: Item) -> list[str]:
        """The addresses (IPs or host names) of a LoadBalancer's status.loadBalancer.ingress."""
        found = []
        for sub, entry in item.items("status", "loadBalancer", "ingress"):
            ip, hostname = entry.get("ip"), entry.get("hostname")
            if ip is not None:
                item.ip(f"{sub}.ip", ip)
                found.append(ip)
            elif isinstance(hostname, str) and hostname:
                found.append(hostname)
            else:
                raise item.error(sub, f"expected an ip or a hostname, got {show(entry)}")
        return found

    def port(self, item: Item, sub: str, port: dict) -> dict:
        entry: dict[str, Any] = {}
        name = port.get("name")
        if name is not None and not isinstance(name, str):
            raise item.error(f"{sub}.name", f"expected a string, got {show(name)}")
        if name:
            entry["name"] = name
        entry["port"] = _port_number(item, f"{sub}.port", port.get("port"))
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS:
            raise item.error(f"{sub}.protocol",
                             f"expected one of {', '.join(PROTOCOLS)}, got {show(protocol)}")
        entry["protocol"] = protocol
        if port.get("nodePort"):
            entry["node_port"] = _port_number(item, f"{sub}.nodePort", port["nodePort"])
        return entry


def _port_number(item: Item, sub: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise item.error(sub, f"expected a port number, got {show(value)}")
    return value


def _same_or_refuse(first: dict, again: dict, first_item: Item, item: Item, what: str) -> None:
    """A node or Service listed twice: the same is kept once; different ones are refused."""
    if first != again:
        raise item.error("", f"{what} {again.get('namespace', '') + '/' if what == 'Service' else ''}"
                             f"{again['name']} is also at {first_item.file}: {first_item.at} and "
                             "differs; keep one listing of it")


def _note_duplicates(count: int, what: str, notes: list[str]) -> None:
    if count > 0:
        notes.append(f"{format_count(count, what)} listed twice (the same object in two files "
                     "or layouts): kept once")


def _refuse_shared(services) -> None:
    """Two Services with one ClusterIP, or one node port: no cluster allocates that."""
    ips: dict[str, tuple[dict, Item]] = {}
    ports: dict[tuple[int, str], tuple[dict, Item]] = {}
    for service, item in services:
        ip = service.get("cluster_ip")
        if ip not in (None, "None"):
            if ip in ips:
                raise item.error(".spec.clusterIP", f"ClusterIP {ip} is also Service "
                                 f"{ips[ip][0]['namespace']}/{ips[ip][0]['name']}'s: a ClusterIP "
                                 "belongs to one Service")
            ips[ip] = (service, item)
        for port in service["ports"]:
            key = (port.get("node_port"), port["protocol"])
            if key[0] is not None and key in ports and ports[key][0] is not service:
                other = ports[key][0]
                raise item.error(".spec.ports", f"node port {key[0]}/{key[1]} is also Service "
                                 f"{other['namespace']}/{other['name']}'s: a node port belongs to "
                                 "one Service")
            ports.setdefault(key, (service, item))


def _provider_scheme(provider_id: str | None) -> str | None:
    """'aws' for 'aws:///us-east-1a/i-0abc'; 'oci' for a bare OCID; '' for a providerID
    with no scheme; None for none."""
    if provider_id is None:
        return None
    if match := re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", provider_id):
        return match[1].lower()
    return "oci" if provider_id.startswith(OCI_ID) else ""


def _tally(counter: Counter, total: int, shape: str) -> str:
    """'110 on 2 nodes, 250 on 1 node, none on 1 node': the most common first, then by
    value, 'none' last; `shape` formats a value; None (or what the counter lacks of
    `total`) is 'none' and '' is 'no scheme'."""
    missing = total - sum(counter.values())
    items = sorted(counter.items(), key=lambda kv: (kv[0] is None, -kv[1], _order(kv[0])))
    parts = ["none" if value is None else "no scheme" if value == "" else shape.format(value)
             for value, _ in items]
    counts = [n for _, n in items]
    if missing:
        parts.append("none")
        counts.append(missing)
    return ", ".join(f"{what} on {format_count(n, 'node')}" for what, n in zip(parts, counts))


def _order(value: Any) -> tuple:
    """Numbers by value, then strings."""
    return (0, value, "") if isinstance(value, int) else (1, 0, str(value))


def _host_count(prefix: int) -> int:
    """Usable addresses of a /prefix: all but the network and broadcast addresses."""
    return (1 << (32 - prefix)) - (2 if prefix < 31 else 0)


def _free_blocks(network: IPv4Network, prefix: int, given: list[IPv4Network]) -> int:
    """How many /prefix blocks of `network` none of `given` overlaps."""
    return (1 << (prefix - network.prefixlen)) - len(blocks_taken(network, prefix, given))
