"""`netmodel trace`: the hop-by-hop path of one traffic kind, with zero-load costs.

For one representative connection (the Service asked for, or the most popular one;
an endpoint on another node than the client or entry where the cluster has one, so
the longer path shows), list every hop of the set-up and of one request: its layer,
component, the node it runs on, what happens there, its cost with no queueing, and
the station it would wait in under load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from netmodel.cluster.topology import build_topology
from netmodel.cluster.addresses import cluster_ips, node_addresses
from netmodel.cluster.rules import iptables_nodeport_rules_walked, iptables_rules_walked
from netmodel.costs.model import WORK_STATIONS, CostModel, zero_load_seconds
from netmodel.costs.profile import Profile
from netmodel.errors import NetmodelError
from netmodel.paths import EXTERNAL_CLIENT, Hop, Placement, dns_queries, route
from netmodel.paths.reachability import load_balancer_provider, unreachable
from netmodel.scenario.schema import Scenario
from netmodel.sim.random import streams


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
    popular Service), or the reason it cannot work."""
    names = service_names(scenario)
    s = _service_index(names, service)
    reason = unreachable(scenario, kind)
    topo = build_topology(scenario, *(lambda r: (r["placement"], r["rule-order"]))(
        streams(scenario.run.seed, 0)))
    if reason is None and topo.endpoints(s) == 0:
        reason = f"Service {names[s]} has no ready endpoints: iptables REJECTs, others drop"
    if reason is None and kind in ("external-nodeport", "external-loadbalancer") and not topo.node_port[s]:
        reason = f"Service {names[s]} has no node port (type ClusterIP): not reachable from outside"
    if reason is not None:
        return Trace(kind, names[s], False, reason, "", ())
    costs = CostModel(profile, scenario)
    nodes = topo.nodes
    server = int(topo.endpoint_nodes(s)[0])
    other = (server + 1) % nodes
    rules = int(topo.rules_in_kube_services)
    local = bool(topo.local_policy[s])
    detail: dict[str, str] = {}
    lookup: dict[str, float] = {}
    mode = scenario.kube_proxy.mode
    where = {"server": server}
    if kind in ("pod-pod-same-node", "pod-pod-cross-node", "pod-clusterip"):
        client = server if kind == "pod-pod-same-node" else other
        where["client"] = client
        p = Placement(same_node=client == server)
        dns = scenario.dns
        if kind == "pod-clusterip" and dns.enabled:
            where["dns"] = (client + 2) % nodes if nodes > 2 else server
            p = replace(p, dns_queries=dns_queries(dns.name, dns.ndots, dns.host_search_domains),
                        dns_same_node=where["dns"] == client,
                        dns_upstream=dns.name == "external" and dns.cache_hit_ratio < 1)
            lookup["dns-rule-lookup"] = float(costs.rule_lookup_seconds((rules + 1) // 2, 0))
            detail["dns-rule-lookup"] = (f"{iptables_rules_walked((rules + 1) // 2, 0):,} rules walked "
                                         "(kube-dns taken mid-way in KUBE-SERVICES)"
                                         if mode == "iptables" else f"one {mode} lookup")
            if p.dns_upstream:
                detail["dns-upstream"] = f"happens for {1 - dns.cache_hit_ratio:.0%} of lookups"
        if kind == "pod-clusterip" and not topo.headless[s]:
            rank = int(topo.kube_services_rank[s])
            lookup["rule-lookup"] = float(costs.rule_lookup_seconds(rank, 0))
            detail["rule-lookup"] = (f"{iptables_rules_walked(rank, 0):,} rules walked: rank {rank:,} of {rules:,} in "
                                     "KUBE-SERVICES" if mode == "iptables" else f"one {mode} lookup")
        elif kind == "pod-clusterip":
            detail["headless"] = "headless Service: DNS answers with Pod IPs, no proxy rules"
    elif kind in ("external-nodeport", "external-loadbalancer", "external-ingress"):
        target = server
        if kind == "external-ingress":
            target = 0  # first Ingress controller replica's node
            where["proxy"] = target
        entry = target if local and kind != "external-ingress" else (target + 1) % nodes
        where["entry"] = entry
        np_rank = int(topo.nodeport_rank[s]) if kind != "external-ingress" else 1
        walked = iptables_nodeport_rules_walked(rules, np_rank, 0)
        lookup["nodeport-lookup"] = float(costs.nodeport_lookup_seconds(rules, np_rank, 0))
        detail["nodeport-lookup"] = (f"{walked:,} rules walked: all {rules:,} of KUBE-SERVICES, then "
                                     f"rank {np_rank:,} in KUBE-NODEPORTS" if mode == "iptables"
                                     else f"one {mode} lookup")
        p = Placement(entry_is_server=entry == server, entry_is_proxy=entry == where.get("proxy"),
                      proxy_is_server=where.get("proxy") == server,
                      snat=kind == "external-ingress" or not local)
    else:
        where["proxy"] = -1
        p = Placement()
    ext = scenario.external
    cloud_lb = load_balancer_provider(scenario) == "cloud" and (
        kind == "external-loadbalancer" or (kind == "external-ingress" and ext.ingress.service_type == "LoadBalancer"))
    r = route(kind, p, scenario.cluster.cni_datapath, tls=ext.ingress.tls, cloud_lb=cloud_lb)
    hops = []
    for phase, legs in (("connect", r.connect), ("request", r.request)):
        for leg in legs:
            encapsulated = False
            for hop in leg.hops:
                encapsulated = encapsulated or hop.component == "vxlan-encap"
                hops.append(_row(costs, phase, leg.payload, hop, encapsulated, where, lookup,
                                 detail, scenario))
                encapsulated = encapsulated and hop.station != "nic"
    addresses = node_addresses(scenario)
    placement = ", ".join(f"{role} on {_node_name(scenario, i)}"
                          + (f" ({addresses[i].internal_ip})" if i >= 0 else "")
                          for role, i in where.items())
    behind_lb = kind == "external-loadbalancer" or (
        kind == "external-ingress" and ext.ingress.service_type == "LoadBalancer")
    if behind_lb:
        placement += f"; the client calls the load balancer ({load_balancer_provider(scenario)}), " \
                     "which forwards to the entry node"
    elif "entry" in where:
        entry = addresses[where["entry"]]
        placement += (f"; the client reaches the entry node at its ExternalIP {entry.external_ip}"
                      if entry.external_ip is not None else
                      "; no ExternalIP (bare metal): the client must be routed to the node "
                      f"network to reach InternalIP {entry.internal_ip}")
    if "headless" in detail:
        placement += "; " + detail["headless"]
    cluster_ip = cluster_ips(scenario)[s]
    service = names[s] + (f" (ClusterIP {cluster_ip})" if cluster_ip is not None else " (headless)")
    return Trace(kind, service, True, "", placement, tuple(hops))


def _row(costs: CostModel, phase: str, payload: str, hop: Hop, encapsulated: bool, where: dict,
         lookup: dict, detail: dict, scenario: Scenario) -> TraceHop:
    size = {"empty": 0.0, "request": scenario.workload.request_size,
            "response": scenario.workload.response_size}[payload]
    if hop.station == "nic":
        cost = zero_load_seconds((costs.wire_step(hop, size, encapsulated),))
        action = (f"{hop.action} to {_where(scenario, hop.to, where)} ({size:g} B payload"
                  f"{', VXLAN' if encapsulated else ''})")
        station = "NIC tx / switch port"
    else:
        cost = costs.hop_seconds(hop, size) + lookup.get(hop.component, 0.0)
        action = hop.action + (f": {detail[hop.component]}" if hop.component in detail else "")
        if hop.component == "app":
            cost = scenario.workload.server.service_time
            action += " (mean app time)"
        station = {"softirq": "softirq cores", "delay": "-"}.get(
            hop.station, WORK_STATIONS.get(hop.component, hop.station))
    return TraceHop(phase, hop.layer, hop.component, _where(scenario, hop.at, where), action,
                    cost, station)


def _where(scenario: Scenario, role: str, where: dict) -> str:
    if role == EXTERNAL_CLIENT:
        return "outside"
    if role == "lb":
        return "cloud LB"
    return f"{role}@{_node_name(scenario, where.get(role))}"


def _node_name(scenario: Scenario, index: int | None) -> str:
    if index == -1:
        return "control-plane"
    if index is None:
        return "?"
    return scenario.inventory.nodes[index].name if scenario.inventory is not None else f"node-{index}"


def _service_index(names: list[str], service: str | None) -> int:
    if service is None:
        return 0
    for i, name in enumerate(names):
        if service in (name, name.split("/", 1)[1]):
            return i
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise NetmodelError(f"no Service {service!r} (Services: {shown})", field="--service")

