"""`netmodel trace`: the hop-by-hop path of one connection, with zero-load costs.

`trace` picks a representative connection of a traffic kind (the Service asked for, or
the most popular one the kind can call; its first endpoint; the client, entry or DNS Pod
on another node where the cluster has one, so the longer path shows) and builds it with
the engines' own `Placer.connect`; `trace_connection` lists every hop of its set-up and of
one request: layer, component, the node it runs on, what happens there, its cost with no
queueing (the rule walks and the mean app time included), and the station it waits in
under load. The costs are the steps the engines walk, so a lone request takes exactly
the trace's total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from netmodel.cluster.addresses import cluster_ips, node_addresses
from netmodel.cluster.topology import Topology, build_topology
from netmodel.connections.placement import CONTROL_PLANE, Connection, Placer, route_of
from netmodel.connections.workload import callable_by
from netmodel.costs.model import WORK_STATIONS, CostModel, Step, zero_load_seconds
from netmodel.costs.profile import Profile
from netmodel.errors import NetmodelError
from netmodel.paths import EXTERNAL_CLIENT, Hop, Leg
from netmodel.paths.reachability import load_balancer_provider, unreachable
from netmodel.scenario.schema import Scenario
from netmodel.streams import streams

_ROLE_ORDER = ("client", "dns", "entry", "proxy", "server")
"""Roles in the order a request meets them, for the placement line."""


@dataclass(frozen=True)
class TraceHop:
    """One printed hop: `cost_s` in seconds at zero load; `station` is where it queues."""

    phase: str
    layer: str
    component: str
    where: str
    action: str
    cost_s: float
    station: str


@dataclass(frozen=True)
class Trace:
    """A traced path, or why there is none (`reachable` False, `reason` set)."""

    traffic: str
    service: str
    reachable: bool
    reason: str
    placement: str
    hops: tuple[TraceHop, ...]

    def totals(self) -> dict[str, float]:
        """Zero-load seconds per phase ('connect', 'request')."""
        out: dict[str, float] = {}
        for hop in self.hops:
            out[hop.phase] = out.get(hop.phase, 0.0) + hop.cost_s
        return out

    def as_dict(self) -> dict:
        """Plain data for `--format json`."""
        return {**{k: v for k, v in asdict(self).items() if k != "hops"},
                "totals_s": self.totals(), "hops": [asdict(h) for h in self.hops]}


def service_names(scenario: Scenario) -> list[str]:
    """'namespace/name' of every Service (generated ones are default/svc-<i>)."""
    if scenario.inventory is not None:
        return [f"{s.namespace}/{s.name}" for s in scenario.inventory.services]
    return [f"default/svc-{i}" for i in range(scenario.services.count)]


def trace(scenario: Scenario, profile: Profile, kind: str, service: str | None = None) -> Trace:
    """The path of `kind` to `service` ('name' or 'namespace/name'; default: the most
    popular Service the kind can call), or the reason it cannot work."""
    names = service_names(scenario)
    asked = _service_index(names, service) if service is not None else None
    reason = unreachable(scenario, kind)
    if reason is not None:
        return Trace(kind, names[asked or 0], False, reason, "", ())
    rng = streams(scenario.run.seed, 0)
    topology = build_topology(scenario, rng)
    s = asked if asked is not None else _callable_service(topology, kind)
    reason = _why_not(topology, kind, s, names[s])
    if reason is not None:
        return Trace(kind, names[s], False, reason, "", ())
    placer = Placer(scenario, CostModel(profile, scenario), topology)
    return trace_connection(scenario, profile, _representative(scenario, placer, kind, s))


def trace_connection(scenario: Scenario, profile: Profile, conn: Connection) -> Trace:
    """The hops of connection `conn` (as `Placer.connect` built it), costed at zero load."""
    costs = CostModel(profile, scenario)
    r = route_of(scenario, conn.kind, conn.placement)
    variable = {**conn.lookup, "app": scenario.workload.server.mean_service_time}
    details = {w.component: w.describe(scenario.kube_proxy.mode) for w in conn.walks}
    hops = tuple(_row(scenario, costs, phase, leg, hop, step, conn.nodes, variable, details, side)
                 for phase, legs in (("connect", r.connect), ("request", r.request))
                 for (leg, hop, step), side in _receiving_sides(list(costs.priced(legs))))
    cluster_ip = cluster_ips(scenario)[conn.service]
    name = service_names(scenario)[conn.service]
    service = name + (f" (ClusterIP {cluster_ip})" if cluster_ip is not None else " (headless)")
    if conn.kind.startswith("pod-pod"):  # called by its Pod IP: no Service, no proxy rules
        service = _pod_text(scenario, conn, name)
    return Trace(conn.kind, service, True, "", _placement_text(scenario, conn), hops)


def _pod_text(scenario: Scenario, conn: Connection, service: str) -> str:
    """'Pod 10.244.1.12 on k8s-node01 (endpoint 1 of default/echo-a), called by its Pod IP'."""
    pod = f"endpoint {conn.position} of {service}"
    if scenario.inventory is not None:
        pod = f"{scenario.inventory.services[conn.service].endpoints[conn.position].ip} ({pod})"
    return (f"Pod {pod} on {_node_name(scenario, conn.nodes['server'])}, from a Pod on "
            f"{_node_name(scenario, conn.nodes['client'])}; called by its Pod IP: no Service rules")


_RECEIVE = ("tcp-stack-rx", "wakeup")
"""Hops of a message entering the receiving Pod (with the veth hop that delivers it)."""


def _receiving_sides(priced: list) -> list:
    """Each priced hop with the role it happens for: a hop delivering a message into a Pod
    is the receiving side's (the role of the next hop that is not a delivery, or the
    phase's first role at its end), even when sender and receiver share a node and the
    route charges both to the sender's role there."""
    def delivers(hop: Hop) -> bool:
        return hop.component in _RECEIVE or (hop.component == "veth" and hop.action.startswith(("enter", "into")))

    sides = []
    for i, (_, hop, _) in enumerate(priced):
        later = (h.at for _, h, _ in priced[i:] if not delivers(h))
        sides.append(next(later, priced[0][1].at) if delivers(hop) else hop.at)
    return list(zip(priced, sides))


