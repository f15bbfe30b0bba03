"""Random small scenarios for property tests: every traffic kind, mixes, policies, load
balancers, kube-proxy modes and eBPF data planes, DNS, keep-alive, queue limits, timeouts,
and churn."""

from hypothesis import strategies as st

from netmodel.vocabulary import KUBE_PROXY_MODES, TRAFFIC_KINDS
from tests.conftest import make_scenario

KINDS = st.dictionaries(st.sampled_from(TRAFFIC_KINDS), st.floats(0.1, 3), min_size=1, max_size=4)
AT = st.floats(0, 1.5).map(lambda t: f"{t:.3f}s")
EVENTS = st.lists(st.one_of(
    st.builds(lambda s, at, surge, unavailable: {"rolling_update": {
        "service": s, "at": at, "max_surge": surge, "max_unavailable": unavailable}},
        st.integers(0, 4), AT, st.sampled_from([0, 1, "25%", "100%"]), st.sampled_from([0, 1, "50%"])),
    st.builds(lambda s, at, n: {"scale": {"service": s, "at": at, "replicas": n}},
              st.integers(0, 4), AT, st.integers(0, 5)),
    st.builds(lambda node, at: {"node_failure": {"node": node, "at": at}}, st.integers(0, 1), AT)),
    max_size=4)
CONTROL = st.builds(
    lambda rate, events, pre_stop: {"enabled": True, "churn_rate": rate, "duration": "1.5s",
                                    "events": events, "pre_stop": pre_stop, "sampled_nodes": 2,
                                    "node_monitor_grace_period": "200ms", "eviction_timeout": "100ms"},
    st.sampled_from([0, 2, 20]), EVENTS, st.sampled_from(["0s", "20ms"]))


@st.composite
def scenarios(draw, requests: int = 300, churn: bool = True):
    """A small valid scenario (Pods of churned clusters start in 50-200 ms with the
    profile `fast_pods` gives, so that they come and go within the run)."""
    control = draw(st.one_of(st.none(), CONTROL)) if churn else None
    native = draw(st.booleans())
    lb = draw(st.sampled_from([{"provider": "metallb", "metallb_mode": "bgp"},
                               {"provider": "metallb", "metallb_mode": "l2"}, {"provider": "cloud"}]))
    return make_scenario(
        cluster={"nodes": draw(st.integers(2, 6)), "softirq_cores": draw(st.integers(1, 2)),
                 "provider": "cloud" if lb["provider"] == "cloud" else "bare-metal",
                 "cni_datapath": "native" if native else "vxlan",
                 # the kernel's limits: small ones make packets drop and TCP send them again
                 "netdev_max_backlog": draw(st.sampled_from([1, 3, 1000])),
                 "nic_rx_ring": draw(st.sampled_from([1, 2, 1024])),
                 "conntrack_max": draw(st.sampled_from([40, 131_072])),
                 "conntrack_time_wait": draw(st.sampled_from(["200ms", "120s"])),
                 "tcp_syn_retries": draw(st.sampled_from([0, 1, 6])),
                 "tcp_retries2": draw(st.sampled_from([0, 2, 15])),
                 "tcp_rto_min": draw(st.sampled_from(["1ms", "200ms"]))},
        kube_proxy={"mode": draw(st.sampled_from(KUBE_PROXY_MODES)), "ebpf": draw(ebpf(native))},
        services={"count": draw(st.integers(5, 8)), "endpoints_per_service": draw(st.integers(1, 3)),
                  "type": "LoadBalancer", "popularity": draw(st.sampled_from(["uniform", "zipf"])),
                  "external_traffic_policy": draw(st.sampled_from(["Cluster", "Local"]))},
        external={"load_balancer": lb,
                  "ingress": {"replicas": draw(st.integers(1, 2)), "workers": 1,
                              "service_type": draw(st.sampled_from(["NodePort", "LoadBalancer"]))},
                  "kubectl": {"apiserver_cores": 1, "max_requests_inflight": draw(st.integers(1, 5))}},
        dns={"enabled": draw(st.booleans()), "name": draw(st.sampled_from(["short", "external"]))},
        workload={"rate": draw(st.sampled_from([200, 5_000, 40_000])),
                  "arrival": draw(st.sampled_from(["poisson", "constant"])),
                  "requests_per_connection": draw(st.integers(1, 4)), "mix": draw(KINDS),
                  "timeout": f"{draw(st.sampled_from([2, 50, 10_000]))}ms",
                  "server": {"workers": draw(st.integers(1, 2)), "queue_limit": draw(st.integers(0, 3)),
                             "service_time_distribution": draw(st.sampled_from(["exponential", "constant"]))}},
        run={"requests": requests, "drain": f"{draw(st.sampled_from([1, 20]))}ms",
             "seed": draw(st.integers(0, 2**32))},
        **({"control_plane": control} if control else {}))


@st.composite
def ebpf(draw, native: bool):
    """Valid settings of the eBPF data plane (used when the mode is ebpf): Cilium or Calico,
    host routing, socket LB, NodePort modes, XDP, Maglev, and BPF conntrack maps small
    enough to fill (and evict)."""
    calico = draw(st.booleans())
    settings = {"implementation": "calico" if calico else "cilium",
                "host_routing": draw(st.sampled_from(["auto", "bpf", "legacy"])),
                "socket_lb": draw(st.booleans()),
                "ct_map_size": draw(st.sampled_from([30, 524_288])),
                "ct_close_timeout": draw(st.sampled_from(["200ms", "10s"]))}
    modes = ["tunnel"] + (["dsr"] if native else []) if calico else \
        ["snat"] + (["dsr", "hybrid"] if native else [])
    settings["load_balancer_mode"] = draw(st.sampled_from(["auto", *modes]))
    if not calico:
        settings.update(masquerade=draw(st.sampled_from(["iptables", "bpf"])),
                        acceleration=draw(st.sampled_from(["disabled", "native"])),
                        algorithm=draw(st.sampled_from(["random", "maglev"])))
        if settings["host_routing"] == "bpf":
            settings["masquerade"] = "bpf"
    return settings


def fast_pods(profile):
    """The profile with Pods that start in 50-200 ms."""
    return profile.with_overrides({"pod_start_median": "50ms", "pod_start_p99": "200ms"})
