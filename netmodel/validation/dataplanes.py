"""The service data paths against published comparisons of iptables, IPVS and eBPF
(Cilium, Calico): the rollout question's own validation (issue 9).

Throughput comparisons are turned into CPU per request on the node that limits them (the
published tests ran their nodes CPU-bound), so a rate ratio is the inverse ratio of the
model's CPU per request there; latency comparisons run the engine. Published set-ups are
rebuilt as scenarios: their kernel, data path, Services and endpoints. Figures and their
provenance: reference-figures.md and docs/validation.md.
"""

from __future__ import annotations

from netmodel.costs.model import CostModel
from netmodel.costs.profile import Profile
from netmodel.paths import Placement, route
from netmodel.paths.dataplane import dataplane_of
from netmodel.scenario.schema import Scenario
from netmodel.validation.cases import Check, Context, case, relative, shape
from netmodel.validation.published import DAOCLOUD, netperf_round_trip, node_cpu_per_request, scenario

TKE = "TKE Cilium benchmark"
"""imroc.cc/tke 'Cilium 网络性能 Benchmark' (Cilium 1.19.4, kernel 6.6, 3 x 4-core nodes)."""
TKE_PERF = "TKE cilium connectivity perf"
CILIUM_18 = "Cilium 1.8 blog"
CILIUM_19 = "Cilium 1.9 blog"


# -- TKE: iptables vs Cilium over Service count, short connections ----------------------------------
TKE_SERVICES = (5_000, 10_000, 20_000, 30_000)
TKE_SHORT = {"iptables": (31_365, 22_237, 17_261, 12_916, 9_057),
             "cilium-native": (13_826, 12_774, 11_895, 11_815, 10_286),
             "cilium-overlay": (14_193, 13_122, 12_746, 13_080, 12_879)}
"""Short-connection req/s through a Service (fortio, 64 connections), at a small scale and
at TKE_SERVICES Services of 4 endpoints."""
TKE_SETUPS = {
    "iptables": ({"cni_datapath": "native"}, {"mode": "iptables"}),
    "cilium-native": ({"cni_datapath": "native"}, {"mode": "ebpf", "ebpf": {"host_routing": "legacy"}}),
    "cilium-overlay": ({"cni_datapath": "vxlan"},
                       {"mode": "ebpf", "ebpf": {"host_routing": "bpf", "masquerade": "bpf"}}),
}
"""VPC-CNI with kube-proxy; Cilium chained to VPC-CNI (legacy host routing); Cilium's own
VXLAN overlay with BPF host routing and masquerading."""


def tke_scenario(setup: str, services: int, keep_alive: int = 1) -> Scenario:
    cluster, kube_proxy = TKE_SETUPS[setup]
    return scenario(cluster={"nodes": 2_000, "pod_cidr": "10.0.0.0/13", "kernel": "6.6", **cluster},
                    kube_proxy=kube_proxy, services={"count": services, "endpoints_per_service": 4},
                    workload={"requests_per_connection": keep_alive, "mix": {"pod-clusterip": 1},
                              "request_size": "100B", "response_size": "200B"})


def tke_rate(profile: Profile, setup: str, services: int, keep_alive: int = 1) -> float:
    """Requests per CPU-second of the client's node (fortio's node limits the rate)."""
    sc = tke_scenario(setup, services, keep_alive)
    return 1.0 / node_cpu_per_request(profile, sc, "pod-clusterip", Placement(same_node=False), "client")


_TKE_LEAD_LACKS = ("iptables leads Cilium's overlay at a small scale by the overlay's VXLAN and BPF CT "
                   "costs only; TKE's Cilium spent 2.2x iptables' CPU per short connection, more than the "
                   "model has hops for (Cilium's own CNI benchmark shows CRR near its baseline: what TKE's "
                   "set-up adds is not known)")
_TKE_WALK_LACKS = ("the model's walk grows faster against a connection's other costs than TKE's did: "
                   "iptables_rule is 27 ns (2019 hardware) where TKE's 4-core nodes walked ~21 ns a rule "
                   "(4 x (1/9,057 - 1/31,365) s / 15,000 rules), and the small-scale lead it erodes starts "
                   "lower (above)")
TKE_KEPT_ALIVE = 100_000
"""Requests per kept-alive connection: fortio's 64 connections stay open all 60 s."""