def _callable_service(topology: Topology, kind: str) -> int:
    """The most popular Service `kind` can call that has ready endpoints (the most popular
    it can call when none has). Popularity falls with the Service's index (Zipf) or is
    flat, so that is the first such Service."""
    callable_ = np.diff(np.concatenate([[0.0], topology.popularity_cdf])) > 0
    among = callable_by(topology, kind)
    if among is not None:
        callable_ &= among
    for candidates in (callable_ & (np.diff(topology.endpoint_offsets) > 0), callable_):
        if candidates.any():
            return int(np.argmax(candidates))
    return 0


def _why_not(topology: Topology, kind: str, s: int, name: str) -> str | None:
    if topology.endpoints(s) == 0:
        return f"Service {name} has no ready endpoints: iptables REJECTs, others drop"
    if kind in ("external-nodeport", "external-loadbalancer") and not topology.node_port[s]:
        return f"Service {name} has no node port (type ClusterIP): not reachable from outside"
    return None


def _representative(scenario: Scenario, placer: Placer, kind: str, s: int) -> Connection:
    """A connection of `kind` to Service `s`: its first endpoint, the client (entry, DNS Pod)
    on another node than the server where there is one; proxy replica 0."""
    topo = placer.topology
    endpoint = int(topo.endpoint_offsets[s])
    server = placer.node_of(endpoint)
    other = (server + 1) % topo.nodes
    dns = scenario.dns
    if kind in ("pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"):
        client = server if kind == "pod-pod-same-node" else other
        nodes: dict[str, int | None] = {"client": client, "server": server}
        if kind == "pod-clusterip" and dns.enabled:
            nodes["dns"] = (client + 2) % topo.nodes if topo.nodes > 2 else server
        upstream = dns.name == "external" and dns.cache_hit_ratio < 1
        return placer.connect(kind, s, nodes, endpoint, 0, 0, upstream and "dns" in nodes)
    if kind == "external-ingress":
        proxy = 0  # the first Ingress controller replica's node
        nodes = {EXTERNAL_CLIENT: None, "entry": (proxy + 1) % topo.nodes, "proxy": proxy, "server": server}
    elif kind.startswith("external-"):
        entry = server if topo.local_policy[s] else other
        nodes = {EXTERNAL_CLIENT: None, "entry": entry, "server": server}
    else:
        nodes = {EXTERNAL_CLIENT: None, "proxy": CONTROL_PLANE, "server": server}
    return placer.connect(kind, s, nodes, endpoint, 0)


