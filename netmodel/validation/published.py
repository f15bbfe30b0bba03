"""The model against published figures (reference-figures.md).

"calibration" rows check that the default profile still reproduces the figures it was
derived from; the others are figures it was not derived from. Absolute figures are of the
publishers' machines, so they run with the default profile, which describes them; shapes
(which mode grows, which is faster) run with the profile under test. docs/validation.md
tabulates the same rows with their numbers.
"""

from __future__ import annotations

import numpy as np

from netmodel.cluster.rules import ipvs_operations, nftables_elements_changed
from netmodel.controlplane.syncloop import ControlPlaneConfig, run_controlplane
from netmodel.costs.model import CostModel
from netmodel.costs.profile import Profile
from netmodel.costs.sync import (
    IPTABLES_ADD_ONE_RULE,
    IPTABLES_ADD_ONE_RULE_HOLDOUT,
    IPVS_ADD_ONE_RULE,
    iptables_add_one_rule_residuals,
    ipvs_sync_seconds,
    nftables_sync_seconds,
)
from netmodel.engines import simulate
from netmodel.paths import Placement, route
from netmodel.paths.dataplane import dataplane_of
from netmodel.runner.point import run_point
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Scenario
from netmodel.units import format_count
from netmodel.validation.cases import Check, Context, absolute, case, relative, shape

DAOCLOUD = "DaoCloud CNI report"
TIGERA = "Tigera 2019"
BLOG_2019 = "2019 iptables/IPVS blog"
"""The blog 'k8s集群 iptables vs ipvs性能测试' (2019): reference-figures.md."""
NFT_BLOG = "kube-proxy nftables blog"


def scenario(**sections) -> Scenario:
    """A small valid scenario with `sections` merged over netmodel's defaults."""
    doc = {"name": "validation", "run": {"requests": 2000, "seed": 3}}
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_scenario(doc)


def node_cpu_per_request(profile: Profile, sc: Scenario, kind: str, placement: Placement, at: str) -> float:
    """CPU seconds one request costs the node of role `at` (its share of its connection's
    set-up and, on the client's node, the mean Service lookup over uniformly drawn Services
    and endpoints), from the model's route plans."""
    model = CostModel(profile, sc)
    connect, request = model.route_plans(route(kind, placement, dataplane_of(sc)))
    per_connection = _cpu(connect, at) + (_mean_lookup(model, sc) if at == "client" else 0.0)
    return _cpu(request, at) + per_connection / sc.workload.requests_per_connection


def _cpu(steps, at: str) -> float:
    return sum(s.seconds for s in steps if s.kind == "cpu" and s.at == at)


def _mean_lookup(model: CostModel, sc: Scenario) -> float:
    services, endpoints = sc.services.count, sc.services.endpoints_per_service
    ranks = np.repeat(np.arange(1, services + 1), endpoints)
    return float(np.mean(model.rule_lookup_seconds(ranks, np.tile(np.arange(endpoints), services))))


# -- DaoCloud: netperf between two nodes ---------------------------------------------------------
def _pods(datapath: str, nodes: int, message: str, keep_alive: int, rate: float, requests: int,
          kernel: str = "6.1", kube_proxy: dict | None = None) -> Scenario:
    """Pods talking over one Service of one endpoint: on one node or two (10G), no app time,
    `message`-sized requests and 1-byte responses, `keep_alive` requests per connection."""
    return scenario(cluster={"nodes": nodes, "nic_speed": "10Gbps", "cni_datapath": datapath, "kernel": kernel},
                    kube_proxy=kube_proxy or {}, services={"count": 1, "endpoints_per_service": 1},
                    workload={"rate": rate, "request_size": message, "response_size": "1B",
                              "requests_per_connection": keep_alive,
                              "mix": {"pod-pod-cross-node" if nodes > 1 else "pod-pod-same-node": 1},
                              "server": {"service_time": 0, "service_time_distribution": "constant"}},
                    run={"requests": requests, "seed": 3})


