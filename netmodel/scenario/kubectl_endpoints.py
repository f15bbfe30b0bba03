"""The ready endpoints of imported Services, from the best source a dump has: EndpointSlices
(discovery.k8s.io v1 or v1beta1), else core/v1 Endpoints, else the ready Pods that each
Service's selector matches (a `kubectl cluster-info dump` has Pods but neither endpoint kind).
Whatever is left out is counted by reason.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address
from typing import Any, Callable

from netmodel.scenario.kubectl_listings import Item

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# Why an endpoint was left out, in the order the header lists them.
NOT_READY = "not-ready endpoint"
TERMINATING = "terminating endpoint"
IPV6 = "IPv6 address"
IPV6_SERVICE = "IPv6-only Service"
FQDN = "FQDN endpoint"
NO_NODE = "endpoint on no listed node"
NO_SERVICE = "endpoint listing of no listed Service"
NO_IP = "Pod without an IP"
DUPLICATE = "duplicate endpoint"
WHY = {
    NOT_READY: ("s", "only ready endpoints receive traffic"),
    TERMINATING: ("s", "a Pod being deleted takes no new connections"),
    IPV6: ("es", "the model is IPv4 for now"),
    IPV6_SERVICE: ("s", "no IPv4 ClusterIP; their endpoints are IPv6"),
    FQDN: ("s", "addressType FQDN: not Pod IPs"),
    NO_NODE: ("s", "no nodeName, and no Pod or node found for the address"),
    NO_SERVICE: ("s", "an EndpointSlice or Endpoints whose Service is not in the Services listing"),
    NO_IP: ("s", "not yet given an address"),
    DUPLICATE: ("s", "the same address twice for one Service, kept once"),
}

Key = tuple[str, str]
"""(namespace, name)."""


class Placer:
    """Finds the node an endpoint runs on."""

    def __init__(self, nodes: list[dict], pods: list[Item]):
        self.names = {n["name"] for n in nodes}
        self.by_hostname = {n.get("hostname", n["name"]): n["name"] for n in nodes}
        self.by_ip = {n["internal_ip"]: n["name"] for n in nodes if "internal_ip" in n}
        self.pod_node = {(p.text("metadata", "namespace") or "default", p.text("metadata", "name")):
                         p.text("spec", "nodeName") for p in pods}

    def node_of(self, item: Item, sub: str, endpoint: dict, namespace: str,
                ip: IPv4Address) -> str | None:
        """The name of the listed node the endpoint at `sub` of `item` is on, or None."""
        name = _text(item, f"{sub}.nodeName", endpoint.get("nodeName"))
        if not name:
            topology = _mapping(item, f"{sub}.topology", endpoint.get("topology"))
            hostname = topology.get("kubernetes.io/hostname")
            name = self.by_hostname.get(hostname, hostname)
        if not name:
            ref = _mapping(item, f"{sub}.targetRef", endpoint.get("targetRef"))
            if ref.get("kind") == "Pod":
                name = self.pod_node.get((ref.get("namespace") or namespace, ref.get("name")))
        if not name:
            name = self.by_ip.get(str(ip))
        return name if name in self.names else None


class Collector:
    """Adds ready endpoints to the Services (`services`: key -> inventory Service), each
    address once, counting what it leaves out with `skip(reason, n)`."""

    def __init__(self, services: dict[Key, dict], ipv6_services: set[Key], placer: Placer,
                 skip: Callable[..., None]):
        self.services, self.ipv6_services = services, ipv6_services
        self.placer, self.skip = placer, skip
        self.seen: dict[Key, set[str]] = defaultdict(set)

    def add(self, key: Key, ip: str, node: str | None) -> None:
        if node is None:
            self.skip(NO_NODE)
        elif ip in self.seen[key]:
            self.skip(DUPLICATE)
        else:
            self.seen[key].add(ip)
            self.services[key]["endpoints"].append({"ip": ip, "node": node})

    def owner(self, key: Key, count: int, family: str = "IPv4") -> bool:
        """Whether endpoints of `key` are to be read; counts them when not."""
        if key not in self.services:
            self.skip(IPV6 if key in self.ipv6_services else NO_SERVICE, count or 1)
            return False
        if family != "IPv4":
            self.skip(IPV6 if family == "IPv6" else FQDN, count)
            return False
        return True

    # --- EndpointSlices ---------------------------------------------------------------

    def endpoint_slice(self, item: Item) -> None:
        namespace = item.text("metadata", "namespace") or "default"
        owner = item.text("metadata", "labels", SERVICE_NAME_LABEL)
        endpoints = item.items("endpoints")
        family = item.text("addressType") or "IPv4"
        if not self.owner((namespace, owner), len(endpoints), family):
            return
        for sub, endpoint in endpoints:
            conditions = _mapping(item, f"{sub}.conditions", endpoint.get("conditions"))
            if conditions.get("terminating") is True:
                self.skip(TERMINATING)
                continue
            if conditions.get("ready") is False:  # unset means ready (API docs)
                self.skip(NOT_READY)
                continue
            addresses = endpoint.get("addresses")
            if not isinstance(addresses, list) or not addresses:
                raise item.error(f"{sub}.addresses", f"expected a list of addresses, got "
                                                      f"{addresses!r}"[:120])
            ip = item.ip(f"{sub}.addresses[0]", addresses[0])
            if ip is None:
                self.skip(IPV6)
                continue
            self.add((namespace, owner), str(ip), self.placer.node_of(item, sub, endpoint,
                                                                      namespace, ip))

    # --- core/v1 Endpoints ------------------------------------------------------------

    def endpoints(self, item: Item) -> None:
        namespace = item.text("metadata", "namespace") or "default"
        key = (namespace, item.text("metadata", "name", required=True))
        subsets = item.items("subsets")
        ready = [(f"{s}.addresses[{k}]", a) for s, subset in subsets
                 for k, a in enumerate(_list(item, f"{s}.addresses", subset.get("addresses")))]
        not_ready = sum(len(_list(item, f"{s}.notReadyAddresses", subset.get("notReadyAddresses")))
                        for s, subset in subsets)
        if not self.owner(key, len(ready) + not_ready):
            return
        self.skip(NOT_READY, not_ready)
        for where, address in ready:
            if not isinstance(address, dict):
                raise item.error(where, f"expected a mapping, got {address!r}"[:120])
            ip = item.ip(f"{where}.ip", address.get("ip"))
            if ip is None:
                self.skip(IPV6)
                continue
            self.add(key, str(ip), self.placer.node_of(item, where, address, namespace, ip))

    # --- ready Pods matched by the selectors ------------------------------------------

    def pods(self, pods: list[Item]) -> None:
        """Endpoints of every Service with a selector: the Pods of its namespace whose labels
        hold the selector (ready, not being deleted, with an IP)."""
        index: dict[tuple[str, str, str], list[Item]] = defaultdict(list)
        for pod in pods:
            namespace = pod.text("metadata", "namespace") or "default"
            for label, value in pod.mapping("metadata", "labels").items():
                index[(namespace, label, value)].append(pod)
        for (namespace, _), service in self.services.items():
            selector = service["selector"]
            if not selector or service["type"] == "ExternalName":
                continue
            candidates = min((index.get((namespace, k, v), []) for k, v in selector.items()), key=len)
            for pod in candidates:
                labels = pod.mapping("metadata", "labels")
                if all(labels.get(k) == v for k, v in selector.items()):
                    self._pod(pod, (namespace, service["name"]))

    def _pod(self, pod: Item, key: Key) -> None:
        if pod.get("metadata", "deletionTimestamp") is not None:
            self.skip(TERMINATING)
            return
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for _, c in pod.items("status", "conditions"))
        if not ready or pod.text("status", "phase") != "Running":
            self.skip(NOT_READY)
            return
        ips = [ip for sub, entry in pod.items("status", "podIPs")
               if (ip := pod.ip(f"{sub}.ip", entry.get("ip"))) is not None]
        given = pod.text("status", "podIP")
        if not ips and given:
            ip = pod.ip(".status.podIP", given)
            ips = [ip] if ip is not None else []
            if ip is None:
                self.skip(IPV6)
                return
        if not ips:
            self.skip(NO_IP)
            return
        node = pod.text("spec", "nodeName")
        self.add(key, str(ips[0]), node if node in self.placer.names else None)


def _text(item: Item, sub: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise item.error(sub, f"expected a string, got {value!r}"[:120])
    return value


def _mapping(item: Item, sub: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) or v is None or isinstance(v, bool)
                                              for v in value.values()):
        raise item.error(sub, f"expected a mapping of strings, got {value!r}"[:120])
    return value


def _list(item: Item, sub: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise item.error(sub, f"expected a list, got {value!r}"[:120])
    return value
