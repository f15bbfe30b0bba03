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

An endpoint's node is its `nodeName`; failing that the `kubernetes.io/hostname` of
its (v1beta1) `topology`, the node of the Pod its `targetRef` names in `pods.json`, or
the node whose InternalIP it is (the `kubernetes` Service's API server, host-network
Pods).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from netmodel.errors import NetmodelError
from netmodel.scenario.loader import describe_validation_error, dotted
from netmodel.scenario.schema import Scenario


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

    @property
    def nodes(self) -> int:
        return len(self.scenario["inventory"]["nodes"])

    @property
    def services(self) -> int:
        return len(self.scenario["inventory"]["services"])

    @property
    def endpoints(self) -> int:
        return sum(len(s["endpoints"]) for s in self.scenario["inventory"]["services"])

    def summary(self) -> str:
        """'3 nodes, 10 Services, 11 endpoints'."""
        return (f"{_count(self.nodes, 'node')}, {_count(self.services, 'Service')}, "
                f"{_count(self.endpoints, 'endpoint')}")

    def skipped_text(self) -> str:
        """'1 not-ready endpoint (only ready endpoints receive traffic); ...' or 'nothing'."""
        return "; ".join(f"{_count(n, what, _WHY[what][0])} ({_WHY[what][1]})"
                         for what, n in self.skipped.items()) or "nothing"

    def text(self) -> str:
        """The scenario YAML, headed by a comment saying where it came from and what was
        left out."""
        header = (f"# generated by netmodel import kubectl from {self.source}; {self.summary()}\n"
                  f"# skipped: {self.skipped_text()}\n")
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

    nodes = [reader.node(i, item) for i, item in enumerate(node_items)]
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
    provider = "cloud" if any("external_ip" in n for n in nodes) else "bare-metal"
    scenario = {
        "name": re.sub(r"[^A-Za-z0-9_.-]+", "-", folder_name).strip("_.-") or "imported",
        "description": f"the cluster listed by kubectl in {folder_name}/",
        "cluster": {"provider": provider},  # cluster.nodes: the inventory's
        "workload": {"mix": {"pod-clusterip": 1}},
        "run": {"requests": REQUESTS},
        "inventory": {"nodes": nodes, "services": services},
    }
    _check(scenario, str(directory))
    skipped = {what: reader.skipped[what] for what in _WHY if reader.skipped.get(what)}
    return KubectlImport(str(directory), scenario, skipped)


def _check(scenario: dict[str, Any], source: str) -> None:
    """Raise NetmodelError naming `source` if `scenario` is not a valid scenario."""
    try:
        Scenario.model_validate(scenario)
    except ValidationError as exc:
        at, message = describe_validation_error(exc, scenario)
        raise NetmodelError(f"the imported cluster is not a valid scenario: "
                            f"{dotted(at) + ': ' if at else ''}{message}", file=source) from None


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
        try:
            text = (folder / present[0]).read_text(encoding="utf-8-sig")
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
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NetmodelError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file,
                                line=exc.lineno) from None
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

    def node(self, i: int, item: dict) -> dict:
        """An inventory node: name, internal_ip, external_ip, hostname, pod_cidr."""
        at = f"items[{i}]"
        found: dict[str, str] = {}  # the first IPv4 address of each kind
        for j, entry in enumerate(_get(item, "status", "addresses") or []):
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
        spec = _get(item, "spec") or {}
        cidrs = spec.get("podCIDRs") or [c for c in [spec.get("podCIDR")] if c]
        for j, cidr in enumerate(cidrs):
            if (net := self.network(NODES, f"{at}.spec.podCIDRs[{j}]", cidr)) is not None:
                found.setdefault("pod_cidr", str(net))
        node = {"name": self.text(NODES, f"{at}.metadata.name", _get(item, "metadata", "name"),
                                  required=True)}
        node.update((key, found[key]) for key in ("internal_ip", "external_ip", "hostname",
                                                  "pod_cidr") if key in found)
        return node

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


def _count(n: int, thing: str, plural: str = "s") -> str:
    return f"{n:,} {thing}{'' if n == 1 else plural}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