def netperf_round_trip(profile: Profile, keep_alive: bool, datapath: str = "vxlan", nodes: int = 2,
                       kernel: str = "6.1", kube_proxy: dict | None = None) -> float:
    """Median latency (s) of netperf-like 1-byte requests between Pods (on two nodes over
    VXLAN, kube-proxy iptables, unless said otherwise): on a kept-alive connection (TCP_RR,
    the first request of each connection left out) or each on a new one (TCP_CRR, connect
    included)."""
    res = simulate(_pods(datapath, nodes, "1B", 100 if keep_alive else 1, 10, 2000, kernel, kube_proxy),
                   profile, 0)
    lat = res.end - res.start
    return float(np.median(lat[1::100] if keep_alive else lat))


STREAM_MESSAGE = 16 * 2**20
"""Bytes per message of the engine's stream."""


def stream_throughput(profile: Profile, datapath: str = "native", nodes: int = 2) -> float:
    """Bits per second of one stream as the engine runs it: 16 MiB messages one after
    another on one kept-alive connection between Pods (on two nodes at 10G, or on one)."""
    res = simulate(_pods(datapath, nodes, f"{STREAM_MESSAGE}B", 100, 1, 200), profile, 0)
    return STREAM_MESSAGE * 8 / float(np.median((res.end - res.start)[1::2]))


@case("DaoCloud TCP_RR", "published")
def daocloud_rr(ctx: Context) -> list[Check]:
    """Calibration: TCP_RR pod to remote node, cilium-vxlan, 201.27 us."""
    return [relative("TCP_RR pod to remote node, cilium-vxlan (calibration)", DAOCLOUD, 201.27e-6,
                     netperf_round_trip(ctx.default, keep_alive=True), 0.02, "us",
                     lacks="the per-segment costs no longer add up to the figure they were split from")]


@case("DaoCloud TCP_CRR", "published")
def daocloud_crr(ctx: Context) -> list[Check]:
    """TCP_CRR pod to remote node, cilium-vxlan, 613.59 us (only node-to-node CRR was used to
    derive connection_setup). netperf's CRR also waits for the close: one round trip more."""
    crr = (netperf_round_trip(ctx.default, keep_alive=False)
           + netperf_round_trip(ctx.default, keep_alive=True))
    return [relative("TCP_CRR pod to remote node, cilium-vxlan", DAOCLOUD, 613.59e-6, crr, 0.15, "us",
                     note="+ a round trip for the close",
                     lacks="connection set-up across VXLAN costs more than on the node network")]


_STREAM_LACKS = ("a stream's segments do not pipeline: a message's sender CPU, wire and receiver CPU "
                 "run one after another (an engine change: overlap per segment), and a 64 KiB segment "
                 "costs the CPU of a 1-byte one (no per-byte cost: copy, checksum; the RR calibration "
                 "cannot see it)")


@case("DaoCloud TCP_STREAM", "published")
def daocloud_stream(ctx: Context) -> list[Check]:
    """TCP_STREAM node-to-node 9.16 Gb/s, cilium-vxlan 8.30 Gb/s: one stream, and what VXLAN
    costs it (-9.4%)."""
    native, vxlan = stream_throughput(ctx.default, "native"), stream_throughput(ctx.default, "vxlan")
    return [relative("one TCP stream, native routing, 10G", DAOCLOUD, 9.16e9, native,
                     0.15, "Gb/s", lacks=_STREAM_LACKS),
            absolute("VXLAN's cost to one stream", DAOCLOUD,
                     8.30 / 9.16 - 1, vxlan / native - 1, 0.05, "%", lacks=_STREAM_LACKS)]