@case("TKE short connections over Service count", "published")
def tke_crossover(ctx: Context) -> list[Check]:
    """Short connections through a Service of 4 endpoints: iptables' rate falls with Service
    count as its walk grows (to 29% at 30,000), Cilium's stays nearly flat; iptables leads 2.2x
    at a small scale and is overtaken near 20,000 Services (70-88% of Cilium at 30,000)."""
    p = ctx.default
    small = 100
    rate = {s: {n: tke_rate(p, s, n) for n in (small, *TKE_SERVICES)} for s in TKE_SETUPS}
    out = []
    for n, published in zip(TKE_SERVICES, TKE_SHORT["iptables"][1:]):
        out.append(relative(f"iptables short-connection rate at {n:,} Services / small scale", TKE,
                            published / TKE_SHORT["iptables"][0], rate["iptables"][n] / rate["iptables"][small],
                            0.25, lacks=_TKE_WALK_LACKS))
    overlay = rate["cilium-overlay"]
    out.append(relative("Cilium overlay rate at 30,000 Services / small scale", TKE,
                        TKE_SHORT["cilium-overlay"][-1] / TKE_SHORT["cilium-overlay"][0],
                        overlay[30_000] / overlay[small], 0.10,
                        lacks="an eBPF Service lookup is flat in the model: TKE's rate fell 9% as its LB "
                              "maps grew to 180,000 entries (cache misses, not modelled)"))
    out.append(relative("iptables / Cilium overlay rate, small scale", TKE,
                        TKE_SHORT["iptables"][0] / TKE_SHORT["cilium-overlay"][0],
                        rate["iptables"][small] / overlay[small], 0.25, lacks=_TKE_LEAD_LACKS))
    out.append(relative("iptables / Cilium overlay rate, 30,000 Services", TKE,
                        TKE_SHORT["iptables"][-1] / TKE_SHORT["cilium-overlay"][-1],
                        rate["iptables"][30_000] / overlay[30_000], 0.25, lacks=_TKE_WALK_LACKS))
    cross = _crossover(rate["iptables"], overlay)
    out.append(shape("Service count where Cilium overlay overtakes iptables", TKE, "10,000 to 30,000",
                     "below 100" if cross is None else f"{cross:,.0f}",
                     cross is not None and 10_000 <= cross <= 30_000, "inside the range",
                     lacks=f"{_TKE_LEAD_LACKS}; {_TKE_WALK_LACKS}",
                     value=float("nan") if cross is None else cross))
    kept = (tke_rate(p, "iptables", 30_000, keep_alive=TKE_KEPT_ALIVE)
            / tke_rate(p, "iptables", small, keep_alive=TKE_KEPT_ALIVE))
    out.append(shape("iptables keep-alive rate at 30,000 Services / small scale", TKE, "-0.7% (within 5%)",
                     f"{kept - 1:+.1%}", abs(kept - 1) <= 0.05, "±5%",
                     lacks="the walk is charged to kept-alive requests too", value=kept))
    return out


def _crossover(iptables: dict[int, float], ebpf: dict[int, float]) -> float | None:
    """The Service count where eBPF's rate first exceeds iptables' (linear between the
    counts), None if it does from the smallest on."""
    counts = sorted(iptables)
    lead = [iptables[n] - ebpf[n] for n in counts]
    if lead[0] <= 0:
        return None
    for (n0, l0), (n1, l1) in zip(zip(counts, lead), zip(counts[1:], lead[1:])):
        if l1 <= 0:
            return n0 + (n1 - n0) * l0 / (l0 - l1)
    return float("inf")


# -- eBPF host routing against legacy host routing ----------------------------------------------------
def _legacy_over_bpf(profile: Profile, nodes: int, datapath: str, kernel: str) -> float:
    """TCP_RR round trip between Pods under Cilium's legacy host routing over the same under
    BPF host routing."""
    rr = {routing: netperf_round_trip(profile, keep_alive=True, datapath=datapath, nodes=nodes, kernel=kernel,
                                      kube_proxy={"mode": "ebpf", "ebpf": {"host_routing": routing,
                                                                           "masquerade": "bpf"}})
          for routing in ("legacy", "bpf")}
    return rr["legacy"] / rr["bpf"]


@case("TKE eBPF host routing, same node", "published")
def tke_host_routing(ctx: Context) -> list[Check]:
    """cilium connectivity perf on one TKE cluster: TCP_RR between Pods on one node took 46.81
    us with legacy host routing and 39.47 us with BPF host routing (host-to-host 41.19 and
    41.86 us: the environments match within 2%). 5%."""
    return [relative("TCP_RR Pods on one node, legacy / BPF host routing", TKE_PERF, 46.81 / 39.47,
                     _legacy_over_bpf(ctx.default, 1, "vxlan", "6.6"), 0.05,
                     lacks="legacy host routing's netfilter hooks, conntrack and veth backlog cost more "
                           "there than the profile's per-packet costs (a 2012 core, x2 of a 2018 one: "
                           "assumed)")]