def _row(scenario: Scenario, costs: CostModel, phase: str, leg: Leg, hop: Hop, step: Step,
         nodes: dict, variable: dict, details: dict, side: str) -> TraceHop:
    cost = zero_load_seconds((step,), variable)
    if hop.station == "nic":
        vxlan = ", VXLAN" if step.vxlan else ""
        action = f"{hop.action} to {_where(scenario, hop.to, nodes)} ({costs.payload(leg):g} B payload{vxlan})"
        station = "NIC tx / switch port"
    else:
        action = hop.action + (f": {details[hop.component]}" if hop.component in details else "")
        if hop.component == "app":
            action += " (mean app time)"
        if hop.component == "dns-upstream":
            action += f": happens for {1 - scenario.dns.cache_hit_ratio:.0%} of lookups"
        station = {"softirq": "softirq cores", "delay": "-"}.get(
            hop.station, WORK_STATIONS.get(hop.component, hop.station))
    return TraceHop(phase, hop.layer, hop.component, _where(scenario, side, nodes), action,
                    cost, station)


def _placement_text(scenario: Scenario, conn: Connection) -> str:
    """Where each role runs, and how an outside client gets in."""
    addresses = node_addresses(scenario)
    roles = [(role, conn.nodes[role]) for role in _ROLE_ORDER if conn.nodes.get(role) is not None]
    text = ", ".join(f"{role} on {_node_name(scenario, i)}"
                     + (f" ({addresses[i].internal_ip})" if i >= 0 else "") for role, i in roles)
    ext = scenario.external
    if conn.kind == "external-loadbalancer" or (
            conn.kind == "external-ingress" and ext.ingress.service_type == "LoadBalancer"):
        text += (f"; the client calls the load balancer ({load_balancer_provider(scenario)}), "
                 "which forwards to the entry node")
    elif "entry" in conn.nodes:
        entry = addresses[conn.nodes["entry"]]
        text += (f"; the client reaches the entry node at its ExternalIP {entry.external_ip}"
                 if entry.external_ip is not None else
                 "; no ExternalIP (bare metal): the client must be routed to the node "
                 f"network to reach InternalIP {entry.internal_ip}")
    if conn.kind == "pod-clusterip" and "rule-lookup" not in conn.lookup:
        text += "; headless Service: DNS answers with Pod IPs, no proxy rules"
    return text


def _where(scenario: Scenario, role: str, nodes: dict) -> str:
    if role == EXTERNAL_CLIENT:
        return "outside"
    if role == "lb":
        return "cloud LB"
    return f"{role}@{_node_name(scenario, nodes.get(role))}"


def _node_name(scenario: Scenario, index: int | None) -> str:
    if index == CONTROL_PLANE:
        return "control-plane"
    if index is None:
        return "?"
    return scenario.inventory.nodes[index].name if scenario.inventory is not None else f"node-{index}"


def _service_index(names: list[str], service: str) -> int:
    for i, name in enumerate(names):
        if service in (name, name.split("/", 1)[1]):
            return i
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise NetmodelError(f"no Service {service!r} (Services: {shown})", field="--service")