# -- Tigera: iptables or IPVS ------------------------------------------------------------------------
@case("Tigera IPVS CPU per connection", "published")
def tigera_ipvs_cpu(ctx: Context) -> list[Check]:
    """IPVS, no keep-alive, 1,000 connections/s: ~8% of one core on the client node = 80 us
    per connection; the model's client-side CPU of set-up, lookup, request and response
    (native routing). 30%: the per-packet costs come from an older CPU."""
    sc = scenario(cluster={"cni_datapath": "native", "nodes": 2}, kube_proxy={"mode": "ipvs"})
    client = node_cpu_per_request(ctx.default, sc, "pod-clusterip", Placement(same_node=False), "client")
    return [relative("IPVS client node CPU per new connection", TIGERA, 80e-6, client, 0.30, "us",
                     lacks="two machines in one profile: connection_setup (49.6 us a node, from DaoCloud's "
                           "2023 CRR) is half of it, and the per-packet netfilter and IPVS costs (x2 a "
                           "Broadwell core, assumed) add 5 us; Tigera's 2019 client node was faster")]


TIGERA_2019_RULES_PER_SERVICE = 2
"""KUBE-SERVICES rules per Service in 2019 (a masquerade mark and the jump; today 1)."""


@case("Tigera iptables CPU at 10,000 Services", "published")
def tigera_iptables_cpu(ctx: Context) -> list[Check]:
    """Calibration of iptables_rule: at 10,000 Services x 10 endpoints, no keep-alive, the
    iptables node spent 270 us per connection more than IPVS (35% vs 8% of a core at
    1,000/s). In 2019 KUBE-SERVICES held 2 rules per Service in random order, so a
    connection walked half of its 20,000 rules on average."""
    services, endpoints = 10_000, 10
    walked = TIGERA_2019_RULES_PER_SERVICE * (services + 1) / 2 + (endpoints + 1) / 2 + 6
    model = walked * ctx.default["iptables_rule"] - ctx.default["ipvs_lookup"]
    return [relative("iptables - IPVS CPU per connection, 2019 layout (calibration)", TIGERA,
                     270e-6, model, 0.05, "us", note=f"{walked:,.0f} rules walked",
                     lacks="iptables_rule no longer matches the figure it was derived from")]


def _mean_latency(profile: Profile, mode: str, services: int) -> float:
    sc = scenario(cluster={"nodes": 1000, "pod_cidr": "10.0.0.0/14"},
                  services={"count": services, "endpoints_per_service": 10},
                  kube_proxy={"mode": mode}, workload={"rate": 1000}, run={"requests": 3000})
    return run_point(sc, profile)[0]["mean_s"]


@case("Tigera modes differ only above 1,000 Services", "published")
def tigera_shape(ctx: Context) -> list[Check]:
    """iptables and IPVS round trips differ only above ~1,000 Services (no keep-alive): at
    1,000 Services under 3% apart and under a fifth of the gap at 10,000, which is over 5%."""
    apart = {n: _mean_latency(ctx.profile, "iptables", n) / _mean_latency(ctx.profile, "ipvs", n) - 1
             for n in (1_000, 10_000)}
    small, large = apart[1_000], apart[10_000]
    return [shape("iptables vs IPVS mean latency, 1,000 and 10,000 Services", TIGERA,
                  "1k: < 3%, < 10k/5; 10k: > 5%", f"{small:+.1%} at 1k, {large:+.1%} at 10k",
                  0 < small < min(0.03, large / 5) and large > 0.05, "strict",
                  lacks="the rule-walk cost is out of proportion to the round trip", value=large)]