@case("Cilium 1.9: eBPF host routing, Pod to remote Pod", "published")
def cilium_19_host_routing(ctx: Context) -> list[Check]:
    """Cilium 1.9 blog (kernel 5.10, direct routing): 'the TCP request/response transaction
    performance improved by almost 3x' with BPF host routing; one connection, so the rate is
    the inverse of the round trip. 30%."""
    return [relative("TCP_RR Pod to remote Pod, legacy / BPF host routing", CILIUM_19, 3.0,
                     _legacy_over_bpf(ctx.default, 2, "native", "5.10"), 0.30,
                     lacks="the blog's legacy path waits in the veth backlog twice per packet (a "
                           "rescheduling point each: 122 -> 44 us round trip in the redirect_peer "
                           "commit); the model charges veth and backlog as CPU, with no scheduling "
                           "delay of their own")]


# -- NodePort forwarding: kube-proxy, tc, XDP ---------------------------------------------------------
def _forwarding_cpu(profile: Profile, kube_proxy: dict) -> float:
    """CPU per request packet of a NodePort node forwarding it to a backend on another node."""
    sc = scenario(cluster={"nodes": 3, "cni_datapath": "native", "kernel": "5.7"}, kube_proxy=kube_proxy,
                  services={"type": "NodePort", "count": 1}, workload={"mix": {"external-nodeport": 1}})
    model = CostModel(profile, sc)
    _, request = model.route_plans(route("external-nodeport", Placement(snat=True), dataplane_of(sc)))
    first = next(i for i, s in enumerate(request) if s.kind == "cpu" and s.at == "entry")
    return request[first].seconds


_NODEPORT = {"kube-proxy iptables": {"mode": "iptables"}, "kube-proxy IPVS": {"mode": "ipvs"},
             "Cilium tc": {"mode": "ebpf", "ebpf": {"host_routing": "legacy"}},
             "Cilium XDP": {"mode": "ebpf", "ebpf": {"host_routing": "legacy", "acceleration": "native"}}}


@case("Cilium 1.8: NodePort forwarding rate", "published")
def cilium_18_nodeport(ctx: Context) -> list[Check]:
    """Cilium 1.8 blog (kernel 5.7, one Service, remote backend): kube-proxy forwarded ~2.1M
    requests/s, IPVS 'a slightly higher per-packet cost', Cilium's tc path ~3.6M, XDP all 10M
    the generator sent (a lower bound). Rates as inverse CPU per forwarded packet."""
    cpu = {name: _forwarding_cpu(ctx.default, kp) for name, kp in _NODEPORT.items()}
    iptables = cpu["kube-proxy iptables"]
    xdp = iptables / cpu["Cilium XDP"]
    return [
        relative("NodePort forwarding, Cilium tc / kube-proxy iptables", CILIUM_18, 3.6 / 2.1,
                 iptables / cpu["Cilium tc"], 0.20,
                 lacks="tc's per-packet work is dearer, or the stack's cheaper, than the profile says"),
        shape("NodePort forwarding, Cilium XDP / kube-proxy iptables", CILIUM_18, ">= 10 / 2.1 = 4.8",
              f"{xdp:.3g}", xdp >= 10 / 2.1, "a lower bound",
              lacks="XDP's per-packet cost is too close to the stack's", value=xdp),
        shape("NodePort forwarding, kube-proxy IPVS / iptables", CILIUM_18, "below 1 ('slightly higher cost')",
              f"{iptables / cpu['kube-proxy IPVS']:.3g}", cpu["kube-proxy IPVS"] > iptables, "strict",
              lacks="IPVS' per-packet translation is missing", value=iptables / cpu["kube-proxy IPVS"]),
    ]


# -- DaoCloud: cilium (vxlan) against calico (vxlan) --------------------------------------------------
_CALICO_LACKS = ("one VXLAN cost for every CNI: calico's VXLAN ran 6x slower than cilium's for one stream "
                 "in the same report (1.37 vs 8.30 Gb/s), which no per-packet cost of the model explains "
                 "(a missing offload on calico's vxlan device is likely; not modelled)")


def _daocloud_rr(profile: Profile, kube_proxy: dict, nodes: int) -> float:
    return netperf_round_trip(profile, keep_alive=True, datapath="vxlan", nodes=nodes, kube_proxy=kube_proxy)


@case("DaoCloud cilium against calico", "published")
def daocloud_cilium_calico(ctx: Context) -> list[Check]:
    """DaoCloud CNI report, VXLAN both: TCP_RR Pod to Pod on two nodes 201.27 us (cilium)
    against 275.22 us (calico with kube-proxy), on one node 65.62 against 104.82 us. The
    ratios, 15%."""
    cilium, calico = {"mode": "ebpf"}, {"mode": "iptables"}
    out = []
    for nodes, label, ref in ((2, "two nodes", 275.22 / 201.27), (1, "one node", 104.82 / 65.62)):
        model = _daocloud_rr(ctx.default, calico, nodes) / _daocloud_rr(ctx.default, cilium, nodes)
        out.append(relative(f"TCP_RR Pod to Pod, {label}: calico / cilium", DAOCLOUD, ref, model, 0.15,
                            lacks=_CALICO_LACKS))
    return out
