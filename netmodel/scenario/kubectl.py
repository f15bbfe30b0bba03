"""A real cluster as a scenario: `netmodel import kubectl DIR -o scenario.yaml`.

DIR holds what kubectl prints with `-o json`:

| file (accepted names) | made by | |
|---|---|---|
| `nodes.json` | `kubectl get nodes -o json` | required |
| `services.json` or `svc.json` | `kubectl get svc -A -o json` | required |
| `endpointslices.json` | `kubectl get endpointslices -A -o json` | required |
| `pods.json` | `kubectl get pods -A -o json` | optional |

The result is a scenario with an explicit `inventory:` (nodes with their addresses and
Pod CIDR; Services with type, ClusterIP, ports, node ports, selector, traffic policy and
their ready endpoints placed on nodes) that loads and runs as it is. Only what the
model uses is read; everything else (annotations, managedFields, status conditions,
...) is ignored. Not-ready endpoints and IPv6 addresses (the model is IPv4 for now) are
left out and counted in a comment at the top of the scenario.

From the nodes also come the `cluster` fields that hold for all of them:

- `provider`: `cloud` when a node's `spec.providerID` names a cloud whose controller
  answers `type: LoadBalancer` (`CLOUD_PROVIDER_IDS`); otherwise (kind, k3s, vSphere, an
  unknown scheme or no providerID) `cloud` when a node has an ExternalIP, else
  `bare-metal`;
- `pods_per_node`: the most common `status.allocatable.pods` (else `capacity.pods`), the
  larger on a tie;
- `node_cidr_mask`: the most common prefix length of the nodes' IPv4 Pod CIDRs, the
  shorter on a tie; `pod_cidr`: the default 10.244.0.0/16 when it holds every listed
  node block, else the smallest network that holds them all.

Where the nodes differ, a `# note:` line at the top of the scenario says so.

An endpoint's node is its `nodeName`; failing that the `kubernetes.io/hostname` of
its (v1beta1) `topology`, the node of the Pod its `targetRef` names in `pods.json`, or
the node whose InternalIP it is (the `kubernetes` Service's API server, host-network
Pods).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

import yaml

from netmodel.cluster.addresses import blocks_taken
from netmodel.errors import NetmodelError
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Cluster
from netmodel.units import format_count


@dataclass(frozen=True)
class Source:
    """One kubectl listing that the import reads."""

    names: tuple[str, ...]
    """File names accepted in DIR, the conventional one first."""
    command: str
    """The kubectl command that makes it."""
    kind: str
    """Kind of its items."""
    required: bool = True


NODES = Source(("nodes.json",), "kubectl get nodes -o json", "Node")
SERVICES = Source(("services.json", "svc.json"), "kubectl get svc -A -o json", "Service")
ENDPOINT_SLICES = Source(("endpointslices.json",), "kubectl get endpointslices -A -o json",
                         "EndpointSlice")
PODS = Source(("pods.json",), "kubectl get pods -A -o json", "Pod", required=False)
SOURCES = (NODES, SERVICES, ENDPOINT_SLICES, PODS)

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
TRAFFIC_POLICIES = {"Cluster": "Cluster", "Local": "Local", "Global": "Cluster"}
"""spec.externalTrafficPolicy -> the model's; 'Global' is the old name of Cluster."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
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