# -- kube-proxy nftables blog -------------------------------------------------------------------------
@case("nftables blog: p99 beats iptables p01 at 30,000", "published")
def nftables_blog(ctx: Context) -> list[Check]:
    """At 30,000 Services nftables' p99 first-packet cost beats iptables' p01 (only the
    5k-10k figure was used to derive nftables_lookup)."""
    p = {}
    for mode in ("iptables", "nftables"):
        sc = scenario(cluster={"nodes": 300, "pod_cidr": "10.0.0.0/14"},
                      services={"count": 30_000, "endpoints_per_service": 1},
                      kube_proxy={"mode": mode}, run={"requests": 3000})
        p[mode] = simulate(sc, ctx.profile, 0).lookup_cpu
    nft99, ipt01 = np.percentile(p["nftables"], 99), np.percentile(p["iptables"], 1)
    return [shape("first packet at 30,000 Services: nftables p99 vs iptables p01", NFT_BLOG,
                  "nftables p99 < iptables p01",
                  f"{nft99 * 1e6:.3g} us < {ipt01 * 1e6:.3g} us", bool(nft99 < ipt01), "strict",
                  lacks="the flat lookup is dearer than a short iptables walk", value=float(nft99))]


# -- kube-proxy syncs ------------------------------------------------------------------------------------
@case("iptables sync, 2019 series", "published")
def iptables_sync_2019(ctx: Context) -> list[Check]:
    """Time to add one rule (full syncs, 1 endpoint per Service): the five fitted points
    (20%) and the five held out (35% from 500 Services; the fixed part dominates below)."""
    out = []
    for points, kind in ((IPTABLES_ADD_ONE_RULE, "calibration"), (IPTABLES_ADD_ONE_RULE_HOLDOUT, "hold-out")):
        for n, measured, modelled, _ in iptables_add_one_rule_residuals(ctx.default, points):
            tolerance = 0.20 if kind == "calibration" else (0.35 if n >= 500 else 1.0)
            name = f"iptables full sync at {format_count(n, 'Service')} ({kind})"
            out.append(relative(name, BLOG_2019, measured, modelled, tolerance, "s",
                                lacks="a full sync's cost is not linear in lines and rules there"))
    return out


@case("IPVS add one Service", "published")
def ipvs_add(ctx: Context) -> list[Check]:
    """Adding one IPVS rule took 0.8-1.52 ms at 1 to 20,000 Services (median 0.9 ms)."""
    model = ipvs_sync_seconds(ctx.default, ipvs_operations(1, services_added=1))
    low, high = min(IPVS_ADD_ONE_RULE), max(IPVS_ADD_ONE_RULE)
    expected = f"{low * 1e3:.2g} to {high * 1e3:.3g} ms"
    return [shape("IPVS sync adding one Service of 1 endpoint", BLOG_2019, expected, f"{model * 1e3:.3g} ms",
                  low <= model <= high, "inside the range",
                  lacks="IPVS operations cost more or less than measured", value=model)]


@case("nftables syncs", "published")
def nftables_syncs(ctx: Context) -> list[Check]:
    """PR #126013's incremental sync (calibration), issue #139513's (a known miss: listing
    grows faster than linearly) and the pathological full syncs as upper bounds."""
    p = ctx.default
    new_service = nftables_elements_changed(1, 2, added_services=1)
    out = [relative("incremental sync, 1 new Service at 10,000 x 2 (calibration)", "kubernetes PR #126013",
                    0.141, nftables_sync_seconds(p, new_service, False, 10_000, 2), 0.01, "ms",
                    lacks="nftables_list_chain no longer matches its figure"),
           relative("incremental sync at 44,128 Services x 1", "kubernetes issue #139513", 1.328,
                    nftables_sync_seconds(p, nftables_elements_changed(1, 1), False, 44_128, 1), 0.25, "s",
                    lacks="listing the chains grows faster than linearly (12 us per chain at 88,272 chains, "
                          "4.52 us at 30,016): the model's cost per chain is linear")]
    for services, endpoints, measured, source in ((44_125, 1, 16 * 60 + 44, "kubernetes issue #139513"),
                                                  (5_006, 50, 13 * 60 + 15, "kubernetes issue #135639"),
                                                  (10_000, 2, 8 * 60, "kubernetes PR #126013")):
        model = nftables_sync_seconds(p, 0, True, services, endpoints)
        out.append(shape(f"full sync, {services:,} x {endpoints}: {measured:,} s, an upper bound", source,
                         f"1 s to {measured / 30:.3g} s", f"{model:.3g} s", 1.0 < model < measured / 30,
                         "strict", lacks="the linear full-sync cost is out of range", value=model))
    return out


# -- KEP-3453 ------------------------------------------------------------------------------------------
KEP_NODES, KEP_SERVICES, KEP_ENDPOINTS, KEP_CHURN = 5_000, 8_250, 10, 10.0
"""The 5,000-node scalability job of KEP-3453, read from ClusterLoader2's load test
(testing/load/config.yaml): 50 namespaces of 3,000 Pods; 2 big, 13 medium and 150 small
Services per namespace backed by Deployments of 250, 30 and 5 Pods (82,000 endpoints, mean
E ~ 10); Pods created at its default 10 per second."""
KEP_P50 = {(False, 10.0): 27.0, (True, 10.0): 13.0, (True, 1.0): 5.0}
"""(MinimizeIPTablesRestore, --iptables-min-sync-period) -> network_programming_duration
p50, seconds: before, with partial restores, and with minSyncPeriod 1 s too."""


def kep_p50(profile: Profile, minimize: bool, min_sync: float, nodes: int = KEP_NODES,
            services: int = KEP_SERVICES, churn: float = KEP_CHURN) -> float:
    """The model's p50 network programming latency (s) of a cluster shaped like the KEP-3453
    job (or smaller), kube-proxies warm, 10 of them simulated, 10 endpoints per Service."""
    cfg = ControlPlaneConfig(nodes=nodes, services=services, endpoints_per_service=KEP_ENDPOINTS,
                             min_sync_period=min_sync, minimize_iptables_restore=minimize,
                             churn_rate=churn, duration=600.0, sampled_nodes=10, warm_start=True)
    return run_controlplane(cfg, profile).percentiles((50,))["network_programming_duration_seconds"][50]


_KEP_LACKS = ("the default profile's sync costs are a 2-core node of 2019 (legacy iptables, "
              "iptables-save every sync): at E = 10 its partial sync takes 25 s and syncs run back to "
              "back; the 2022 job's nodes must have synced about 3 times faster, which no published "
              "figure gives (measure yours: netmodel calibrate lab)")


@case("KEP-3453 network programming", "published")
def kep_3453(ctx: Context) -> list[Check]:
    """p50 network_programming_duration of the 5,000-node job: 27 s -> 13 s with partial
    restores -> 5 s with minSyncPeriod 1 s; absolute (50%) and the partial/full ratio (25%)."""
    model = {k: kep_p50(ctx.default, *k) for k in KEP_P50}
    out = [relative(f"p50 programming, {'partial' if m else 'full'} restores, minSyncPeriod {s:g} s",
                    "KEP-3453 (5,000 nodes)", KEP_P50[(m, s)], model[(m, s)], 0.5, "s",
                    lacks=_KEP_LACKS)
           for m, s in KEP_P50]
    ratio = model[(True, 10.0)] / model[(False, 10.0)]
    out.append(relative("p50 ratio, partial / full restores", "KEP-3453 (13 s / 27 s)", 13 / 27, ratio, 0.25,
                        lacks="partial restores do not halve programming latency"))
    small = {k: kep_p50(ctx.default, *k, nodes=1_000, services=1_000, churn=2.0) for k in KEP_P50}
    lower = small[(True, 1.0)] / small[(True, 10.0)], small[(True, 10.0)] / small[(False, 10.0)]
    out.append(shape("p50 with minSyncPeriod 1 s; with partial restores, at 1,000 x 10", "KEP-3453",
                     "both lower", f"x{lower[0]:.2f}; x{lower[1]:.2f}", lower[0] < 0.8 and lower[1] < 0.7,
                     "< 0.8; < 0.7",
                     lacks="kube-proxy's sync loop does not respond to its settings as KEP-3453 saw"))
    return out