# Why something was left out, in the order the header lists them.
NOT_READY = "not-ready endpoint"
IPV6 = "IPv6 address"
IPV6_SERVICE = "IPv6-only Service"
FQDN = "FQDN endpoint"
NO_NODE = "endpoint on no listed node"
NO_SERVICE = "EndpointSlice of no listed Service"
DUPLICATE = "duplicate endpoint"
_WHY = {
    NOT_READY: ("s", "only ready endpoints receive traffic"),
    IPV6: ("es", "the model is IPv4 for now"),
    IPV6_SERVICE: ("s", "no IPv4 ClusterIP; their endpoints are IPv6"),
    FQDN: ("s", "addressType FQDN: not Pod IPs"),
    NO_NODE: ("s", "no nodeName, and no Pod or node found for the address"),
    NO_SERVICE: ("s", f"no {SERVICE_NAME_LABEL} label naming a Service in the Services file"),
    DUPLICATE: ("s", "the same address in two EndpointSlices of one Service, kept once"),
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
    """Where the nodes differ or a cluster field could not be taken from them."""

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
        return "; ".join(f"{format_count(n, what, _WHY[what][0])} ({_WHY[what][1]})"
                         for what, n in self.skipped.items()) or "nothing"

    def text(self) -> str:
        """The scenario YAML, headed by a comment saying where it came from and what was
        left out."""
        header = (f"# generated by netmodel import kubectl from {self.source}; {self.counts()}\n"
                  f"# skipped: {self.skipped_text()}\n"
                  + "".join(f"# note: {note}\n" for note in self.notes))
        return header + yaml.safe_dump(self.scenario, sort_keys=False, allow_unicode=True,
                                       width=100)


def import_kubectl(directory: str | Path) -> KubectlImport:
    """Return the scenario of the cluster whose kubectl JSON listings are in `directory`.

    Raises NetmodelError (one line, naming the file) for a missing listing, kubectl's
    text or YAML output instead of JSON, bad JSON (with its line), or an item the
    model cannot take.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise NetmodelError("not a folder; put the output of "
                            + ", ".join(f"'{s.command} > {s.names[0]}'" for s in SOURCES
                                        if s.required) + " in one", file=str(directory))
    reader = _Reader()
    node_items = reader.items(folder, NODES)
    service_items = reader.items(folder, SERVICES)
    slice_items = reader.items(folder, ENDPOINT_SLICES)
    pod_items = reader.items(folder, PODS)

    read = [reader.node(i, item) for i, item in enumerate(node_items)]
    nodes = [node for node, _ in read]
    if not nodes:
        raise NetmodelError(f"no nodes; run '{NODES.command} > {NODES.names[0]}'",
                            file=reader.files[NODES])
    services = [s for i, item in enumerate(service_items)
                if (s := reader.service(i, item)) is not None]
    if not services:
        raise NetmodelError("no Services with an IPv4 ClusterIP or headless to import",
                            file=reader.files[SERVICES])
    placer = _Placer(nodes, pod_items)
    by_name = {(s["namespace"], s["name"]): s for s in services}
    for i, item in enumerate(slice_items):
        reader.endpoint_slice(i, item, by_name, placer)

    folder_name = folder.resolve().name
    notes: list[str] = []
    scenario = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "-", folder_name).strip("_.-") or "imported",
        "description": f"the cluster listed by kubectl in {folder_name}/",
        "cluster": _cluster(nodes, [facts for _, facts in read], notes),  # nodes: the inventory's
        "workload": {"mix": {"pod-clusterip": 1}},
        "run": {"requests": REQUESTS},
        "inventory": {"nodes": nodes, "services": services},
    }
    _check(scenario, str(directory))
    skipped = {what: reader.skipped[what] for what in _WHY if reader.skipped.get(what)}
    return KubectlImport(str(directory), scenario, skipped, tuple(notes))


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
    """Reads the listings of one folder, remembering file names and what was skipped."""

    def __init__(self):
        self.files: dict[Source, str] = {}
        self.skipped: dict[str, int] = {}
        self.ipv6_services: set[tuple[str, str]] = set()
        """(namespace, name) of the IPv6-only Services left out."""

    def skip(self, what: str, n: int = 1) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + n

    # --- files ------------------------------------------------------------------------

    def items(self, folder: Path, source: Source) -> list[dict]:
        """The items of the listing `source` in `folder` ([] for a missing optional one)."""
        present = [name for name in source.names if (folder / name).is_file()]
        if len(present) > 1:
            raise NetmodelError(f"both {' and '.join(present)} are here; keep one",
                                file=str(folder / present[0]))
        if not present:
            if not source.required:
                return []
            also = f" (also accepted: {', '.join(source.names[1:])})" if source.names[1:] else ""
            raise NetmodelError(f"missing; run '{source.command} > {source.names[0]}'{also}",
                                file=str(folder / source.names[0]))
        file = self.files[source] = str(folder / present[0])
        run = f"run '{source.command} > {present[0]}'"
        return self._listed(_json_of(folder / present[0], file, run), source, file, run)

    def _listed(self, data: Any, source: Source, file: str, run: str) -> list[dict]:
        """The items of a listing's JSON, each checked to be an object of its kind."""
        if isinstance(data, list):
            items = data
        elif isinstance(data, dict) and isinstance(data.get("items"), list):
            items = data["items"]
        elif isinstance(data, dict) and data.get("kind") == source.kind:
            items = [data]
        else:
            got = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise NetmodelError(f"expected a List of {source.kind}s, got {got!r}; {run}",
                                file=file)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise NetmodelError(f"expected {_a(source.kind)} object, got {_show(item)}",
                                    file=file, field=f"items[{i}]")
            kind = item.get("kind")
            if kind is not None and kind != source.kind:
                raise NetmodelError(f"this is {_a(kind)}, expected {_a(source.kind)}; {run}",
                                    file=file, field=f"items[{i}]")
        return items

    def error(self, source: Source, at: str, message: str) -> NetmodelError:
        return NetmodelError(message, file=self.files[source], field=at)

    # --- objects ----------------------------------------------------------------------

    def node(self, i: int, item: dict) -> tuple[dict, "_NodeFacts"]:
        """An inventory node (name, internal_ip, external_ip, hostname, pod_cidr) and what
        it says about the cluster."""
        at = f"items[{i}]"
        found = self._node_addresses(at, item)
        spec = _get(item, "spec") or {}
        if not isinstance(spec, dict):
            raise self.error(NODES, f"{at}.spec", f"expected a mapping, got {_show(spec)}")
        pod_cidr = self._node_pod_cidr(at, spec)
        if pod_cidr is not None:
            found["pod_cidr"] = pod_cidr
        node = {"name": self.text(NODES, f"{at}.metadata.name", _get(item, "metadata", "name"),
                                  required=True)}
        node.update((key, found[key]) for key in ("internal_ip", "external_ip", "hostname",
                                                  "pod_cidr") if key in found)
        provider_id = self.text(NODES, f"{at}.spec.providerID", spec.get("providerID"))
        pods = None
        for part in ("allocatable", "capacity"):
            value = _get(item, "status", part, "pods")
            if value is not None:
                pods = self.pods(f"{at}.status.{part}.pods", value)
                break
        return node, _NodeFacts(_provider_scheme(provider_id), pods)

    def _node_addresses(self, at: str, item: dict) -> dict[str, str]:
        """The node's first InternalIP and ExternalIP (IPv4) and Hostname."""
        found: dict[str, str] = {}
        addresses = _get(item, "status", "addresses") or []
        if not isinstance(addresses, list):
            raise self.error(NODES, f"{at}.status.addresses",
                             f"expected a list, got {_show(addresses)}")
        for j, entry in enumerate(addresses):
            key = {"InternalIP": "internal_ip", "ExternalIP": "external_ip",
                   "Hostname": "hostname"}.get(_get(entry, "type"))
            if key is None:
                continue
            where = f"{at}.status.addresses[{j}].address"
            value = self.text(NODES, where, _get(entry, "address"), required=True)
            if key == "hostname":
                found.setdefault(key, value)
            elif (ip := self.ip(NODES, where, value)) is not None:
                found.setdefault(key, str(ip))
        return found

    def _node_pod_cidr(self, at: str, spec: dict) -> str | None:
        """The node's first IPv4 Pod CIDR (spec.podCIDRs, else spec.podCIDR)."""
        if spec.get("podCIDRs"):  # podCIDRs[0] is podCIDR (API docs)
            cidrs = spec["podCIDRs"]
            if not isinstance(cidrs, list):
                raise self.error(NODES, f"{at}.spec.podCIDRs",
                                 f"expected a list of CIDRs, got {_show(cidrs)}")
            places = [f"{at}.spec.podCIDRs[{j}]" for j in range(len(cidrs))]
        else:
            cidrs = [c for c in [spec.get("podCIDR")] if c]
            places = [f"{at}.spec.podCIDR"]
        first = None
        for at_cidr, cidr in zip(places, cidrs):  # every one read: IPv6 ones are counted
            net = self.network(NODES, at_cidr, cidr)
            if net is not None and first is None:
                if net.prefixlen not in NODE_CIDR_MASKS:
                    raise self.error(NODES, at_cidr, f"expected a node Pod CIDR of /"
                                     f"{NODE_CIDR_MASKS[0]} to /{NODE_CIDR_MASKS[-1]}, got {net}")
                first = str(net)
        return first

    def service(self, i: int, item: dict) -> dict | None:
        """An inventory Service, or None for an IPv6-only one."""
        at = f"items[{i}]"
        namespace = self.text(SERVICES, f"{at}.metadata.namespace",
                              _get(item, "metadata", "namespace")) or "default"
        name = self.text(SERVICES, f"{at}.metadata.name", _get(item, "metadata", "name"),
                         required=True)
        spec = _get(item, "spec") or {}
        kind = spec.get("type") or "ClusterIP"
        if kind not in SERVICE_TYPES:
            raise self.error(SERVICES, f"{at}.spec.type",
                             f"expected one of {', '.join(SERVICE_TYPES)}, got {_show(kind)}")
        service: dict[str, Any] = {"namespace": namespace, "name": name, "type": kind}
        if kind != "ExternalName":
            ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
            if "None" in ips:
                service["cluster_ip"] = "None"
            elif ips:  # none given: allocated from cluster.service_cidr
                found = [self.ip(SERVICES, f"{at}.spec.clusterIPs[{j}]", text, count=False)
                         for j, text in enumerate(ips)]
                ipv4 = [ip for ip in found if ip is not None]
                if not ipv4:
                    self.skip(IPV6_SERVICE)
                    self.ipv6_services.add((namespace, name))
                    return None
                self.skip(IPV6, len(found) - len(ipv4))
                service["cluster_ip"] = str(ipv4[0])
        service["ports"] = [self.port(f"{at}.spec.ports[{j}]", port)
                            for j, port in enumerate(spec.get("ports") or [])]
        selector = spec.get("selector") or {}
        if not isinstance(selector, dict):
            raise self.error(SERVICES, f"{at}.spec.selector",
                             f"expected a mapping, got {_show(selector)}")
        service["selector"] = {str(k): str(v) for k, v in selector.items()}
        if kind in ("NodePort", "LoadBalancer"):
            policy = spec.get("externalTrafficPolicy") or "Cluster"
            if policy not in TRAFFIC_POLICIES:
                raise self.error(SERVICES, f"{at}.spec.externalTrafficPolicy",
                                 f"expected Cluster or Local, got {_show(policy)}")
            service["external_traffic_policy"] = TRAFFIC_POLICIES[policy]
        service["endpoints"] = []
        return service

    def port(self, at: str, port: Any) -> dict:
        if not isinstance(port, dict):
            raise self.error(SERVICES, at, f"expected a mapping, got {_show(port)}")
        entry: dict[str, Any] = {}
        if port.get("name"):
            entry["name"] = str(port["name"])
        entry["port"] = self.number(f"{at}.port", port.get("port"))
        protocol = port.get("protocol") or "TCP"
        if protocol not in PROTOCOLS:
            raise self.error(SERVICES, f"{at}.protocol",
                             f"expected one of {', '.join(PROTOCOLS)}, got {_show(protocol)}")
        entry["protocol"] = protocol
        if port.get("nodePort"):
            entry["node_port"] = self.number(f"{at}.nodePort", port["nodePort"])
        return entry

    def endpoint_slice(self, i: int, item: dict, services: dict[tuple[str, str], dict],
                       placer: "_Placer") -> None:
        """Add the ready IPv4 endpoints of one EndpointSlice to its Service."""
        at = f"items[{i}]"
        endpoints = item.get("endpoints") or []
        namespace = self.text(ENDPOINT_SLICES, f"{at}.metadata.namespace",
                              _get(item, "metadata", "namespace")) or "default"
        owner = (_get(item, "metadata", "labels") or {}).get(SERVICE_NAME_LABEL)
        family = item.get("addressType") or "IPv4"
        service = services.get((namespace, owner))
        if service is None and (namespace, owner) in self.ipv6_services:
            family = "IPv6"
        elif service is None:
            self.skip(NO_SERVICE)
            return
        if family != "IPv4":
            self.skip(IPV6 if family == "IPv6" else FQDN, len(endpoints))
            return
        seen = {e["ip"] for e in service["endpoints"]}
        for j, endpoint in enumerate(endpoints):
            where = f"{at}.endpoints[{j}]"
            if not isinstance(endpoint, dict):
                raise self.error(ENDPOINT_SLICES, where,
                                 f"expected a mapping, got {_show(endpoint)}")
            if _get(endpoint, "conditions", "ready") is False:  # unset means ready (API docs)
                self.skip(NOT_READY)
                continue
            addresses = endpoint.get("addresses") or []
            if not addresses:
                raise self.error(ENDPOINT_SLICES, f"{where}.addresses", "expected an address")
            ip = self.ip(ENDPOINT_SLICES, f"{where}.addresses[0]", addresses[0])
            if ip is None:
                continue
            node = placer.node_of(endpoint, namespace, ip)
            if node is None:
                self.skip(NO_NODE)
            elif str(ip) in seen:
                self.skip(DUPLICATE)
            else:
                seen.add(str(ip))
                service["endpoints"].append({"ip": str(ip), "node": node})

    # --- values -----------------------------------------------------------------------

    def text(self, source: Source, at: str, value: Any, required: bool = False) -> str | None:
        """`value`, a string found at `at`; None when it is missing or empty."""
        if value is None or value == "":
            if required:
                raise self.error(source, at, "missing")
            return None
        if not isinstance(value, str):
            raise self.error(source, at, f"expected a string, got {_show(value)}")
        return value

    def pods(self, at: str, value: Any) -> int:
        """A node's Pod count: a whole number, or a quantity string such as '110' or '1k'."""
        count = None
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        elif isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+)([kM]i?)?\s*", value)):
            count = int(match[1]) * QUANTITY_SUFFIXES[match[2] or ""]
        if count is None:
            raise self.error(NODES, at, f"expected a number of Pods, got {_show(value)}")
        if count not in PODS_PER_NODE:
            raise self.error(NODES, at, f"expected {PODS_PER_NODE[0]} to "
                                        f"{PODS_PER_NODE[-1]:,} Pods a node, got "
                                        f"{count:,}")
        return count

    def number(self, at: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(SERVICES, at, f"expected a port number, got {_show(value)}")
        return value

    def ip(self, source: Source, at: str, text: Any, count: bool = True) -> IPv4Address | None:
        """The IPv4 address `text`; None (counted unless `count` is false) for an IPv6 one."""
        try:
            ip = ip_address(text)
        except ValueError:
            raise self.error(source, at, f"expected an IP address, got {_show(text)}") from None
        if not isinstance(ip, IPv4Address):
            if count:
                self.skip(IPV6)
            return None
        return ip

    def network(self, source: Source, at: str, text: Any) -> IPv4Network | None:
        """The IPv4 CIDR `text`; None (counted) for an IPv6 one."""
        try:
            net = ip_network(text, strict=False)
        except (TypeError, ValueError):
            raise self.error(source, at, f"expected a CIDR, got {_show(text)}") from None
        if not isinstance(net, IPv4Network):
            self.skip(IPV6)
            return None
        return net


class _Placer:
    """Finds the node an endpoint runs on."""

    def __init__(self, nodes: list[dict], pods: list[dict]):
        self.names = {n["name"] for n in nodes}
        self.by_hostname = {n.get("hostname", n["name"]): n["name"] for n in nodes}
        self.by_ip = {n["internal_ip"]: n["name"] for n in nodes if "internal_ip" in n}
        self.pod_node = {(_get(p, "metadata", "namespace") or "default",
                          _get(p, "metadata", "name")): _get(p, "spec", "nodeName")
                         for p in pods}

    def node_of(self, endpoint: dict, namespace: str, ip: IPv4Address) -> str | None:
        """The name of the listed node the endpoint is on, or None."""
        name = endpoint.get("nodeName")
        if not name:
            hostname = (endpoint.get("topology") or {}).get("kubernetes.io/hostname")
            name = self.by_hostname.get(hostname, hostname)
        if not name:
            ref = endpoint.get("targetRef") or {}
            if ref.get("kind") == "Pod":
                name = self.pod_node.get((ref.get("namespace") or namespace, ref.get("name")))
        if not name:
            name = self.by_ip.get(str(ip))
        return name if name in self.names else None


def _json_of(path: Path, file: str, run: str) -> Any:
    """The JSON of a listing file; one line on what it is instead when it is not JSON."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise NetmodelError(f"not UTF-8 text; {run}", file=file) from None
    start = text.lstrip()
    if not start:
        raise NetmodelError(f"empty; {run}", file=file)
    if start[0] not in "{[":
        what = "YAML (-o yaml)" if re.match(r"(apiVersion|kind|items):", start) else \
            "kubectl's text output"
        raise NetmodelError(f"this is {what}; {run}", file=file)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetmodelError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file,
                            line=exc.lineno) from None


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


def _get(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _a(noun: Any) -> str:
    """'a Node', 'an EndpointSlice'."""
    noun = str(noun)
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"



def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
